package pop3

import (
	"context"
	"crypto/rand"
	"crypto/tls"
	"encoding/base32"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"posthorn/internal/connlimit"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// Options configure a Server. Zero limits get the defaults noted.
type Options struct {
	Hostname string // in the greeting and the QUIT reply
	Backend  Backend
	Logger   *slog.Logger

	// TLS enables STLS, or implicit TLS (port 995) with ImplicitTLS.
	// Without TLS no client can log in: passwords need encryption.
	TLS         *tls.Config
	ImplicitTLS bool

	MaxConnections      int           // all sessions of this server; default 1000
	MaxConnectionsPerIP int           // per address (IPv6: per /64); default 20
	CommandTimeout      time.Duration // waiting for one command; default 10 min
	MaxLineLength       int           // command line with CRLF; default 512
	MaxErrors           int           // client errors before closing; default 10
}

// Defaults.
const (
	// RFC 1939 §3: an autologout timer must be at least 10 minutes.
	defaultCommandTimeout = 10 * time.Minute
	// RFC 2449 §4: commands may be 255 octets with CRLF; we allow the 512
	// of the response limit, as clients sending long user names exceed it.
	defaultMaxLineLength = 512
	minLineLength        = 64              // long enough for any command but a long PASS
	writeTimeout         = 2 * time.Minute // one buffer (8 KiB) to the client
	handshakeTimeout     = 30 * time.Second
)

// Server accepts POP3 connections and runs one session per connection.
type Server struct {
	opts   Options
	log    *slog.Logger
	limits *connlimit.Limiter

	mu        sync.Mutex
	listeners map[net.Listener]struct{}
	conns     map[*conn]struct{}
	closing   atomic.Bool
	wg        sync.WaitGroup

	panics atomic.Int64
}

// New validates opts and returns a Server.
func New(opts Options) (*Server, error) {
	if err := validate(opts); err != nil {
		return nil, err
	}
	setDefaults(&opts)
	return &Server{
		opts:      opts,
		log:       opts.Logger,
		limits:    connlimit.New(opts.MaxConnections, opts.MaxConnectionsPerIP),
		listeners: make(map[net.Listener]struct{}),
		conns:     make(map[*conn]struct{}),
	}, nil
}

// validate reports every problem of opts at once.
func validate(o Options) error {
	var errs []error
	if o.Backend == nil {
		errs = append(errs, errors.New("Backend is required"))
	}
	if o.Hostname == "" || strings.ContainsAny(o.Hostname, " \t\r\n\x00") {
		errs = append(errs, fmt.Errorf("Hostname %q is not a host name", o.Hostname))
	}
	if o.ImplicitTLS && o.TLS == nil {
		errs = append(errs, errors.New("ImplicitTLS needs TLS"))
	}
	if o.MaxLineLength > 0 && o.MaxLineLength < minLineLength {
		errs = append(errs, fmt.Errorf("MaxLineLength %d is below %d", o.MaxLineLength, minLineLength))
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("pop3: %w", err)
	}
	return nil
}

func setDefaults(o *Options) {
	def := func(v *int, d int) {
		if *v <= 0 {
			*v = d
		}
	}
	def(&o.MaxConnections, 1000)
	def(&o.MaxConnectionsPerIP, 20)
	def(&o.MaxLineLength, defaultMaxLineLength)
	def(&o.MaxErrors, 10)
	if o.CommandTimeout <= 0 {
		o.CommandTimeout = defaultCommandTimeout
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
}

// Panics returns how many sessions have panicked. Tests fail when it is
// not zero.
func (s *Server) Panics() int64 { return s.panics.Load() }

// Serve accepts connections on l until Shutdown. It always returns a
// non-nil error; after Shutdown that error is net.ErrClosed.
func (s *Server) Serve(l net.Listener) error {
	s.mu.Lock()
	if s.closing.Load() {
		s.mu.Unlock()
		return net.ErrClosed
	}
	s.listeners[l] = struct{}{}
	s.mu.Unlock()
	defer s.untrack(l)

	var delay time.Duration
	for {
		nc, err := l.Accept()
		if err != nil {
			if s.closing.Load() {
				return net.ErrClosed
			}
			if d, ok := connlimit.AcceptBackoff(err, delay); ok {
				delay = d
				s.log.Warn("pop3 accept", "err", err, "retry", delay)
				time.Sleep(delay)
				continue
			}
			return fmt.Errorf("pop3 accept: %w", err)
		}
		delay = 0
		s.accept(nc)
	}
}

func (s *Server) untrack(l net.Listener) {
	s.mu.Lock()
	delete(s.listeners, l)
	s.mu.Unlock()
}

// accept admits or refuses a new connection and starts its goroutine.
func (s *Server) accept(nc net.Conn) {
	remote := addrPort(nc.RemoteAddr())
	release, refusal := admit(s.limits, remote.Addr())
	if refusal != nil {
		s.log.Warn("pop3 connection refused", "remote", remote.String(), "err", refusal.text)
		go s.refuse(nc, refusal)
		return
	}
	c := newConn(s, nc)
	s.mu.Lock()
	if s.closing.Load() {
		s.mu.Unlock()
		release()
		go s.refuse(nc, errShutdown)
		return
	}
	s.conns[c] = struct{}{}
	s.wg.Add(1)
	s.mu.Unlock()
	go func() {
		defer s.wg.Done()
		defer release()
		defer s.forget(c)
		c.serve()
	}()
}

func (s *Server) forget(c *conn) {
	s.mu.Lock()
	delete(s.conns, c)
	s.mu.Unlock()
}

// refuse sends one -ERR and closes, reading nothing. An implicit-TLS
// client would take plaintext for a broken record, so it only sees the
// close.
func (s *Server) refuse(nc net.Conn, f *failure) {
	if !s.opts.ImplicitTLS {
		_ = nc.SetWriteDeadline(time.Now().Add(5 * time.Second))
		_, _ = nc.Write([]byte(f.line()))
	}
	_ = nc.Close()
}

// Shutdown stops accepting and ends the sessions that wait for a command
// with "-ERR [SYS/TEMP]"; the others end after their current command.
// No deletion is committed but by a session's own QUIT. When ctx ends
// first, the remaining connections are closed under their feet.
func (s *Server) Shutdown(ctx context.Context) error {
	s.mu.Lock()
	s.closing.Store(true)
	for l := range s.listeners {
		_ = l.Close()
	}
	for c := range s.conns {
		c.interruptIdle()
	}
	s.mu.Unlock()

	done := make(chan struct{})
	go func() { s.wg.Wait(); close(done) }()
	select {
	case <-done:
		return nil
	case <-ctx.Done():
	}
	s.mu.Lock()
	for c := range s.conns {
		c.kill()
	}
	s.mu.Unlock()
	<-done
	return fmt.Errorf("pop3 shutdown: %w", ctx.Err())
}

func addrPort(a net.Addr) netip.AddrPort {
	if ta, ok := a.(*net.TCPAddr); ok {
		return ta.AddrPort()
	}
	ap, _ := netip.ParseAddrPort(a.String())
	return ap
}

// newID returns a short random connection id for the logs.
func newID() string {
	var b [10]byte
	_, _ = rand.Read(b[:])
	return base32.StdEncoding.WithPadding(base32.NoPadding).EncodeToString(b[:])
}

package smtp

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
	"runtime/debug"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"posthorn/internal/connlimit"
)

// Options configure a Server. Zero limits are replaced by RFC minimums or
// safe defaults in New.
type Options struct {
	Service  string // listener name for logs and ConnInfo ("smtp", …)
	Hostname string // announced in the greeting and EHLO
	Backend  Backend
	Logger   *slog.Logger

	// TLS enables STARTTLS (or implicit TLS with ImplicitTLS). Certificates
	// may be swapped at run time through GetCertificate.
	TLS         *tls.Config
	ImplicitTLS bool

	// AuthMechanisms are offered after TLS (never before) when the
	// backend's sessions implement AuthSession.
	AuthMechanisms []string
	// RequireAuth makes this a submission server (RFC 6409 §4.3): MAIL
	// needs a successful AUTH, which needs TLS.
	RequireAuth bool
	// DSN advertises and accepts the DSN extension (RFC 3461).
	DSN bool
	// LMTP makes this an LMTP server (RFC 2033): LHLO instead of EHLO,
	// one reply per recipient after the message. Sessions must implement
	// LMTPSession.
	LMTP bool

	MaxMessageBytes     int64
	MaxRecipients       int
	MaxLineLength       int // message text lines, without CRLF
	MaxCommandLength    int // command lines, without CRLF
	MaxConnections      int // all connections of this server
	MaxConnectionsPerIP int
	MaxErrors           int           // protocol errors before 421
	CommandTimeout      time.Duration // waiting for one command
	DataTimeout         time.Duration // one whole message after 354
	TLSHandshakeTimeout time.Duration

	// Limiter, if set, is shared with other servers so the per-IP and
	// total limits cover every listener. Otherwise the server has its own.
	Limiter *Limiter
}

// Server accepts SMTP connections and runs one session per connection.
type Server struct {
	opts   Options
	log    *slog.Logger
	limits *Limiter

	mu        sync.Mutex
	listeners map[net.Listener]struct{}
	conns     map[*conn]struct{}
	closing   atomic.Bool
	wg        sync.WaitGroup

	panics atomic.Int64
}

// New validates opts and returns a Server.
func New(opts Options) (*Server, error) {
	if opts.Backend == nil {
		return nil, errors.New("smtp: Options.Backend is required")
	}
	if opts.Hostname == "" {
		return nil, errors.New("smtp: Options.Hostname is required")
	}
	if opts.ImplicitTLS && opts.TLS == nil {
		return nil, errors.New("smtp: ImplicitTLS needs Options.TLS")
	}
	setDefaults(&opts)
	s := &Server{
		opts:      opts,
		log:       opts.Logger,
		limits:    opts.Limiter,
		listeners: make(map[net.Listener]struct{}),
		conns:     make(map[*conn]struct{}),
	}
	if s.limits == nil {
		s.limits = NewLimiter(opts.MaxConnections, opts.MaxConnectionsPerIP)
	}
	return s, nil
}

func setDefaults(o *Options) {
	def := func(v *int, d int) {
		if *v <= 0 {
			*v = d
		}
	}
	defd := func(v *time.Duration, d time.Duration) {
		if *v <= 0 {
			*v = d
		}
	}
	if o.Service == "" {
		o.Service = "smtp"
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.MaxMessageBytes <= 0 {
		o.MaxMessageBytes = 50 << 20
	}
	def(&o.MaxRecipients, 1000)            // RFC 5321 §4.5.3.1.8: at least 100
	def(&o.MaxLineLength, 998)             // RFC 5322 §2.1.1
	def(&o.MaxCommandLength, 2048)         // RFC 5321 §4.5.3.1.4 says 512; extensions need more
	def(&o.MaxConnections, 1000)           //
	def(&o.MaxConnectionsPerIP, 50)        //
	def(&o.MaxErrors, 10)                  //
	defd(&o.CommandTimeout, 5*time.Minute) // RFC 5321 §4.5.3.2.7
	defd(&o.DataTimeout, 10*time.Minute)   // RFC 5321 §4.5.3.2.6
	defd(&o.TLSHandshakeTimeout, 30*time.Second)
}

// Panics returns how many session goroutines have panicked. Tests fail when
// it is not zero.
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
		c, err := l.Accept()
		if err != nil {
			if s.closing.Load() {
				return net.ErrClosed
			}
			if d, ok := connlimit.AcceptBackoff(err, delay); ok {
				delay = d
				s.log.Warn("smtp accept", "err", err, "retry", delay)
				time.Sleep(delay)
				continue
			}
			return err
		}
		delay = 0
		s.accept(c)
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
	release, reply := admit(s.limits, remote.Addr())
	if reply != nil {
		s.log.Warn("smtp connection refused", "remote", remote.String(), "code", reply.Code, "err", reply.Msg)
		s.refuse(nc, reply)
		return
	}
	c := newConn(s, nc)
	s.mu.Lock()
	if s.closing.Load() {
		s.mu.Unlock()
		release()
		s.refuse(nc, errShutdown)
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

// refuse sends one reply and closes, without reading anything; inside
// TLS on an implicit-TLS listener (connlimit.Refuse).
func (s *Server) refuse(nc net.Conn, e *Error) {
	var b strings.Builder
	Reply{Code: e.Code, Enhanced: e.Enhanced, Lines: []string{e.Msg}}.format(&b)
	var tlsConf *tls.Config
	if s.opts.ImplicitTLS {
		tlsConf = s.opts.TLS
	}
	connlimit.Refuse(nc, tlsConf, b.String())
}

var errShutdown = &Error{Code: CodeUnavailable, Enhanced: "4.3.2", Msg: "Service shutting down, try again later"}

// Shutdown stops accepting, ends idle sessions with 421, and waits for the
// others to finish their current message. When ctx ends first, remaining
// connections are closed; a message already being written to the store is
// still completed by its backend, only its reply is lost.
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
	return fmt.Errorf("smtp shutdown: %w", ctx.Err())
}

func addrPort(a net.Addr) netip.AddrPort {
	if ta, ok := a.(*net.TCPAddr); ok {
		return ta.AddrPort()
	}
	ap, _ := netip.ParseAddrPort(a.String())
	return ap
}

// newID returns a short random id for connections and messages.
func newID() string {
	var b [10]byte
	_, _ = rand.Read(b[:])
	return base32.StdEncoding.WithPadding(base32.NoPadding).EncodeToString(b[:])
}

// recoverWorker turns a panic in a helper goroutine of c into an error
// result, counted like a session panic.
func (s *Server) recoverWorker(c *conn, result chan<- dataResult) {
	if r := recover(); r != nil {
		s.panics.Add(1)
		c.log.Error("smtp data panic", "err", fmt.Sprint(r), "stack", string(debug.Stack()))
		result <- dataResult{err: fmt.Errorf("panic: %v", r)}
	}
}

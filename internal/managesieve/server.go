package managesieve

import (
	"context"
	"crypto/rand"
	"crypto/tls"
	"encoding/base32"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"net"
	"net/netip"
	"posthorn/internal/connlimit"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// Options configure a Server. Zero limits get the defaults noted.
type Options struct {
	Hostname string // in the greeting
	Backend  Backend
	Logger   *slog.Logger

	// TLS is required: STARTTLS (RFC 5804 §2.2) is the only way to log
	// in. ManageSieve has no implicit-TLS port.
	TLS *tls.Config

	// Extensions are the Sieve extensions of the SIEVE capability
	// (RFC 5804 §1.7); default fileinto reject ereject envelope
	// imap4flags copy subaddress body vacation variables relational
	// mailbox. NotifyMethods is the NOTIFY capability, which "enotify"
	// requires. MaxRedirects, when above zero, is the MAXREDIRECTS
	// capability.
	Extensions    []string
	NotifyMethods []string
	MaxRedirects  int

	MaxConnections      int           // all sessions of this server; default 1000
	MaxConnectionsPerIP int           // per address (IPv6: per /64); default 20
	CommandTimeout      time.Duration // waiting for the client; default 10 min
	MaxLineLength       int           // one line segment with CRLF; default 8192
	MaxScriptSize       int64         // PUTSCRIPT, CHECKSCRIPT, HAVESPACE; default 1 MiB
	MaxNameLength       int           // script names, in characters; default 128
	MaxErrors           int           // client errors before BYE; default 10
}

// Defaults and bounds.
const (
	defaultCommandTimeout = 10 * time.Minute
	defaultMaxLineLength  = 8192
	// A line must hold two quoted strings of RFC 5804 §4's 1024 octets
	// (RENAMESCRIPT).
	minLineLength        = 2*(maxQuoted+3) + 32
	defaultMaxScriptSize = 1 << 20
	// RFC 5804 §1.6: servers must allow names of 128 characters.
	minNameLength    = 128
	maxNameLength    = 1024            // characters: 4 KiB at most, well under minDiscard
	writeTimeout     = 2 * time.Minute // one buffer (8 KiB) to the client
	handshakeTimeout = 30 * time.Second
	// discardFactor × MaxScriptSize, or minDiscard if more, is the
	// largest literal the session discards to answer NO; past it, it
	// hangs up. minDiscard is above every other string limit (names,
	// tags, SASL responses).
	discardFactor = 4
	minDiscard    = 64 << 10
)

// defaultExtensions is what Posthorn's sieve package runs.
var defaultExtensions = []string{"fileinto", "reject", "ereject", "envelope", "imap4flags", "copy",
	"subaddress", "body", "vacation", "variables", "relational", "mailbox"}

// Server accepts ManageSieve connections and runs one session per
// connection.
type Server struct {
	opts       Options
	log        *slog.Logger
	limits     *connlimit.Limiter
	mechs      []string // SASL mechanisms, after TLS
	extensions string   // the SIEVE capability
	maxDiscard int64

	mu        sync.Mutex
	listeners map[net.Listener]struct{}
	conns     map[*conn]struct{}
	closing   atomic.Bool
	wg        sync.WaitGroup

	panics atomic.Int64
}

// New validates opts and returns a Server.
func New(opts Options) (*Server, error) {
	setDefaults(&opts)
	var mechs []string
	if opts.Backend != nil {
		mechs = slices.Clone(opts.Backend.Mechanisms())
	}
	if err := validate(opts, mechs); err != nil {
		return nil, err
	}
	return &Server{
		opts:       opts,
		log:        opts.Logger,
		limits:     connlimit.New(opts.MaxConnections, opts.MaxConnectionsPerIP),
		mechs:      mechs,
		extensions: strings.Join(opts.Extensions, " "),
		maxDiscard: max(discardFactor*opts.MaxScriptSize, minDiscard),
		listeners:  make(map[net.Listener]struct{}),
		conns:      make(map[*conn]struct{}),
	}, nil
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
	def(&o.MaxNameLength, minNameLength)
	def(&o.MaxErrors, 10)
	if o.MaxScriptSize <= 0 {
		o.MaxScriptSize = defaultMaxScriptSize
	}
	if o.CommandTimeout <= 0 {
		o.CommandTimeout = defaultCommandTimeout
	}
	if o.Extensions == nil {
		o.Extensions = slices.Clone(defaultExtensions)
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
}

// validate reports every problem of opts at once.
func validate(o Options, mechs []string) error {
	var errs []error
	add := func(format string, args ...any) { errs = append(errs, fmt.Errorf(format, args...)) }
	if o.Backend == nil {
		add("Backend is required")
	} else if len(mechs) == 0 {
		add("Backend offers no SASL mechanism")
	}
	for _, m := range mechs {
		if !validMechanism(m) {
			add("SASL mechanism %q is not a mechanism name", m)
		}
	}
	if o.Hostname == "" || strings.ContainsAny(o.Hostname, " \t\r\n\x00\"\\") {
		add("Hostname %q is not a host name", o.Hostname)
	}
	if o.TLS == nil {
		add("TLS is required: without it no client can log in")
	}
	for _, list := range [][]string{o.Extensions, o.NotifyMethods} {
		for _, e := range list {
			if e == "" || strings.ContainsFunc(e, func(r rune) bool { return r <= ' ' || r == '"' || r == '\\' || r >= 0x7f }) {
				add("capability word %q is not a word", e)
			}
		}
	}
	if slices.Contains(o.Extensions, "enotify") && len(o.NotifyMethods) == 0 {
		add("extension enotify needs NotifyMethods (RFC 5804 §1.7)")
	}
	if o.MaxRedirects < 0 {
		add("MaxRedirects %d is negative", o.MaxRedirects)
	}
	if o.MaxLineLength < minLineLength {
		add("MaxLineLength %d is below %d", o.MaxLineLength, minLineLength)
	}
	if o.MaxNameLength < minNameLength || o.MaxNameLength > maxNameLength {
		add("MaxNameLength %d is not within %d (RFC 5804 §1.6) and %d", o.MaxNameLength, minNameLength, maxNameLength)
	}
	if o.MaxScriptSize > math.MaxUint32/discardFactor {
		add("MaxScriptSize %d is too large", o.MaxScriptSize)
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("managesieve: %w", err)
	}
	return nil
}

// validMechanism checks RFC 4422 §3.1: 1 to 20 of A-Z, 0-9, "-", "_".
func validMechanism(m string) bool {
	if m == "" || len(m) > 20 {
		return false
	}
	return !strings.ContainsFunc(m, func(r rune) bool {
		return (r < 'A' || r > 'Z') && (r < '0' || r > '9') && r != '-' && r != '_'
	})
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
				s.log.Warn("managesieve accept", "err", err, "retry", delay)
				time.Sleep(delay)
				continue
			}
			return fmt.Errorf("managesieve accept: %w", err)
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
		s.log.Warn("managesieve connection refused", "remote", remote.String(), "err", refusal.text)
		go refuse(nc, refusal)
		return
	}
	c := newConn(s, nc)
	s.mu.Lock()
	if s.closing.Load() {
		s.mu.Unlock()
		release()
		go refuse(nc, errShutdown)
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

// refuse sends one BYE in place of the greeting and closes, reading
// nothing.
func refuse(nc net.Conn, f *failure) {
	_ = nc.SetWriteDeadline(time.Now().Add(5 * time.Second))
	_, _ = nc.Write([]byte(f.line()))
	_ = nc.Close()
}

// Shutdown stops accepting and ends the sessions that wait for a command
// with BYE (TRYLATER); the others end after their current command. When
// ctx ends first, the remaining connections are closed under their feet.
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
	return fmt.Errorf("managesieve shutdown: %w", ctx.Err())
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

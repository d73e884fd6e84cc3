package imap

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
	"sync"
	"sync/atomic"
	"time"
)

// Options configure a Server.
type Options struct {
	Hostname string
	Backend  Backend
	Logger   *slog.Logger
	// TLS enables STARTTLS (or implicit TLS with ImplicitTLS). Without TLS
	// the server offers no way to log in (LOGINDISABLED, RFC 9051 §6.2.3).
	TLS         *tls.Config
	ImplicitTLS bool

	MaxConnections, MaxConnectionsPerIP int
	MaxConnectionsPerUser               int   // default 20
	AppendLimit                         int64 // largest APPEND (RFC 7889), default 50 MiB
	// ContentMemory bounds the message octets all sessions hold at once
	// for FETCH and SEARCH (each loaded message counts three times: its
	// octets, the response and the write buffer). Default 512 MiB.
	ContentMemory int64
	// HeaderCacheMemory bounds the cache of parsed header sections that
	// ENVELOPE, BODY[HEADER…] and header SEARCH keys are served from.
	// Default 64 MiB.
	HeaderCacheMemory int64
	IdleTimeout       time.Duration // authenticated autologout, ≥ 30 min (RFC 9051 §5.4)
	LoginTimeout      time.Duration // before authentication, default 1 min
	MaxErrors         int           // BAD replies before the connection closes
	// SyncInterval: how often an IDLE session looks for changes made
	// behind the server's back (another program in the Maildir). Default
	// 5 s. A backend whose Watch reports such changes itself (the local
	// store polls each watched mailbox once, for all its sessions) lets
	// this be long, so idle sessions cost nothing while nothing happens.
	SyncInterval time.Duration
}

// Server serves IMAP on any number of listeners.
type Server struct {
	opts Options
	log  *slog.Logger

	mu        sync.Mutex
	listeners map[net.Listener]struct{}
	conns     map[*conn]struct{}
	limits    *connlimit.Limiter
	perUser   map[string]int
	closing   atomic.Bool
	wg        sync.WaitGroup
	panics    atomic.Int64
	content   *budget
	headers   *headerCache
}

// New validates opts and returns a Server.
func New(opts Options) (*Server, error) {
	if opts.Backend == nil || opts.Hostname == "" {
		return nil, errors.New("imap: Backend and Hostname are required")
	}
	if opts.ImplicitTLS && opts.TLS == nil {
		return nil, errors.New("imap: ImplicitTLS needs TLS")
	}
	defInt := func(v *int, d int) {
		if *v <= 0 {
			*v = d
		}
	}
	defInt(&opts.MaxConnections, 5000)
	defInt(&opts.MaxConnectionsPerIP, 100)
	defInt(&opts.MaxConnectionsPerUser, 20)
	defInt(&opts.MaxErrors, 20)
	if opts.AppendLimit <= 0 {
		opts.AppendLimit = 50 << 20
	}
	if opts.HeaderCacheMemory <= 0 {
		opts.HeaderCacheMemory = 64 << 20
	}
	if opts.ContentMemory <= 0 {
		opts.ContentMemory = 512 << 20
	}
	if opts.IdleTimeout < 30*time.Minute {
		opts.IdleTimeout = 30 * time.Minute
	}
	if opts.LoginTimeout <= 0 {
		opts.LoginTimeout = time.Minute
	}
	if opts.SyncInterval <= 0 {
		opts.SyncInterval = 5 * time.Second
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	return &Server{opts: opts, log: opts.Logger, listeners: map[net.Listener]struct{}{}, conns: map[*conn]struct{}{},
		limits: connlimit.New(opts.MaxConnections, opts.MaxConnectionsPerIP), perUser: map[string]int{}, content: newBudget(opts.ContentMemory),
		headers: newHeaderCache(opts.HeaderCacheMemory)}, nil
}

// Panics counts recovered session panics; tests require zero.
func (s *Server) Panics() int64 { return s.panics.Load() }

// Serve accepts connections on l until Shutdown.
func (s *Server) Serve(l net.Listener) error {
	s.mu.Lock()
	if s.closing.Load() {
		s.mu.Unlock()
		return net.ErrClosed
	}
	s.listeners[l] = struct{}{}
	s.mu.Unlock()
	defer func() { s.mu.Lock(); delete(s.listeners, l); s.mu.Unlock() }()
	var delay time.Duration
	for {
		nc, err := l.Accept()
		if err != nil {
			if s.closing.Load() {
				return net.ErrClosed
			}
			if d, ok := connlimit.AcceptBackoff(err, delay); ok {
				delay = d
				s.log.Warn("imap accept", "err", err, "retry", delay)
				time.Sleep(delay)
				continue
			}
			return err
		}
		delay = 0
		s.accept(nc)
	}
}

func (s *Server) accept(nc net.Conn) {
	ip := remoteAddr(nc).Addr().Unmap()
	refuse := ""
	release, err := s.limits.Admit(ip)
	switch {
	case s.closing.Load():
		refuse = "* BYE Server shutting down\r\n"
	case errors.Is(err, connlimit.ErrPerAddr):
		refuse = "* BYE [UNAVAILABLE] Too many connections from your address\r\n"
	case err != nil:
		refuse = "* BYE [UNAVAILABLE] Too many connections\r\n"
	}
	s.mu.Lock()
	if refuse == "" && s.closing.Load() {
		refuse = "* BYE Server shutting down\r\n"
	}
	if refuse != "" {
		s.mu.Unlock()
		if release != nil {
			release()
		}
		s.log.Warn("imap connection refused", "remote", ip.String(), "err", refuse[2:len(refuse)-2])
		var tlsConf *tls.Config // on implicit TLS, the BYE goes inside it
		if s.opts.ImplicitTLS {
			tlsConf = s.opts.TLS
		}
		connlimit.Refuse(nc, tlsConf, refuse)
		return
	}
	c := newConn(s, nc)
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
	defer s.mu.Unlock()
	delete(s.conns, c)
}

// admitUser counts a session of an authenticated user.
func (s *Server) admitUser(name string) (func(), bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.perUser[name] >= s.opts.MaxConnectionsPerUser {
		return nil, false
	}
	s.perUser[name]++
	var once sync.Once
	return func() {
		once.Do(func() {
			s.mu.Lock()
			defer s.mu.Unlock()
			if s.perUser[name]--; s.perUser[name] <= 0 {
				delete(s.perUser, name)
			}
		})
	}, true
}

// Shutdown stops accepting, tells idle sessions BYE, and waits for the
// others to finish their command; when ctx ends, it closes them.
func (s *Server) Shutdown(ctx context.Context) error {
	s.mu.Lock()
	s.closing.Store(true)
	for l := range s.listeners {
		l.Close()
	}
	for c := range s.conns {
		c.interrupt()
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
	return fmt.Errorf("imap shutdown: %w", ctx.Err())
}

func remoteAddr(nc net.Conn) netip.AddrPort {
	if ta, ok := nc.RemoteAddr().(*net.TCPAddr); ok {
		return ta.AddrPort()
	}
	ap, _ := netip.ParseAddrPort(nc.RemoteAddr().String())
	return ap
}

func newID() string {
	var b [10]byte
	_, _ = rand.Read(b[:])
	return base32.StdEncoding.WithPadding(base32.NoPadding).EncodeToString(b[:])
}

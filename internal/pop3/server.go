package pop3

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"
)

// Options configure a Server.
type Options struct {
	Hostname            string
	Backend             Backend
	Logger              *slog.Logger
	TLS                 *tls.Config
	ImplicitTLS         bool
	MaxConnections      int           // default 1000
	MaxConnectionsPerIP int           // default 20
	CommandTimeout      time.Duration // default 10 min (RFC 1939 §3)
	MaxLineLength       int           // default 512 with CRLF (RFC 2449 §4)
	MaxErrors           int           // default 10
}

// Server serves POP3.
type Server struct {
	opts Options
	log  *slog.Logger

	mu        sync.Mutex
	listeners map[net.Listener]struct{}
	conns     map[*conn]struct{}
	perIP     map[netip.Addr]int
	closing   atomic.Bool
	wg        sync.WaitGroup
	panics    atomic.Int64
}

// New validates opts and returns a Server.
func New(opts Options) (*Server, error) {
	if opts.Backend == nil || opts.Hostname == "" {
		return nil, errors.New("pop3: Backend and Hostname are required")
	}
	if opts.ImplicitTLS && opts.TLS == nil {
		return nil, errors.New("pop3: ImplicitTLS needs TLS")
	}
	def := func(v *int, d int) {
		if *v <= 0 {
			*v = d
		}
	}
	def(&opts.MaxConnections, 1000)
	def(&opts.MaxConnectionsPerIP, 20)
	def(&opts.MaxLineLength, 512)
	def(&opts.MaxErrors, 10)
	if opts.CommandTimeout <= 0 {
		opts.CommandTimeout = 10 * time.Minute
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	return &Server{opts: opts, log: opts.Logger, listeners: map[net.Listener]struct{}{},
		conns: map[*conn]struct{}{}, perIP: map[netip.Addr]int{}}, nil
}

// Panics counts recovered session panics.
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
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				delay = min(max(2*delay, 5*time.Millisecond), time.Second)
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
	s.mu.Lock()
	refuse := ""
	switch {
	case s.closing.Load():
		refuse = "-ERR [SYS/TEMP] Server shutting down\r\n"
	case len(s.conns) >= s.opts.MaxConnections:
		refuse = "-ERR [SYS/TEMP] Too many connections\r\n"
	case s.perIP[ip] >= s.opts.MaxConnectionsPerIP:
		refuse = "-ERR [SYS/TEMP] Too many connections from your address\r\n"
	}
	if refuse != "" {
		s.mu.Unlock()
		go func() {
			_ = nc.SetWriteDeadline(time.Now().Add(5 * time.Second))
			_, _ = nc.Write([]byte(refuse))
			nc.Close()
		}()
		return
	}
	c := newConn(s, nc)
	s.conns[c] = struct{}{}
	s.perIP[ip]++
	s.wg.Add(1)
	s.mu.Unlock()
	go func() {
		defer s.wg.Done()
		defer func() {
			s.mu.Lock()
			delete(s.conns, c)
			if s.perIP[ip]--; s.perIP[ip] <= 0 {
				delete(s.perIP, ip)
			}
			s.mu.Unlock()
		}()
		c.serve()
	}()
}

// Shutdown stops accepting; sessions waiting for a command end (without
// committing deletions: only their own QUIT does that).
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
	return fmt.Errorf("pop3 shutdown: %w", ctx.Err())
}

func remoteAddr(nc net.Conn) netip.AddrPort {
	if ta, ok := nc.RemoteAddr().(*net.TCPAddr); ok {
		return ta.AddrPort()
	}
	ap, _ := netip.ParseAddrPort(nc.RemoteAddr().String())
	return ap
}

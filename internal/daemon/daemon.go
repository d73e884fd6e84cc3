// Package daemon is the composition root: it builds every component from a
// config.Config, opens the listeners, and runs until told to stop. It holds
// wiring only; any decision about mail belongs in the package that owns it.
package daemon

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"runtime/debug"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"posthorn/internal/certs"
	"posthorn/internal/config"
	"posthorn/internal/delivery"
	"posthorn/internal/dns"
	"posthorn/internal/imap"
	"posthorn/internal/managesieve"
	"posthorn/internal/outbound"
	"posthorn/internal/pickup"
	"posthorn/internal/pop3"
	"posthorn/internal/queue"
	"posthorn/internal/sasl"
	"posthorn/internal/sieve"
	"posthorn/internal/smtp"
	"posthorn/internal/store"
	"posthorn/internal/store/local"
	"posthorn/internal/unixmail"
	"posthorn/internal/users"
)

// Implemented lists the services this version can run. A listener for any
// other service in the config is an error, not a silent no-op.
var Implemented = []string{"smtp", "submission", "submissions", "lmtp", "imap", "imaps", "pop3", "pop3s", "managesieve", "http"}

// Wiring checks: who implements which interface.
var (
	_ smtp.Backend    = (*delivery.Router)(nil)
	_ queue.Transport = delivery.Transport{}
	_ queue.Transport = (*outbound.Sender)(nil)
	_ queue.Injector  = (*delivery.Router)(nil)
	_ delivery.Queue  = (*queue.Queue)(nil)
	_ users.Directory = (store.Store)(nil)
)

// SocketName is the sendmail socket in the data directory, MaildropName the
// directory where sendmail leaves mail while the daemon is down.
const (
	SocketName   = "sendmail.sock"
	MaildropName = "maildrop"
)

// OpenStore opens the configured storage backend.
func OpenStore(cfg *config.Config, log *slog.Logger) (store.Store, error) {
	switch cfg.Store.Backend {
	case "local":
		return local.Open(local.Options{Dir: cfg.DataDir, Hostname: cfg.Hostname, Logger: log})
	}
	return nil, fmt.Errorf("store.backend %q is not available in this version", cfg.Store.Backend)
}

// NewUsers returns the account service over st with the config's rules.
func NewUsers(cfg *config.Config, st store.Store, g *users.Guard, log *slog.Logger) (*users.Service, error) {
	return newUsers(cfg, st, g, log, nil)
}

func newUsers(cfg *config.Config, st store.Store, g *users.Guard, log *slog.Logger, key []byte) (*users.Service, error) {
	return users.New(users.Options{Directory: st, SubaddressSeparator: cfg.Delivery.SubaddressSeparator, Guard: g, Logger: log,
		Hostname: cfg.Hostname, Postmaster: cfg.Delivery.Postmaster, StandInKey: key})
}

// keyKeeper is a store that keeps the SCRAM stand-in key across restarts
// (users.Options.StandInKey). Only the daemon asks for it: an admin
// command run by another user must not make a key file the daemon
// cannot read.
type keyKeeper interface {
	StandInKey() ([]byte, error)
}

// standInKey is the store's kept key, or nil (a key per process) for a
// store that keeps none.
func standInKey(st store.Store) ([]byte, error) {
	if k, ok := st.(keyKeeper); ok {
		return k.StandInKey()
	}
	return nil, nil
}

var _ keyKeeper = (*local.Store)(nil)

// NewUnix returns the classic Unix mail system the config asks for, or nil
// when [unix] domains is empty.
func NewUnix(cfg *config.Config, log *slog.Logger) (*unixmail.System, error) {
	u := cfg.Unix
	if len(u.Domains) == 0 {
		return nil, nil
	}
	return unixmail.New(unixmail.Options{Domains: u.Domains, PasswdFile: u.PasswdFile, Mailbox: u.Mailbox,
		SpoolDir: u.SpoolDir, MaildirName: u.MaildirName, Aliases: u.Aliases, Forward: u.Forward,
		AllowPipes: u.AllowPipes, AllowFiles: u.AllowFiles, Root: u.Root, PipeTimeout: u.PipeTimeout.D(), Logger: log})
}

// Daemon is a running posthorn.
type Daemon struct {
	cfg    *config.Config
	log    *slog.Logger
	store  store.Store
	certs  *certs.Store // nil without TLS
	users  *users.Service
	queue  *queue.Queue
	pickup *pickup.Scanner

	servers   map[string]*smtp.Server // by service, "local" for the socket
	imap      map[string]*imap.Server
	pop3      map[string]*pop3.Server
	sieve     *managesieve.Server // nil without a managesieve listener
	fetchers  fetcherList         // the [[fetch]] sources running
	bgPanics  atomic.Int64        // recovered in the daemon's own goroutines
	http      *http.Server        // nil without an http listener
	listeners map[string][]net.Listener
	wg        sync.WaitGroup
	ctx       context.Context
	stop      context.CancelFunc // ends background work
}

// New builds the components. Nothing listens until Start.
func New(cfg *config.Config, log *slog.Logger) (*Daemon, error) {
	if err := checkServices(cfg); err != nil {
		return nil, err
	}
	d := &Daemon{cfg: cfg, log: log, servers: map[string]*smtp.Server{}, imap: map[string]*imap.Server{}, pop3: map[string]*pop3.Server{}, listeners: map[string][]net.Listener{}}
	d.ctx, d.stop = context.WithCancel(context.Background())
	if cfg.TLS.CertFile != "" {
		c, err := certs.Load(cfg.TLS.CertFile, cfg.TLS.KeyFile)
		if err != nil {
			return nil, err
		}
		d.certs = c
	}
	st, err := OpenStore(cfg, log)
	if err != nil {
		return nil, err
	}
	d.store = st
	if err := d.build(); err != nil {
		st.Close()
		return nil, err
	}
	return d, nil
}

func checkServices(cfg *config.Config) error {
	var errs []error
	for _, svc := range config.Services {
		if len(cfg.Listen.Addrs(svc)) > 0 && !contains(Implemented, svc) {
			errs = append(errs, fmt.Errorf("listen.%s: this service is not available in this version", svc))
		}
	}
	for _, svc := range []string{"submission", "submissions", "imap", "imaps", "pop3", "pop3s"} {
		if len(cfg.Listen.Addrs(svc)) > 0 && cfg.TLS.CertFile == "" {
			errs = append(errs, fmt.Errorf("listen.%s: needs a certificate ([tls] cert_file): passwords are never sent in the clear", svc))
		}
	}
	return errors.Join(errs...)
}

func contains(list []string, s string) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
}

// build makes the users service, queue, outbound sender, router and SMTP
// servers.
func (d *Daemon) build() error {
	a := d.cfg.Auth
	guard := users.NewGuard(users.GuardOptions{MaxFailures: a.MaxFailures, Window: a.FailureWindow.D(),
		BlockTime: a.BlockTime.D(), MaxDelay: a.MaxDelay.D(), Trusted: a.TrustedPrefixes()})
	key, err := standInKey(d.store)
	if err != nil {
		return err
	}
	us, err := newUsers(d.cfg, d.store, guard, d.log, key)
	if err != nil {
		return err
	}
	d.users = us
	sender, err := d.outbound()
	if err != nil {
		return err
	}
	router, err := d.router(us)
	if err != nil {
		return err
	}
	q := d.cfg.Queue
	d.queue, err = queue.New(queue.Options{
		Store: d.store, Transport: delivery.Transport{Router: router, Remote: sender}, Injector: router,
		Hostname: d.cfg.Hostname, MinBackoff: q.MinBackoff.D(), MaxBackoff: q.MaxBackoff.D(),
		Lifetime: q.Lifetime.D(), DelayWarning: q.DelayWarning.D(), Workers: q.Workers, PerDomain: q.PerDomain, Logger: d.log,
		StopTimeout: min(d.cfg.SMTP.ShutdownTimeout.D(), 10*time.Second),
	})
	if err != nil {
		return err
	}
	router.SetQueue(d.queue)
	d.pickup, err = pickup.New(pickup.Options{Dir: filepath.Join(d.cfg.DataDir, MaildropName), Submitter: router,
		MaxSize: int64(d.cfg.SMTP.MaxMessageSize), Logger: d.log})
	if err != nil {
		return err
	}
	if err := d.buildServers(router); err != nil {
		return err
	}
	d.buildHTTP()
	if err := d.buildManageSieve(us); err != nil {
		return err
	}
	return d.buildIMAP(us)
}

// buildManageSieve makes the ManageSieve server (STARTTLS only, RFC 5804).
func (d *Daemon) buildManageSieve(us *users.Service) error {
	if len(d.cfg.Listen.Addrs("managesieve")) == 0 {
		return nil
	}
	s, err := managesieve.New(managesieve.Options{Hostname: d.cfg.Hostname, Backend: SieveBackend(us, d.store),
		Logger: d.log.With("service", "managesieve"), TLS: d.certs.TLSConfig(), Extensions: sieve.Extensions,
		// The same clients as IMAP (mail programs, a webmail server for
		// all its users): the same limits, not SMTP's.
		MaxRedirects: 5, MaxConnections: d.cfg.IMAP.MaxConnections, MaxConnectionsPerIP: d.cfg.IMAP.MaxConnectionsPerIP})
	if err != nil {
		return fmt.Errorf("managesieve: %w", err)
	}
	d.sieve = s
	return nil
}

// buildIMAP makes the IMAP servers (STARTTLS and implicit TLS).
func (d *Daemon) buildIMAP(us *users.Service) error {
	for _, svc := range []string{"imap", "imaps"} {
		if len(d.cfg.Listen.Addrs(svc)) == 0 {
			continue
		}
		s, err := imap.New(imap.Options{
			Hostname: d.cfg.Hostname, Backend: IMAPBackend(us, d.store), Logger: d.log.With("service", svc),
			TLS: d.certs.TLSConfig(), ImplicitTLS: svc == "imaps",
			AppendLimit:    int64(d.cfg.SMTP.MaxMessageSize),
			MaxConnections: d.cfg.IMAP.MaxConnections, MaxConnectionsPerIP: d.cfg.IMAP.MaxConnectionsPerIP,
			MaxConnectionsPerUser: d.cfg.IMAP.MaxConnectionsPerUser, IdleTimeout: time.Duration(d.cfg.IMAP.IdleTimeout),
			HeaderCacheMemory: int64(d.cfg.IMAP.HeaderCache),
			// The store's Watch reports changes by other programs within a
			// second, and runs the once-a-minute full comparison of each
			// watched mailbox itself (one poller for all of them); this is
			// a last backstop. At a minute, 5,000 idle sessions made 35 MB
			// of garbage a minute between them, for nothing.
			SyncInterval: 10 * time.Minute,
		})
		if err != nil {
			return fmt.Errorf("%s: %w", svc, err)
		}
		d.imap[svc] = s
	}
	pb := POP3Backend(us, d.store)
	for _, svc := range []string{"pop3", "pop3s"} {
		if len(d.cfg.Listen.Addrs(svc)) == 0 {
			continue
		}
		s, err := pop3.New(pop3.Options{Hostname: d.cfg.Hostname, Backend: pb, Logger: d.log.With("service", svc),
			TLS: d.certs.TLSConfig(), ImplicitTLS: svc == "pop3s",
			MaxConnections: d.cfg.POP3.MaxConnections, MaxConnectionsPerIP: d.cfg.POP3.MaxConnectionsPerIP})
		if err != nil {
			return fmt.Errorf("%s: %w", svc, err)
		}
		d.pop3[svc] = s
	}
	return nil
}

func (d *Daemon) outbound() (*outbound.Sender, error) {
	o := d.cfg.Outbound
	var res dns.Resolver
	if o.RelayHost == "" {
		r, err := dns.New(d.cfg.DNS.Servers, d.cfg.DNS.Timeout.D())
		if err != nil {
			return nil, err
		}
		res = r
	}
	return outbound.New(outbound.Options{Resolver: res, Hostname: d.cfg.Hostname, Port: o.Port,
		RelayHost: o.RelayHost, ConnectTimeout: o.ConnectTimeout.D(), CommandTimeout: o.CommandTimeout.D(), Logger: d.log})
}

func (d *Daemon) router(us *users.Service) (*delivery.Router, error) {
	c := d.cfg.SMTP
	unix, err := NewUnix(d.cfg, d.log)
	if err != nil {
		return nil, err
	}
	return delivery.New(delivery.Options{
		Unix:           unix,
		Hostname:       d.cfg.Hostname,
		Users:          us,
		Store:          d.store,
		TempDir:        filepath.Join(d.cfg.DataDir, "tmp"),
		MaxHeaderBytes: int64(c.MaxHeaderSize),
		MaxHeaders:     c.MaxHeaders,
		MaxReceived:    c.MaxReceived,
		MaxLineLength:  c.MaxLineLength,
		MinFreeBytes:   uint64(c.MaxMessageSize) * 2,
		LocalAnySender: d.cfg.Delivery.SendmailAnySender,
		Filter:         &delivery.Filter{Sieve: d.store, Mail: d.store, Hostname: d.cfg.Hostname, Logger: d.log},
		Logger:         d.log,
	})
}

// smtpLimiters gives each kind of SMTP client connection limits of its
// own: anonymous port-25 clients filling a shared limit locked out
// submission, LMTP from a front MTA and local sendmail. Submission and
// submissions share theirs; the local socket has no per-address limit
// (all its clients are one address).
func smtpLimiters(c config.SMTP) map[string]*smtp.Limiter {
	submission := smtp.NewLimiter(c.MaxConnections, c.MaxConnectionsPerIP)
	return map[string]*smtp.Limiter{
		"smtp":        smtp.NewLimiter(c.MaxConnections, c.MaxConnectionsPerIP),
		"submission":  submission,
		"submissions": submission,
		"lmtp":        smtp.NewLimiter(c.MaxConnections, c.MaxConnectionsPerIP),
		"local":       smtp.NewLimiter(c.MaxConnections, c.MaxConnections),
	}
}

// buildServers makes one SMTP server per configured service.
func (d *Daemon) buildServers(router *delivery.Router) error {
	c := d.cfg.SMTP
	limiters := smtpLimiters(c)
	for _, svc := range []string{"smtp", "submission", "submissions", "lmtp", "local"} {
		if svc != "local" && len(d.cfg.Listen.Addrs(svc)) == 0 {
			continue
		}
		opts := smtp.Options{
			Service: svc, Hostname: d.cfg.Hostname, Backend: router, Logger: d.log, Limiter: limiters[svc], DSN: true,
			MaxMessageBytes: int64(c.MaxMessageSize), MaxRecipients: c.MaxRecipients,
			MaxLineLength: c.MaxLineLength, MaxErrors: c.MaxErrors,
			CommandTimeout: c.CommandTimeout.D(), DataTimeout: c.DataTimeout.D(),
		}
		if d.certs != nil && svc != "local" {
			opts.TLS = d.certs.TLSConfig()
		}
		opts.LMTP = svc == "lmtp"
		if svc == "submission" || svc == "submissions" {
			opts.RequireAuth = true
			opts.AuthMechanisms = []string{sasl.Plain, sasl.Login, sasl.ScramSHA256}
			opts.ImplicitTLS = svc == "submissions"
		}
		s, err := smtp.New(opts)
		if err != nil {
			return fmt.Errorf("%s: %w", svc, err)
		}
		d.servers[svc] = s
	}
	return nil
}

// Start opens every configured listener, the sendmail socket, and starts
// the queue runner. It also reconciles every mailbox index with its
// storage, in the background, so files left by a crash are indexed.
func (d *Daemon) Start() error {
	marks, hasMarks := d.store.(uidMarker)
	if hasMarks {
		// Before anyone is served: a mailbox whose index lost commits
		// must not hand out UIDs its clients already know.
		if n, err := marks.CheckUIDMarks(d.ctx); err != nil {
			d.log.Error("UID marks not checked", "err", err)
		} else if n > 0 {
			d.log.Error("mailboxes given a new UIDVALIDITY after lost index commits", "count", n)
		}
	}
	if err := d.listen(); err != nil {
		d.closeListeners()
		return err
	}
	if hasMarks {
		d.wg.Add(1)
		go func() { defer d.wg.Done(); marks.KeepUIDMarks(d.ctx) }()
	}
	d.wg.Add(3)
	go func() { defer d.wg.Done(); d.syncAll() }()
	go func() { defer d.wg.Done(); d.queue.Run(d.ctx) }()
	go func() { defer d.wg.Done(); d.pickup.Run(d.ctx) }()
	d.startFetch() // stopped with the rest by d.stop; Shutdown waits for it
	for svc, ls := range d.listeners {
		for _, l := range ls {
			d.wg.Add(1)
			go func() {
				defer d.wg.Done()
				if err := d.serve(svc, l); err != nil && !errors.Is(err, net.ErrClosed) {
					d.log.Error("listener stopped", "service", svc, "addr", l.Addr().String(), "err", err)
				}
			}()
			d.log.Info("listening", "service", svc, "addr", l.Addr().String())
		}
	}
	return nil
}

// uidMarker is the embedded store's guard against UIDs given out twice
// after its index lost commits (store/local/uidmarks.go).
type uidMarker interface {
	CheckUIDMarks(context.Context) (int, error)
	KeepUIDMarks(context.Context)
}

// serve runs one listener of a service.
func (d *Daemon) serve(svc string, l net.Listener) error {
	if s, ok := d.imap[svc]; ok {
		return s.Serve(l)
	}
	if s, ok := d.pop3[svc]; ok {
		return s.Serve(l)
	}
	if svc == "managesieve" {
		return d.sieve.Serve(l)
	}
	if svc == "http" {
		err := d.http.Serve(&capListener{Listener: l, slots: make(chan struct{}, maxHTTPConns)})
		if errors.Is(err, http.ErrServerClosed) {
			return nil
		}
		return err
	}
	return d.servers[svc].Serve(l)
}

func (d *Daemon) listen() error {
	svcs := []string{}
	for svc := range d.servers {
		svcs = append(svcs, svc)
	}
	for svc := range d.imap {
		svcs = append(svcs, svc)
	}
	for svc := range d.pop3 {
		svcs = append(svcs, svc)
	}
	if d.http != nil {
		svcs = append(svcs, "http")
	}
	if d.sieve != nil {
		svcs = append(svcs, "managesieve")
	}
	for _, svc := range svcs {
		if svc == "local" {
			continue
		}
		for _, addr := range d.cfg.Listen.Addrs(svc) {
			var l net.Listener
			var err error
			if strings.Contains(addr, "/") { // an LMTP unix socket
				l, err = listenSocket(addr)
			} else {
				l, err = net.Listen("tcp", addr)
			}
			if err != nil {
				return fmt.Errorf("listen %s %s: %w", svc, addr, err)
			}
			d.listeners[svc] = append(d.listeners[svc], l)
		}
	}
	l, err := listenSocket(filepath.Join(d.cfg.DataDir, SocketName))
	if err != nil {
		return err
	}
	// The data directory is private; let others reach the socket (0711).
	if err := DataDirPerms(d.cfg.DataDir); err != nil {
		l.Close()
		return err
	}
	d.listeners["local"] = []net.Listener{l}
	return nil
}

// listenSocket opens a unix socket that any local user may connect to:
// the sendmail socket (the session knows the peer's uid), or an LMTP
// socket (which, like port 25, only delivers to our own users).
func listenSocket(path string) (net.Listener, error) {
	_ = os.Remove(path) // a stale socket from a crash
	l, err := net.Listen("unix", path)
	if err != nil {
		return nil, fmt.Errorf("listen %s: %w", path, err)
	}
	if err := os.Chmod(path, 0o666); err != nil {
		l.Close()
		return nil, err
	}
	return l, nil
}

func (d *Daemon) closeListeners() {
	for _, ls := range d.listeners {
		for _, l := range ls {
			l.Close()
		}
	}
}

// Addrs returns the bound addresses of a service (useful with port 0).
func (d *Daemon) Addrs(service string) []net.Addr {
	var out []net.Addr
	for _, l := range d.listeners[service] {
		out = append(out, l.Addr())
	}
	return out
}

// Queue returns the outbound queue.
func (d *Daemon) Queue() *queue.Queue { return d.queue }

// Reload re-reads what can change without a restart: the certificate.
// Users and aliases are read from the store on every use, so changes made
// by admin commands take effect at once and need no reload.
func (d *Daemon) Reload() error {
	if d.certs == nil {
		return nil
	}
	if err := d.certs.Reload(); err != nil {
		return err
	}
	d.log.Info("reloaded certificate", "file", d.cfg.TLS.CertFile)
	return nil
}

// Panics counts recovered panics in sessions; it should stay zero.
func (d *Daemon) Panics() int64 {
	var n int64
	for _, s := range d.servers {
		n += s.Panics()
	}
	for _, s := range d.imap {
		n += s.Panics()
	}
	for _, s := range d.pop3 {
		n += s.Panics()
	}
	if d.sieve != nil {
		n += d.sieve.Panics()
	}
	if d.pickup != nil {
		n += d.pickup.Panics()
	}
	return n + d.fetchers.panics() + d.storePanics()
}

// storePanics counts the panics recovered in the store's goroutines and
// the daemon's own (startup sync).
func (d *Daemon) storePanics() int64 {
	n := d.bgPanics.Load()
	if p, ok := d.store.(interface{ Panics() int64 }); ok {
		n += p.Panics()
	}
	return n
}

// Shutdown stops listening, lets sessions finish up to the configured
// deadline (or ctx), stops the queue runner and closes the store.
func (d *Daemon) Shutdown(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, d.cfg.SMTP.ShutdownTimeout.D())
	defer cancel()
	var errs []error
	var wg sync.WaitGroup
	var mu sync.Mutex
	shut := func(f func(context.Context) error) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := f(ctx); err != nil {
				mu.Lock()
				errs = append(errs, err)
				mu.Unlock()
			}
		}()
	}
	for _, s := range d.servers {
		shut(s.Shutdown)
	}
	for _, s := range d.imap {
		shut(s.Shutdown)
	}
	for _, s := range d.pop3 {
		shut(s.Shutdown)
	}
	if d.http != nil {
		shut(d.http.Shutdown)
	}
	if d.sieve != nil {
		shut(d.sieve.Shutdown)
	}
	wg.Wait()
	d.stop()
	d.wg.Wait()
	_ = os.Remove(filepath.Join(d.cfg.DataDir, SocketName))
	return errors.Join(append(errs, d.store.Close())...)
}

// Run starts the daemon and serves until ctx ends, then shuts down.
// SIGHUP handling is the caller's: it calls Reload.
func (d *Daemon) Run(ctx context.Context) error {
	if err := d.Start(); err != nil {
		d.store.Close()
		return err
	}
	<-ctx.Done()
	d.log.Info("shutting down")
	err := d.Shutdown(context.Background())
	d.log.Info("stopped")
	return err
}

// DataDirPerms makes the data directory private to us and reachable for
// the sendmail socket (0711).
func DataDirPerms(dir string) error {
	if err := os.MkdirAll(dir, 0o711); err != nil {
		return err
	}
	return os.Chmod(dir, 0o711)
}

// syncOne is the startup sync of one mailbox, with a panic (a file in
// its Maildir that the sync mishandles) made its error and counted;
// uncaught, it would end the daemon at every start.
func (d *Daemon) syncOne(ctx context.Context, account, mailbox string) (err error) {
	defer func() {
		if r := recover(); r != nil {
			d.bgPanics.Add(1)
			d.log.Error("startup sync panic", "account", account, "mailbox", mailbox, "stack", string(debug.Stack()))
			err = fmt.Errorf("panic: %v", r)
		}
	}()
	return d.store.Sync(ctx, account, mailbox)
}

// syncAll sweeps the queue directory of crash leftovers, then runs
// store.Mail.Sync on every mailbox of every account.
func (d *Daemon) syncAll() {
	ctx := d.ctx
	if sw, ok := d.store.(interface{ SweepQueue(context.Context) error }); ok {
		if err := sw.SweepQueue(ctx); err != nil {
			d.log.Error("queue sweep", "err", err)
		}
	}
	accts, err := d.store.Accounts(ctx, "")
	if err != nil {
		d.log.Error("startup sync", "err", err)
		return
	}
	for _, a := range accts {
		boxes, err := d.store.Mailboxes(ctx, a.Address)
		if err != nil {
			d.log.Error("startup sync", "account", a.Address, "err", err)
			continue
		}
		for _, b := range boxes {
			if ctx.Err() != nil {
				return
			}
			if err := d.syncOne(ctx, a.Address, b.Name); err != nil {
				d.log.Error("startup sync", "account", a.Address, "mailbox", b.Name, "err", err)
			}
		}
	}
}

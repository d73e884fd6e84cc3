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
	"os"
	"path/filepath"
	"sync"

	"posthorn/internal/certs"
	"posthorn/internal/config"
	"posthorn/internal/delivery"
	"posthorn/internal/smtp"
	"posthorn/internal/store"
	"posthorn/internal/store/local"
	"posthorn/internal/users"
)

// Implemented lists the services this version can run. A listener for any
// other service in the config is an error, not a silent no-op.
var Implemented = []string{"smtp"}

// OpenStore opens the configured storage backend.
func OpenStore(cfg *config.Config, log *slog.Logger) (store.Store, error) {
	switch cfg.Store.Backend {
	case "local":
		return local.Open(local.Options{Dir: cfg.DataDir, Hostname: cfg.Hostname, Logger: log})
	}
	return nil, fmt.Errorf("store.backend %q is not available in this version", cfg.Store.Backend)
}

// NewUsers returns the account service over st with the config's rules.
func NewUsers(cfg *config.Config, st store.Store, log *slog.Logger) (*users.Service, error) {
	return users.New(users.Options{Directory: st, SubaddressSeparator: cfg.Delivery.SubaddressSeparator, Logger: log})
}

// Daemon is a running posthorn.
type Daemon struct {
	cfg   *config.Config
	log   *slog.Logger
	store store.Store
	certs *certs.Store // nil without TLS

	smtp      *smtp.Server
	listeners map[string][]net.Listener
	wg        sync.WaitGroup
	stop      context.CancelFunc // ends background work
	ctx       context.Context
}

// New builds the components. Nothing listens until Start.
func New(cfg *config.Config, log *slog.Logger) (*Daemon, error) {
	if err := checkServices(cfg); err != nil {
		return nil, err
	}
	d := &Daemon{cfg: cfg, log: log, listeners: map[string][]net.Listener{}}
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
	if err := d.buildSMTP(); err != nil {
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

func (d *Daemon) buildSMTP() error {
	us, err := NewUsers(d.cfg, d.store, d.log)
	if err != nil {
		return err
	}
	c := d.cfg.SMTP
	router, err := delivery.New(delivery.Options{
		Hostname:       d.cfg.Hostname,
		Users:          us,
		Store:          d.store,
		TempDir:        filepath.Join(d.cfg.DataDir, "tmp"),
		MaxHeaderBytes: int64(c.MaxHeaderSize),
		MaxHeaders:     c.MaxHeaders,
		MaxReceived:    c.MaxReceived,
		MinFreeBytes:   uint64(c.MaxMessageSize) * 2,
		Logger:         d.log,
	})
	if err != nil {
		return err
	}
	opts := smtp.Options{
		Service: "smtp", Hostname: d.cfg.Hostname, Backend: router, Logger: d.log,
		MaxMessageBytes: int64(c.MaxMessageSize), MaxRecipients: c.MaxRecipients,
		MaxLineLength: c.MaxLineLength, MaxConnections: c.MaxConnections,
		MaxConnectionsPerIP: c.MaxConnectionsPerIP, MaxErrors: c.MaxErrors,
		CommandTimeout: c.CommandTimeout.D(), DataTimeout: c.DataTimeout.D(),
	}
	if d.certs != nil {
		opts.TLS = d.certs.TLSConfig()
	}
	d.smtp, err = smtp.New(opts)
	return err
}

// Start opens every configured listener and serves in the background. It
// also reconciles every mailbox index with its storage, in the background,
// so files left by a crash between rename and index commit are indexed.
func (d *Daemon) Start() error {
	d.wg.Add(1)
	go func() {
		defer d.wg.Done()
		d.syncAll()
	}()
	for _, addr := range d.cfg.Listen.SMTP {
		l, err := net.Listen("tcp", addr)
		if err != nil {
			d.closeListeners()
			return fmt.Errorf("listen smtp %s: %w", addr, err)
		}
		d.listeners["smtp"] = append(d.listeners["smtp"], l)
	}
	for _, l := range d.listeners["smtp"] {
		d.wg.Add(1)
		go func() {
			defer d.wg.Done()
			if err := d.smtp.Serve(l); err != nil && !errors.Is(err, net.ErrClosed) {
				d.log.Error("smtp listener stopped", "addr", l.Addr().String(), "err", err)
			}
		}()
		d.log.Info("listening", "service", "smtp", "addr", l.Addr().String())
	}
	return nil
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
func (d *Daemon) Panics() int64 { return d.smtp.Panics() }

// Shutdown stops listening, lets sessions finish up to the configured
// deadline (or ctx), and closes the store.
func (d *Daemon) Shutdown(ctx context.Context) error {
	d.stop()
	ctx, cancel := context.WithTimeout(ctx, d.cfg.SMTP.ShutdownTimeout.D())
	defer cancel()
	err := d.smtp.Shutdown(ctx)
	d.wg.Wait()
	return errors.Join(err, d.store.Close())
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

// DataDirPerms makes the data directory private (0700).
func DataDirPerms(dir string) error {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return err
	}
	return os.Chmod(dir, 0o700)
}

// syncAll runs store.Mail.Sync on every mailbox of every account.
func (d *Daemon) syncAll() {
	ctx := d.ctx
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
			if err := d.store.Sync(ctx, a.Address, b.Name); err != nil {
				d.log.Error("startup sync", "account", a.Address, "mailbox", b.Name, "err", err)
			}
		}
	}
}

package cli

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/signal"
	"path/filepath"
	"syscall"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"posthorn/internal/config"
	"posthorn/internal/daemon"
	"posthorn/internal/users"
)

func (a *app) serveCmd() *cobra.Command {
	var dev bool
	var dir string
	cmd := &cobra.Command{
		Use:   "serve [--dev [--dir DIR]]",
		Short: "Run the mail server",
		Long: `serve starts every listener in the configuration and runs until SIGTERM or
SIGINT (graceful: sessions may finish their message). SIGHUP reloads the
certificate; users and aliases need no reload.

--dev creates, on first use, a ready-to-try setup in DIR (default
./posthorn-dev): domain example.test, user me@example.test with a password
printed once, a self-signed certificate, and every service on 127.0.0.1
unprivileged ports.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if dev {
				path, err := a.devSetup(dir)
				if err != nil {
					return err
				}
				a.configPath = path
			}
			return a.serve(dev)
		},
	}
	cmd.Flags().BoolVar(&dev, "dev", false, "run a local development setup (created on first use)")
	cmd.Flags().StringVar(&dir, "dir", "posthorn-dev", "directory of the --dev setup")
	return cmd
}

const devDomain, devUser = "example.test", "me"

// devSetup creates the --dev directory once and returns its config path.
func (a *app) devSetup(dir string) (string, error) {
	path := filepath.Join(dir, "posthorn.toml")
	if _, err := os.Stat(path); err == nil {
		return path, nil
	} else if !errors.Is(err, fs.ErrNotExist) {
		return "", err
	}
	if _, err := initDir(setup{dir: dir, domain: devDomain, hostname: "localhost", dev: true}); err != nil {
		return "", err
	}
	pw := users.GeneratePassword()
	err := a.withConfig(path, func(ctx context.Context, us *users.Service) error {
		_, err := us.AddAccount(ctx, devUser, devDomain, pw)
		return err
	})
	if err != nil {
		return "", err
	}
	fmt.Fprintf(a.stdout, "Created a development setup in %s\n\n  user:     %s@%s\n  password: %s   (shown once; change it with `posthorn --config %s user passwd %s@%s`)\n\n",
		dir, devUser, devDomain, pw, path, devUser, devDomain)
	return path, nil
}

func (a *app) withConfig(path string, fn func(context.Context, *users.Service) error) error {
	saved := a.configPath
	a.configPath = path
	defer func() { a.configPath = saved }()
	return a.withUsers(func(ctx context.Context, _ storeT, us *users.Service) error { return fn(ctx, us) })
}

// serve runs the daemon until a terminating signal.
func (a *app) serve(dev bool) error {
	cfg, err := a.loadConfig()
	if err != nil {
		return err
	}
	log := newLogger(cfg, a.stderr)
	d, err := daemon.New(cfg, log)
	if err != nil {
		return err
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	defer signal.Stop(hup)
	go func() {
		for range hup {
			if err := d.Reload(); err != nil {
				log.Error("reload failed", "err", err)
			}
		}
	}()
	if err := d.Start(); err != nil {
		return err
	}
	if dev {
		a.printEndpoints(cfg)
	}
	<-ctx.Done()
	log.Info("shutting down")
	return d.Shutdown(context.Background())
}

// printEndpoints shows what --dev runs and how to try it.
func (a *app) printEndpoints(cfg *config.Config) {
	tw := tabwriter.NewWriter(a.stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "SERVICE\tADDRESS\tTLS")
	for _, svc := range config.Services {
		for _, addr := range cfg.Listen.Addrs(svc) {
			fmt.Fprintf(tw, "%s\t%s\t%s\n", svc, addr, tlsMode(svc, cfg))
		}
	}
	tw.Flush()
	smtp := cfg.Listen.Addrs("smtp")
	if len(smtp) > 0 {
		fmt.Fprintf(a.stdout, "\nTry it:\n  swaks --server %s --from you@example.net --to %s@%s --header 'Subject: hello'\n", smtp[0], devUser, devDomain)
		fmt.Fprintf(a.stdout, "  curl --url smtp://%s --mail-from you@example.net --mail-rcpt %s@%s --upload-file message.eml\n", smtp[0], devUser, devDomain)
		fmt.Fprintf(a.stdout, "Mail lands in %s/mail/%s/%s/new/\n\n", cfg.DataDir, devDomain, devUser)
	}
}

func tlsMode(svc string, cfg *config.Config) string {
	if cfg.TLS.CertFile == "" {
		return "none"
	}
	switch svc {
	case "submissions", "imaps", "pop3s":
		return "implicit (self-signed)"
	case "http", "lmtp":
		return "none"
	}
	return "STARTTLS (self-signed)"
}

package cli

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"

	"github.com/spf13/cobra"

	"posthorn/internal/certs"
	"posthorn/internal/config"
	"posthorn/internal/daemon"
	"posthorn/internal/pickup"
)

func (a *app) initCmd() *cobra.Command {
	var dir, domain, hostname string
	cmd := &cobra.Command{
		Use:   "init --dir DIR --domain DOMAIN --hostname HOST",
		Short: "Write a commented configuration and an empty data directory",
		Long: `init writes DIR/posthorn.toml with every option, commented, at its default,
creates the data directory, registers DOMAIN as a local domain and makes a
self-signed certificate for HOST (replace it with a real one for production).
It never overwrites an existing configuration.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			path, err := initDir(setup{dir: dir, domain: domain, hostname: hostname})
			if err != nil {
				return err
			}
			fmt.Fprintf(a.stdout, "wrote %s\nnext: posthorn --config %s user add postmaster@%s\n", path, path, domain)
			return nil
		},
	}
	cmd.Flags().StringVar(&dir, "dir", "", "directory for posthorn.toml and the data (required)")
	cmd.Flags().StringVar(&domain, "domain", "", "first mail domain (required)")
	cmd.Flags().StringVar(&hostname, "hostname", "", "this server's host name (required)")
	for _, f := range []string{"dir", "domain", "hostname"} {
		_ = cmd.MarkFlagRequired(f)
	}
	return cmd
}

// setup describes a new installation.
type setup struct {
	dir, domain, hostname string
	dev                   bool // loopback, unprivileged ports
}

// devListen are the `serve --dev` addresses of the implemented services.
var devListen = map[string]string{
	"smtp": "127.0.0.1:2525", "submission": "127.0.0.1:2587", "submissions": "127.0.0.1:2465",
	"imap": "127.0.0.1:1143", "imaps": "127.0.0.1:1993", "pop3": "127.0.0.1:1110",
	"pop3s": "127.0.0.1:1995", "lmtp": "127.0.0.1:2424", "managesieve": "127.0.0.1:4190", "http": "127.0.0.1:2080",
}

// prodListen are the standard ports, all addresses.
// LMTP stays off: it is for a front MTA, configured on purpose.
var prodListen = map[string]string{"smtp": ":25", "submission": ":587", "submissions": ":465",
	"imap": ":143", "imaps": ":993", "pop3": ":110", "pop3s": ":995", "managesieve": ":4190"}

// initDir writes the configuration, certificate and data directory.
func initDir(s setup) (string, error) {
	if err := os.MkdirAll(s.dir, 0o755); err != nil {
		return "", err
	}
	path := filepath.Join(s.dir, "posthorn.toml")
	if _, err := os.Stat(path); err == nil {
		return "", fmt.Errorf("%s exists: refusing to overwrite it", path)
	} else if !errors.Is(err, fs.ErrNotExist) {
		return "", err
	}
	c := config.Default()
	c.Hostname = s.hostname
	c.TLS = config.TLS{CertFile: "tls/cert.pem", KeyFile: "tls/key.pem"}
	listen := prodListen
	if s.dev {
		listen = devListen
	}
	for _, svc := range daemon.Implemented {
		if addr, ok := listen[svc]; ok {
			if err := c.Listen.Set(svc, []string{addr}); err != nil {
				return "", err
			}
		}
	}
	if err := c.Validate(); err != nil {
		return "", err
	}
	if err := writeNew(path, []byte(config.Template(c)), 0o644); err != nil {
		return "", err
	}
	return path, finishSetup(path, s)
}

// finishSetup creates what the written configuration points at.
func finishSetup(path string, s setup) error {
	cfg, err := config.Load(path)
	if err != nil {
		return err
	}
	hosts := []string{cfg.Hostname}
	if s.dev {
		hosts = append(hosts, "localhost", "127.0.0.1")
	}
	if err := certs.WriteSelfSigned(cfg.TLS.CertFile, cfg.TLS.KeyFile, hosts...); err != nil {
		return err
	}
	if err := daemon.DataDirPerms(cfg.DataDir); err != nil {
		return err
	}
	if err := pickup.MakeDir(filepath.Join(cfg.DataDir, daemon.MaildropName)); err != nil {
		return err
	}
	st, err := daemon.OpenStore(cfg, nil)
	if err != nil {
		return err
	}
	defer st.Close()
	us, err := daemon.NewUsers(cfg, st, nil, nil)
	if err != nil {
		return err
	}
	_, err = us.AddDomain(context.Background(), s.domain)
	return err
}

func writeNew(path string, data []byte, mode os.FileMode) error {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, mode)
	if err != nil {
		return err
	}
	if _, err := f.Write(data); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

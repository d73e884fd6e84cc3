package cli

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"os/signal"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/spf13/cobra"

	"posthorn/internal/config"
	"posthorn/internal/daemon"
	"posthorn/internal/fetch"
)

// fetchFlags are the options of `posthorn fetch`.
type fetchFlags struct {
	once                bool
	from, to            string
	passwordFile, pwCmd string
	keep, plaintext     bool
	fingerprint, caFile string
	timeout             time.Duration
}

func (a *app) fetchCmd() *cobra.Command {
	var o fetchFlags
	cmd := &cobra.Command{
		Use:   "fetch [--once] [NAME...] | fetch --from URL --to ADDRESS [--password-file F] [--keep] [--tls-fingerprint X]",
		Short: "Fetch mail from remote POP3 and IMAP mailboxes (a mail retrieval agent)",
		Long: `fetch pulls mail from remote mailboxes and delivers each message here, through
aliases and Sieve, as mail arriving by SMTP. A message is deleted remotely
(unless --keep / keep = true) only once it is on stable storage here, and
a fetch killed at any moment neither loses nor duplicates mail.

With NAME (or no name: every source), fetch works on the [[fetch]] tables of
the configuration: --once makes one pass and exits, otherwise it runs until
SIGTERM or SIGINT, as the daemon does. A source that the daemon is fetching
at the moment is refused (its state is locked).

With --from, fetch makes one pass over one remote mailbox given by URL:
  imaps://USER@HOST[:PORT]/FOLDER   IMAP over TLS (default folder INBOX)
  imap://USER@HOST[:PORT]/FOLDER    IMAP with STARTTLS
  pop3s://USER@HOST[:PORT]          POP3 over TLS
  pop3://USER@HOST[:PORT]           POP3 with STLS
(--plaintext allows imap:// and pop3:// without TLS). Its state lives under
the data directory, named after protocol, user, host and port, so a second
run with --keep fetches only what is new.

The server's certificate is verified against the system roots, or
--tls-ca-file, or pinned with --tls-fingerprint (SHA-256 of the certificate,
as "openssl x509 -noout -fingerprint -sha256" prints it).

Exit status: 0 when every pass succeeded, 75 when one failed (try again
later), 64 for a usage error.`,
		RunE: func(_ *cobra.Command, args []string) error { return a.fetch(o, args) },
	}
	fl := cmd.Flags()
	fl.BoolVar(&o.once, "once", false, "one pass over each source, then exit")
	fl.StringVar(&o.from, "from", "", "remote mailbox URL: imaps://, imap://, pop3s:// or pop3://USER@HOST[:PORT][/FOLDER]")
	fl.StringVar(&o.to, "to", "", "local address to deliver to (with --from)")
	fl.StringVar(&o.passwordFile, "password-file", "", "file whose first line is the password (with --from)")
	fl.StringVar(&o.pwCmd, "password-command", "", "shell command that prints the password (with --from)")
	fl.BoolVar(&o.keep, "keep", false, "leave the messages on the server (with --from)")
	fl.BoolVar(&o.plaintext, "plaintext", false, "no TLS at all for imap:// and pop3:// (the password crosses the network in the clear)")
	fl.StringVar(&o.fingerprint, "tls-fingerprint", "", "SHA-256 of the server certificate, instead of CA verification (with --from)")
	fl.StringVar(&o.caFile, "tls-ca-file", "", "PEM CA certificates to verify the server with (with --from)")
	fl.DurationVar(&o.timeout, "timeout", fetch.DefaultTimeout, "timeout of each network read and write (with --from)")
	return cmd
}

func (a *app) fetch(o fetchFlags, names []string) error {
	cfg, err := a.loadConfig()
	if err != nil {
		return &exitError{exTempFail, err}
	}
	var sources []fetch.Source
	if o.from != "" {
		if len(names) > 0 {
			return exitf(exUsage, "--from fetches one URL: no source names with it")
		}
		src, err := urlSource(o)
		if err != nil {
			return &exitError{exUsage, err}
		}
		sources, o.once = []fetch.Source{src}, true
	} else {
		if o.to != "" || o.passwordFile != "" || o.pwCmd != "" || o.keep || o.fingerprint != "" || o.caFile != "" {
			return exitf(exUsage, "--to, --password-file, --keep and the TLS options go with --from; sources in the configuration have their own keys")
		}
		if sources, err = configSources(cfg, names); err != nil {
			return &exitError{exUsage, err}
		}
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	return a.withUsers(func(_ context.Context, st storeT, us *usersT) error {
		log := newLogger(cfg, a.stderr).With("service", "fetch")
		fd, err := daemon.NewFetchDeliverer(cfg, st, us, storeQueue{st}, log)
		if err != nil {
			return &exitError{exTempFail, err}
		}
		return a.runSources(ctx, cfg, sources, fd, o.once, log)
	})
}

// runSources fetches from every source at once: one pass each, or until
// ctx ends.
func (a *app) runSources(ctx context.Context, cfg *config.Config, sources []fetch.Source, fd fetch.Deliverer, once bool, log *slog.Logger) error {
	var wg sync.WaitGroup
	var mu sync.Mutex
	var failed []string
	for _, src := range sources {
		wg.Go(func() {
			f, err := daemon.NewFetcher(cfg, src, fd, log)
			if err == nil {
				defer f.Close()
				if once {
					var st fetch.Stats
					st, err = f.Once(ctx)
					mu.Lock()
					fmt.Fprintf(a.stdout, "%s: %d fetched, %d skipped, %d duplicates, %d deleted\n",
						src.Name, st.Fetched, st.Skipped, st.Duplicates, st.Deleted)
					mu.Unlock()
				} else {
					f.Run(ctx)
				}
			}
			if err != nil {
				mu.Lock()
				fmt.Fprintf(a.stderr, "posthorn fetch: %s: %v\n", src.Name, err)
				failed = append(failed, src.Name)
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	if len(failed) > 0 {
		slices.Sort(failed)
		return exitf(exTempFail, "failed: %s", strings.Join(failed, ", "))
	}
	return nil
}

// configSources returns the [[fetch]] sources named, or all.
func configSources(cfg *config.Config, names []string) ([]fetch.Source, error) {
	if len(cfg.Fetch) == 0 {
		return nil, errors.New("no [[fetch]] sources in the configuration (or use --from URL --to ADDRESS)")
	}
	var out []fetch.Source
	for _, f := range cfg.Fetch {
		if len(names) == 0 || slices.Contains(names, f.Name) {
			out = append(out, daemon.FetchSource(f))
		}
	}
	for _, n := range names {
		if !slices.ContainsFunc(cfg.Fetch, func(f config.Fetch) bool { return f.Name == n }) {
			return nil, fmt.Errorf("no [[fetch]] source named %q", n)
		}
	}
	return out, nil
}

// urlSource builds the source of --from.
func urlSource(o fetchFlags) (fetch.Source, error) {
	u, err := url.Parse(o.from)
	if err != nil {
		return fetch.Source{}, fmt.Errorf("--from: %w", err)
	}
	src := fetch.Source{Account: o.to, Host: u.Hostname(), Keep: o.keep, Fingerprint: o.fingerprint,
		CAFile: o.caFile, Timeout: o.timeout}
	switch strings.ToLower(u.Scheme) {
	case "imaps", "imap":
		src.Protocol = fetch.IMAP
	case "pop3s", "pop3", "pops", "pop":
		src.Protocol = fetch.POP3
	default:
		return src, fmt.Errorf("--from: scheme %q is not imaps, imap, pop3s or pop3", u.Scheme)
	}
	src.TLS = fetch.TLSImplicit
	if !strings.HasSuffix(strings.ToLower(u.Scheme), "s") {
		src.TLS = fetch.TLSStart
		if o.plaintext {
			src.TLS, src.Insecure = fetch.TLSNone, true
		}
	}
	if u.User == nil || u.User.Username() == "" {
		return src, errors.New("--from: the URL needs a user: imaps://USER@HOST")
	}
	if _, has := u.User.Password(); has {
		return src, errors.New("--from: no password in the URL (other users see command lines): use --password-file or --password-command")
	}
	src.User = u.User.Username()
	if p := u.Port(); p != "" {
		if src.Port, err = strconv.Atoi(p); err != nil {
			return src, fmt.Errorf("--from: port %q is not a number", p)
		}
	}
	if folder := strings.Trim(u.Path, "/"); folder != "" {
		src.Folders = []string{folder}
	}
	switch {
	case o.to == "":
		return src, errors.New("--to ADDRESS is required with --from")
	case o.passwordFile != "" && o.pwCmd != "":
		return src, errors.New("--password-file or --password-command, not both")
	case o.passwordFile != "":
		src.Password = fetch.PasswordFile(o.passwordFile)
	case o.pwCmd != "":
		src.Password = fetch.PasswordCommand(o.pwCmd)
	default:
		return src, errors.New("--password-file or --password-command is required with --from")
	}
	src.Name = adhocName(src)
	return src, nil
}

// adhocName names the state of a --from source after what identifies the
// remote mailbox.
func adhocName(src fetch.Source) string {
	port := src.Port
	if port == 0 {
		port = fetch.DefaultPort(src.Protocol, src.TLS)
	}
	raw := fmt.Sprintf("url-%s-%s@%s-%d", src.Protocol, src.User, src.Host, port)
	var b strings.Builder
	for _, c := range []byte(raw) {
		if 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || strings.IndexByte("._-@+", c) >= 0 {
			b.WriteByte(c)
		} else {
			b.WriteByte('_')
		}
	}
	name := b.String()
	if len(name) > 80 {
		sum := sha256.Sum256([]byte(raw))
		name = name[:60] + "-" + hex.EncodeToString(sum[:8])
	}
	return name
}

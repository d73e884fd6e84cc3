// Package cli is every command-line surface of posthorn: flags, usage text
// and output for humans. It parses, then calls daemon or the owning package.
package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"posthorn/internal/mua"
	"strings"

	"github.com/spf13/cobra"

	"posthorn/internal/config"
	"posthorn/internal/daemon"
	"posthorn/internal/store"
	"posthorn/internal/unixmail"
	"posthorn/internal/users"
)

// DefaultConfig is used when neither --config nor POSTHORN_CONFIG is set.
const DefaultConfig = "/etc/posthorn/posthorn.toml"

// app carries what every command shares.
type app struct {
	configPath string
	stdin      io.Reader
	stdout     io.Writer
	stderr     io.Writer
}

// Main runs the command line and returns the process exit code. argv0 is
// the name the program was run as: "sendmail", "mailq" and "newaliases"
// behave as those classic commands.
func Main(argv0 string, args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	a := &app{stdin: stdin, stdout: stdout, stderr: stderr}
	root := a.rootCmd()
	switch filepath.Base(argv0) {
	case "sendmail":
		args = append([]string{"sendmail"}, args...)
	case "mailq":
		args = append([]string{"queue", "list"}, args...)
	case "newaliases":
		args = append([]string{"newaliases"}, args...)
	}
	root.SetArgs(args)
	root.SetIn(stdin)
	root.SetOut(stdout)
	root.SetErr(stderr)
	if err := root.Execute(); err != nil {
		// Errors may quote what a server said (posthorn mail, fetch):
		// control characters must not reach the terminal as escapes.
		fmt.Fprintln(stderr, "posthorn:", mua.Printable(err.Error()))
		var ee *exitError
		if errors.As(err, &ee) {
			return ee.code
		}
		return 1
	}
	return 0
}

func (a *app) rootCmd() *cobra.Command {
	root := &cobra.Command{
		Use:           "posthorn",
		Short:         "Posthorn: a complete Internet mail system in one binary",
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	def := os.Getenv("POSTHORN_CONFIG")
	if def == "" {
		def = DefaultConfig
	}
	root.PersistentFlags().StringVar(&a.configPath, "config", def, "configuration file (env POSTHORN_CONFIG)")
	root.AddCommand(a.initCmd(), a.serveCmd(), a.domainCmd(), a.userCmd(), a.aliasCmd(), a.queueCmd(), a.sendmailCmd(), a.newaliasesCmd(), a.deliverCmd(), a.fetchCmd(), a.sieveCmd(), a.mailCmd())
	return root
}

// loadConfig reads the configuration named by --config.
func (a *app) loadConfig() (*config.Config, error) {
	return config.Load(a.configPath)
}

// withUsers opens the store and the account service for an admin command.
// The daemon may be running: the store takes care of concurrent access.
func (a *app) withUsers(fn func(ctx context.Context, st store.Store, us *users.Service) error) error {
	cfg, err := a.loadConfig()
	if err != nil {
		return err
	}
	log := newLogger(cfg, a.stderr)
	st, err := daemon.OpenStore(cfg, log)
	if errors.Is(err, fs.ErrPermission) {
		// The store is private to the daemon's user; there is no
		// unprivileged path to it (Postfix's showq has no counterpart).
		return exitf(exNoPerm, "%v: this needs root or the user posthorn runs as", err)
	}
	if err != nil {
		return err
	}
	defer st.Close()
	us, err := daemon.NewUsers(cfg, st, nil, log)
	if err != nil {
		return err
	}
	return fn(context.Background(), st, us)
}

// newLogger builds the structured logger the config asks for.
func newLogger(cfg *config.Config, w io.Writer) *slog.Logger {
	var level slog.Level
	_ = level.UnmarshalText([]byte(cfg.Log.Level))
	opts := &slog.HandlerOptions{Level: level}
	if strings.EqualFold(cfg.Log.Format, "json") {
		return slog.New(slog.NewJSONHandler(w, opts))
	}
	return slog.New(slog.NewTextHandler(w, opts))
}

func (a *app) newaliasesCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "newaliases",
		Short: "Check the alias files of [unix] and report how many aliases they hold",
		Long: `newaliases reads the alias files named in [unix] aliases (/etc/aliases
format) and reports errors with their file and line, as the classic command
does. There is no database to rebuild: the daemon reads a file again as soon
as it changes. Aliases of virtual domains live in the store (posthorn alias).`,
		Args: cobra.ArbitraryArgs,
		RunE: func(*cobra.Command, []string) error { return a.newaliases() },
	}
}

// newaliases checks the [unix] alias files (also sendmail -bi and -I).
func (a *app) newaliases() error {
	cfg, err := a.loadConfig()
	if err != nil {
		return err
	}
	if len(cfg.Unix.Domains) == 0 {
		fmt.Fprintln(a.stdout, "no [unix] domains: aliases live in the store and apply at once (posthorn alias list)")
		return nil
	}
	table, err := unixmail.LoadAliases(cfg.Unix.Aliases)
	if err != nil {
		return err
	}
	fmt.Fprintf(a.stdout, "%d aliases in %s\n", len(table), strings.Join(cfg.Unix.Aliases, ", "))
	return nil
}

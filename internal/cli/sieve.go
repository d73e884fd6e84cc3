package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"github.com/spf13/cobra"

	"posthorn/internal/sieve"
	"posthorn/internal/store"
	"posthorn/internal/users"
)

// sieveCmd manages users' Sieve scripts: named scripts, one active, the
// model ManageSieve (RFC 5804) uses too. A script is compiled before it
// is stored; a broken one is refused with its line number and the active
// script keeps working.
func (a *app) sieveCmd() *cobra.Command {
	cmd := &cobra.Command{Use: "sieve", Short: "Manage users' Sieve filters (RFC 5228)"}
	var name string
	var activate bool
	put := &cobra.Command{
		Use:   "put USER FILE",
		Short: "Store a script (FILE \"-\" reads standard input); --activate makes it the active one",
		Long: `put compiles FILE and stores it as the script NAME (by default the file's
name without .sieve, or "default" for standard input). A script that does
not compile is refused with its line number; the stored scripts, and the
active one, are unchanged.`,
		Args: cobra.ExactArgs(2),
		RunE: a.run(func(ctx context.Context, st storeT, _ *users.Service, args []string) error {
			return a.sievePut(ctx, st, args[0], args[1], name, activate)
		}),
	}
	put.Flags().StringVar(&name, "name", "", "script name")
	put.Flags().BoolVar(&activate, "activate", false, "make it the active script")
	cmd.AddCommand(put,
		&cobra.Command{
			Use: "get USER [NAME]", Short: "Print a script (the active one without NAME)", Args: cobra.RangeArgs(1, 2),
			RunE: a.run(func(ctx context.Context, st storeT, _ *users.Service, args []string) error {
				return a.sieveGet(ctx, st, args)
			}),
		},
		&cobra.Command{
			Use: "list USER", Short: "List a user's scripts; the active one is marked", Args: cobra.ExactArgs(1),
			RunE: a.run(func(ctx context.Context, st storeT, _ *users.Service, args []string) error {
				return a.sieveList(ctx, st, args[0])
			}),
		},
		&cobra.Command{
			Use: "activate USER NAME", Short: "Make NAME the active script", Args: cobra.ExactArgs(2),
			RunE: a.run(func(ctx context.Context, st storeT, _ *users.Service, args []string) error {
				return a.sieveActivate(ctx, st, args[0], args[1])
			}),
		},
		&cobra.Command{
			Use: "deactivate USER", Short: "Turn filtering off (no script active)", Args: cobra.ExactArgs(1),
			RunE: a.run(func(ctx context.Context, st storeT, _ *users.Service, args []string) error {
				return a.sieveActivate(ctx, st, args[0], "")
			}),
		},
		&cobra.Command{
			Use: "del USER NAME", Short: "Delete a script (not the active one)", Args: cobra.ExactArgs(2),
			RunE: a.run(func(ctx context.Context, st storeT, _ *users.Service, args []string) error {
				return a.sieveDelete(ctx, st, args[0], args[1])
			}),
		},
		&cobra.Command{
			Use: "check [USER] FILE", Short: "Compile a script and report errors, storing nothing", Args: cobra.RangeArgs(1, 2),
			RunE: func(_ *cobra.Command, args []string) error {
				text, err := a.readScript(args[len(args)-1])
				if err != nil {
					return err
				}
				if _, err := sieve.Compile(text); err != nil {
					return fmt.Errorf("%s: %w", args[len(args)-1], err)
				}
				fmt.Fprintln(a.stdout, "ok")
				return nil
			},
		},
	)
	return cmd
}

func (a *app) readScript(file string) (string, error) {
	var r io.Reader = a.stdin
	if file != "-" {
		f, err := os.Open(file)
		if err != nil {
			return "", err
		}
		defer f.Close()
		r = f
	}
	b, err := io.ReadAll(io.LimitReader(r, sieve.MaxScriptSize+1))
	return string(b), err
}

func (a *app) sievePut(ctx context.Context, st storeT, user, file, name string, activate bool) error {
	acct, err := sieveAccount(ctx, st, user)
	if err != nil {
		return err
	}
	if name == "" {
		name = "default"
		if file != "-" {
			name = strings.TrimSuffix(filepath.Base(file), ".sieve")
		}
	}
	if err := sieve.ValidName(name); err != nil {
		return err
	}
	text, err := a.readScript(file)
	if err != nil {
		return err
	}
	if _, err := sieve.Compile(text); err != nil {
		return fmt.Errorf("%s: script refused: %w", file, err)
	}
	if err := st.PutSieveScript(ctx, acct, name, text); err != nil {
		return err
	}
	if activate {
		if err := st.ActivateSieveScript(ctx, acct, name); err != nil {
			return err
		}
	}
	fmt.Fprintf(a.stdout, "stored %s for %s%s\n", name, acct, map[bool]string{true: " (active)"}[activate])
	return nil
}

func (a *app) sieveGet(ctx context.Context, st storeT, args []string) error {
	acct, err := sieveAccount(ctx, st, args[0])
	if err != nil {
		return err
	}
	var text string
	if len(args) == 2 {
		text, err = st.SieveScript(ctx, acct, args[1])
		err = notFound(err, "script", args[1])
	} else {
		_, text, err = st.ActiveSieveScript(ctx, acct)
		if errors.Is(err, users.ErrNotFound) {
			return fmt.Errorf("%s has no active script", acct)
		}
	}
	if err == nil {
		_, err = io.WriteString(a.stdout, text)
	}
	return err
}

func (a *app) sieveList(ctx context.Context, st storeT, user string) error {
	acct, err := sieveAccount(ctx, st, user)
	if err != nil {
		return err
	}
	list, err := st.SieveScripts(ctx, acct)
	for _, s := range list {
		mark := ""
		if s.Active {
			mark = "\tactive"
		}
		fmt.Fprintf(a.stdout, "%s\t%d\t%s%s\n", s.Name, s.Size, s.Modified.Format("2006-01-02 15:04"), mark)
	}
	return err
}

func (a *app) sieveActivate(ctx context.Context, st storeT, user, name string) error {
	acct, err := sieveAccount(ctx, st, user)
	if err != nil {
		return err
	}
	return notFound(st.ActivateSieveScript(ctx, acct, name), "script", name)
}

func (a *app) sieveDelete(ctx context.Context, st storeT, user, name string) error {
	acct, err := sieveAccount(ctx, st, user)
	if err != nil {
		return err
	}
	err = st.DeleteSieveScript(ctx, acct, name)
	if errors.Is(err, store.ErrActive) {
		return fmt.Errorf("script %s is active: activate another or deactivate first", name)
	}
	return notFound(err, "script", name)
}

// sieveAccount canonicalises USER and checks that the account exists.
func sieveAccount(ctx context.Context, st storeT, user string) (string, error) {
	acct, err := canonicalArg(user)
	if err != nil {
		return "", err
	}
	if _, err := st.Account(ctx, acct); err != nil {
		return "", notFound(err, "account", acct)
	}
	return acct, nil
}

package cli

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"posthorn/internal/config"
	"strings"

	"github.com/spf13/cobra"

	"posthorn/internal/smtp"
	"posthorn/internal/store"
	"posthorn/internal/users"
)

type (
	storeT = store.Store
	usersT = users.Service
)

func (a *app) domainCmd() *cobra.Command {
	cmd := &cobra.Command{Use: "domain", Short: "Manage the mail domains this server receives for"}
	var force bool
	del := &cobra.Command{
		Use: "del DOMAIN", Short: "Stop receiving for a domain", Args: cobra.ExactArgs(1),
		RunE: a.run(func(ctx context.Context, _ storeT, us *users.Service, args []string) error {
			return us.DeleteDomain(ctx, args[0], force)
		}),
	}
	del.Flags().BoolVar(&force, "force", false, "also delete its accounts and aliases (mail files stay on disk)")
	cmd.AddCommand(
		&cobra.Command{
			Use: "add DOMAIN", Short: "Receive mail for a domain", Args: cobra.ExactArgs(1),
			RunE: a.run(func(ctx context.Context, _ storeT, us *users.Service, args []string) error {
				d, err := us.AddDomain(ctx, args[0])
				if errors.Is(err, users.ErrExists) {
					return fmt.Errorf("domain %s exists already", d)
				}
				return err
			}),
		},
		&cobra.Command{
			Use: "list", Short: "List the domains", Args: cobra.NoArgs,
			RunE: a.run(func(ctx context.Context, st storeT, _ *users.Service, _ []string) error {
				ds, err := st.Domains(ctx)
				for _, d := range ds {
					fmt.Fprintln(a.stdout, d)
				}
				return err
			}),
		},
		del,
	)
	return cmd
}

// run adapts an admin function to cobra, opening the store around it.
func (a *app) run(fn func(context.Context, storeT, *users.Service, []string) error) func(*cobra.Command, []string) error {
	return func(_ *cobra.Command, args []string) error {
		return a.withUsers(func(ctx context.Context, st store.Store, us *users.Service) error {
			return fn(ctx, st, us, args)
		})
	}
}

// parseAddress splits a command-line address with the same parser as SMTP.
func parseAddress(s string) (local, domain string, err error) {
	addr, err := smtp.ParseAddress(s, true)
	if err != nil {
		return "", "", fmt.Errorf("bad address %q: %w", s, err)
	}
	if addr.IsLiteral() {
		return "", "", fmt.Errorf("bad address %q: a domain name is needed", s)
	}
	return addr.Local, addr.ASCIIDomain(), nil
}

// password reads one line from stdin, or makes a new password; shown is
// then called once the password is in use, to print it (never before:
// a command that then failed printed a password that was nobody's).
func (a *app) password(fromStdin bool) (pw string, shown func(), err error) {
	if !fromStdin {
		pw := users.GeneratePassword()
		return pw, func() { fmt.Fprintf(a.stdout, "password: %s\n", pw) }, nil
	}
	pw, err = a.stdinPassword()
	return pw, func() {}, err
}

func (a *app) stdinPassword() (string, error) {
	line, err := bufio.NewReader(io.LimitReader(a.stdin, users.MaxPasswordLen+2)).ReadString('\n')
	if err != nil && !errors.Is(err, io.EOF) {
		return "", err
	}
	pw := strings.TrimRight(line, "\r\n")
	if pw == "" {
		return "", errors.New("empty password on standard input")
	}
	return pw, nil
}

func (a *app) userCmd() *cobra.Command {
	cmd := &cobra.Command{Use: "user", Short: "Manage accounts"}
	var stdinAdd, stdinPasswd, purge bool
	add := &cobra.Command{
		Use: "add ADDRESS", Short: "Create an account (prints a generated password unless --password-stdin)", Args: cobra.ExactArgs(1),
		RunE: a.run(func(ctx context.Context, _ storeT, us *users.Service, args []string) error {
			local, domain, err := parseAddress(args[0])
			if err != nil {
				return err
			}
			pw, shown, err := a.password(stdinAdd)
			if err != nil {
				return err
			}
			acct, err := us.AddAccount(ctx, local, domain, pw)
			if errors.Is(err, users.ErrExists) {
				return fmt.Errorf("account %s exists already", args[0])
			}
			if err == nil {
				shown()
				fmt.Fprintf(a.stdout, "created %s\n", acct.Address)
			}
			return err
		}),
	}
	add.Flags().BoolVar(&stdinAdd, "password-stdin", false, "read the password from the first line of standard input")
	passwd := &cobra.Command{
		Use: "passwd ADDRESS", Short: "Set an account's password", Args: cobra.ExactArgs(1),
		RunE: a.run(func(ctx context.Context, _ storeT, us *users.Service, args []string) error {
			addr, err := canonicalArg(args[0])
			if err != nil {
				return err
			}
			pw, shown, err := a.password(stdinPasswd)
			if err != nil {
				return err
			}
			if err := notFound(us.SetPassword(ctx, addr, pw), "account", addr); err != nil {
				return err
			}
			shown()
			return nil
		}),
	}
	passwd.Flags().BoolVar(&stdinPasswd, "password-stdin", false, "read the password from the first line of standard input")
	del := &cobra.Command{
		Use: "del ADDRESS", Short: "Delete an account (its mail stays on disk unless --purge)", Args: cobra.ExactArgs(1),
		RunE: a.run(func(ctx context.Context, st storeT, _ *users.Service, args []string) error {
			return a.deleteUser(ctx, st, args[0], purge)
		}),
	}
	del.Flags().BoolVar(&purge, "purge", false, "also remove the account's mail")
	list := &cobra.Command{
		Use: "list [DOMAIN]", Short: "List accounts", Args: cobra.MaximumNArgs(1),
		RunE: a.run(func(ctx context.Context, st storeT, _ *users.Service, args []string) error {
			domain := ""
			if len(args) == 1 {
				d, err := users.NormalizeDomain(args[0])
				if err != nil {
					return err
				}
				domain = d
			}
			accts, err := st.Accounts(ctx, domain)
			for _, ac := range accts {
				fmt.Fprintf(a.stdout, "%s\t%s\n", ac.Address, ac.Created.Format("2006-01-02"))
			}
			return err
		}),
	}
	quota := &cobra.Command{
		Use:   "quota ADDRESS [SIZE|none]",
		Short: "Show an account's storage use, or set its quota (e.g. 2GiB, 500MB; none removes it)",
		Long: `quota shows the bytes an account's mail takes and its limit. With SIZE it
sets the limit: at the limit, SMTP and LMTP answer 452 4.2.2 (mailbox full,
the sender retries later) and IMAP APPEND answers NO [OVERQUOTA].`,
		Args: cobra.RangeArgs(1, 2),
		RunE: a.run(func(ctx context.Context, st storeT, _ *users.Service, args []string) error {
			return a.quota(ctx, st, args)
		}),
	}
	cmd.AddCommand(add, passwd, list, del, quota, a.appPasswordCmd())
	return cmd
}

func canonicalArg(s string) (string, error) {
	local, domain, err := parseAddress(s)
	if err != nil {
		return "", err
	}
	return users.Canonical(local, domain)
}

func notFound(err error, what, name string) error {
	if errors.Is(err, users.ErrNotFound) {
		return fmt.Errorf("no %s %s", what, name)
	}
	return err
}

// maildirOwner is implemented by stores that keep mail in a directory.
type maildirOwner interface {
	MaildirPath(ctx context.Context, address string) (string, error)
}

func (a *app) deleteUser(ctx context.Context, st storeT, arg string, purge bool) error {
	addr, err := canonicalArg(arg)
	if err != nil {
		return err
	}
	var dir string
	if md, ok := st.(maildirOwner); ok {
		dir, _ = md.MaildirPath(ctx, addr)
	}
	if err := notFound(st.DeleteAccount(ctx, addr), "account", addr); err != nil {
		return err
	}
	switch {
	case dir == "":
	case purge:
		if err := os.RemoveAll(dir); err != nil {
			return err
		}
		fmt.Fprintf(a.stdout, "deleted %s and removed %s\n", addr, dir)
	default:
		fmt.Fprintf(a.stdout, "deleted %s; its mail is still in %s\n", addr, dir)
	}
	return nil
}

func (a *app) aliasCmd() *cobra.Command {
	cmd := &cobra.Command{Use: "alias", Short: "Manage aliases (ALIAS is local@domain, or @domain for a catch-all)"}
	cmd.AddCommand(
		&cobra.Command{
			Use: "add ALIAS TARGET...", Short: "Send mail for ALIAS to each TARGET", Args: cobra.MinimumNArgs(2),
			RunE: a.run(func(ctx context.Context, _ storeT, us *users.Service, args []string) error {
				targets, err := canonicalTargets(args[1:])
				if err != nil {
					return err
				}
				key, err := us.AddAlias(ctx, args[0], targets)
				if err == nil {
					fmt.Fprintf(a.stdout, "%s -> %s\n", key, strings.Join(targets, ", "))
				}
				return err
			}),
		},
		&cobra.Command{
			Use: "list [DOMAIN]", Short: "List aliases", Args: cobra.MaximumNArgs(1),
			RunE: a.run(func(ctx context.Context, st storeT, _ *users.Service, args []string) error {
				domain := ""
				if len(args) == 1 {
					domain = args[0]
				}
				al, err := st.Aliases(ctx, domain)
				for _, x := range al {
					fmt.Fprintf(a.stdout, "%s\t%s\n", x.Address, strings.Join(x.Targets, ", "))
				}
				return err
			}),
		},
		&cobra.Command{
			Use: "del ALIAS [TARGET]", Short: "Delete an alias, or one of its targets", Args: cobra.RangeArgs(1, 2),
			RunE: a.run(func(ctx context.Context, st storeT, us *users.Service, args []string) error {
				key, err := us.AliasKey(ctx, args[0])
				if err != nil {
					return err
				}
				target := ""
				if len(args) == 2 {
					if target, err = canonicalArg(args[1]); err != nil {
						return err
					}
				}
				return notFound(st.DeleteAlias(ctx, key, target), "alias", key)
			}),
		},
	)
	return cmd
}

// canonicalTargets checks and canonicalises alias targets.
func canonicalTargets(args []string) ([]string, error) {
	out := make([]string, 0, len(args))
	for _, t := range args {
		local, domain, err := parseAddress(t)
		if err != nil {
			return nil, err
		}
		d, err := users.NormalizeDomain(domain)
		if err != nil {
			return nil, err
		}
		out = append(out, local+"@"+d)
	}
	return out, nil
}

func (a *app) quota(ctx context.Context, st storeT, args []string) error {
	addr, err := canonicalArg(args[0])
	if err != nil {
		return err
	}
	if len(args) == 2 {
		var limit int64
		if !strings.EqualFold(args[1], "none") {
			sz, err := config.ParseSize(args[1])
			if err != nil {
				return err
			}
			limit = int64(sz)
		}
		if err := notFound(st.SetQuota(ctx, addr, limit), "account", addr); err != nil {
			return err
		}
	}
	_, limit, err := st.Quota(ctx, addr)
	if err != nil {
		return notFound(err, "account", addr)
	}
	boxes, err := st.Mailboxes(ctx, addr)
	if err != nil {
		return err
	}
	var used int64
	for _, b := range boxes {
		st, err := st.MailboxStatus(ctx, addr, b.Name)
		if err != nil {
			return err
		}
		used += st.Size
	}
	lim := "none"
	if limit > 0 {
		lim = fmt.Sprintf("%d (%d%% used)", limit, used*100/limit)
	}
	fmt.Fprintf(a.stdout, "%s\tused %d\tquota %s\n", addr, used, lim)
	return nil
}

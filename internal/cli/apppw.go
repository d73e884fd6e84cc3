package cli

import (
	"context"
	"fmt"
	"strings"

	"github.com/spf13/cobra"

	"posthorn/internal/users"
)

func (a *app) appPasswordCmd() *cobra.Command {
	cmd := &cobra.Command{Use: "app-password", Short: "Passwords limited to some protocols (a phone's IMAP password that cannot send mail)"}
	var scopes []string
	var name string
	add := &cobra.Command{
		Use: "add ADDRESS --scope smtp[,imap,pop3] [--name NAME]", Short: "Create an app password and print it once", Args: cobra.ExactArgs(1),
		RunE: a.run(func(ctx context.Context, _ storeT, us *users.Service, args []string) error {
			addr, err := canonicalArg(args[0])
			if err != nil {
				return err
			}
			if name == "" {
				name = strings.Join(scopes, "+")
			}
			pw, err := us.AddAppPassword(ctx, addr, name, scopes)
			if err != nil {
				return notFound(err, "account", addr)
			}
			fmt.Fprintf(a.stdout, "app password %q for %s (%s): %s\n", name, addr, strings.Join(scopes, ", "), pw)
			return nil
		}),
	}
	add.Flags().StringSliceVar(&scopes, "scope", nil, "protocols it is valid for: smtp, imap, pop3 (repeat or comma-separate)")
	add.Flags().StringVar(&name, "name", "", "a label for it (default: the scopes)")
	_ = add.MarkFlagRequired("scope")
	cmd.AddCommand(add,
		&cobra.Command{Use: "list ADDRESS", Short: "List an account's app passwords", Args: cobra.ExactArgs(1),
			RunE: a.run(func(ctx context.Context, st storeT, _ *users.Service, args []string) error {
				addr, err := canonicalArg(args[0])
				if err != nil {
					return err
				}
				aps, err := st.AppPasswords(ctx, addr)
				for _, p := range aps {
					fmt.Fprintf(a.stdout, "%s\t%s\t%s\n", p.Name, strings.Join(p.Scopes, ","), p.Created.Format("2006-01-02"))
				}
				return err
			})},
		&cobra.Command{Use: "del ADDRESS NAME", Short: "Revoke an app password", Args: cobra.ExactArgs(2),
			RunE: a.run(func(ctx context.Context, st storeT, _ *users.Service, args []string) error {
				addr, err := canonicalArg(args[0])
				if err != nil {
					return err
				}
				return notFound(st.DeleteAppPassword(ctx, addr, args[1]), "app password", args[1])
			})},
	)
	return cmd
}

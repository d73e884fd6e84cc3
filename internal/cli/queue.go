package cli

import (
	"context"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"posthorn/internal/queue"
	"posthorn/internal/store"
	"posthorn/internal/users"
)

func (a *app) queueCmd() *cobra.Command {
	cmd := &cobra.Command{Use: "queue", Short: "Inspect and control the outbound queue"}
	one := func(use, short string, fn func(context.Context, store.Store, string) error) *cobra.Command {
		return &cobra.Command{Use: use, Short: short, Args: cobra.ExactArgs(1),
			RunE: a.run(func(ctx context.Context, st storeT, _ *users.Service, args []string) error {
				return notFound(fn(ctx, st, args[0]), "queued message", args[0])
			})}
	}
	cmd.AddCommand(
		&cobra.Command{Use: "list", Aliases: []string{"ls"}, Short: "List queued messages (also: mailq)", Args: cobra.NoArgs,
			RunE: a.run(func(ctx context.Context, st storeT, _ *users.Service, _ []string) error { return a.mailq(ctx, st) })},
		one("show ID", "Show a queued message: envelope, recipients' state and the message", a.queueShow),
		&cobra.Command{Use: "flush [ID]", Short: "Retry now (one message, or all)", Args: cobra.MaximumNArgs(1),
			RunE: a.run(func(ctx context.Context, st storeT, _ *users.Service, args []string) error {
				id := ""
				if len(args) == 1 {
					id = args[0]
				}
				return notFound(queue.Flush(ctx, st, id), "queued message", id)
			})},
		one("delete ID", "Remove a message from the queue, without telling its sender", func(ctx context.Context, st store.Store, id string) error {
			return st.QueueDelete(ctx, id)
		}),
		one("hold ID", "Stop delivery attempts for a message", func(ctx context.Context, st store.Store, id string) error {
			return queue.Hold(ctx, st, id)
		}),
		one("release ID", "Resume delivery of a held message", func(ctx context.Context, st store.Store, id string) error {
			return queue.Release(ctx, st, id)
		}),
	)
	return cmd
}

// mailq prints the queue in the spirit of Postfix's mailq.
func (a *app) mailq(ctx context.Context, st store.Store) error {
	ms, err := st.QueueList(ctx)
	if err != nil {
		return err
	}
	if len(ms) == 0 {
		fmt.Fprintln(a.stdout, "Mail queue is empty")
		return nil
	}
	tw := tabwriter.NewWriter(a.stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "ID\tSIZE\tARRIVED\tSENDER")
	var total int64
	for _, m := range ms {
		from := m.From
		if from == "" {
			from = "<>"
		}
		fmt.Fprintf(tw, "%s\t%d\t%s\t%s\n", m.ID, m.Size, m.Created.Local().Format("Jan _2 15:04:05"), from)
		for _, r := range m.Rcpts {
			fmt.Fprintf(tw, "\t\t%s\t%s\n", rcptState(r, 60), r.Addr)
		}
		total += m.Size
	}
	tw.Flush()
	fmt.Fprintf(a.stdout, "-- %d KiB in %d messages\n", (total+1023)/1024, len(ms))
	return nil
}

// rcptState describes a recipient's state and last error, the error cut
// to max characters (0: whole).
func rcptState(r store.QueuedRcpt, max int) string {
	s := string(r.State)
	if r.State == store.RcptQueued && r.Attempts > 0 {
		s = fmt.Sprintf("deferred (%d tries, next %s)", r.Attempts, r.NextAttempt.Local().Format("15:04:05"))
	}
	if r.Code != 0 {
		s += fmt.Sprintf(": %d %s %s", r.Code, r.Enhanced, oneLine(r.Text, max))
	}
	return s
}

// oneLine joins s onto one line and cuts it to n characters (0: no cut),
// never inside a UTF-8 sequence.
func oneLine(s string, n int) string {
	s = strings.Join(strings.Fields(s), " ")
	if r := []rune(s); n > 0 && len(r) > n {
		s = string(r[:n]) + "…"
	}
	return s
}

func (a *app) queueShow(ctx context.Context, st store.Store, id string) error {
	m, err := st.QueueGet(ctx, id)
	if err != nil {
		return err
	}
	fmt.Fprintf(a.stdout, "id:      %s\nsender:  <%s>\narrived: %s\nsize:    %d\n", m.ID, m.From, m.Created.Format(time.RFC3339), m.Size)
	if m.EnvID != "" || m.Ret != "" {
		fmt.Fprintf(a.stdout, "dsn:     envid=%q ret=%s\n", m.EnvID, m.Ret)
	}
	for _, r := range m.Rcpts {
		fmt.Fprintf(a.stdout, "rcpt:    %s  %s", r.Addr, rcptState(r, 0))
		if r.Remote != "" {
			fmt.Fprintf(a.stdout, " (from %s)", r.Remote)
		}
		fmt.Fprintln(a.stdout)
	}
	b, err := st.QueueBody(ctx, id)
	if err != nil {
		return err
	}
	defer b.Close()
	fmt.Fprintln(a.stdout)
	_, err = io.Copy(a.stdout, io.NewSectionReader(b, 0, b.Size()))
	return err
}

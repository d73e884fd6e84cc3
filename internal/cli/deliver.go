package cli

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"posthorn/internal/daemon"
	"posthorn/internal/delivery"
	"posthorn/internal/message"
	"posthorn/internal/queue"
	"posthorn/internal/store"
	"posthorn/internal/unixmail"
	"posthorn/internal/users"
)

func (a *app) deliverCmd() *cobra.Command {
	var to, from, folder string
	cmd := &cobra.Command{
		Use:   "deliver -d ADDRESS [-f SENDER] [-m FOLDER]",
		Short: "Deliver one message from standard input into a mailbox (a local delivery agent)",
		Long: `deliver reads one message on standard input and writes it into the mailbox
of ADDRESS, following its aliases, as the daemon would. Exit status follows
sysexits(3): 0 delivered (the message is on stable storage), 67 unknown
user, 65 unusable message, 75 temporary failure (try again later). Use it
as Postfix's mailbox_command, from procmail, or as fetchmail's --mda.
A leading mbox "From " line is removed (its sender is used without -f).`,
		Args: cobra.NoArgs,
		RunE: func(*cobra.Command, []string) error { return a.deliver(to, from, folder) },
	}
	cmd.Flags().StringVarP(&to, "destination", "d", "", "recipient address (required)")
	cmd.Flags().StringVarP(&from, "from", "f", "", "envelope sender for Return-Path")
	cmd.Flags().StringVarP(&folder, "mailbox", "m", "INBOX", "mailbox to deliver into (INBOX if it does not exist)")
	_ = cmd.MarkFlagRequired("destination")
	return cmd
}

func (a *app) deliver(to, from, folder string) error {
	cfg, err := a.loadConfig()
	if err != nil {
		return &exitError{exTempFail, err}
	}
	raw, err := readMessage(a.stdin, true, int64(cfg.SMTP.MaxMessageSize))
	if err != nil {
		return &exitError{exDataErr, err}
	}
	if bytes.IndexByte(raw, 0) >= 0 {
		// As SMTP refuses it (550 5.6.0): RFC 5322 text has no NUL, and
		// IMAP could not send it in a plain literal (RFC 9051 §9).
		return &exitError{exDataErr, errors.New("the message holds a NUL octet")}
	}
	msg, mboxFrom := stripFromLine(raw)
	if from == "" {
		from = mboxFrom
	}
	if !strings.Contains(to, "@") {
		to += "@" + cfg.Hostname
	}
	err = a.withUsers(func(ctx context.Context, st storeT, us *usersT) error {
		log := newLogger(cfg, a.stderr)
		unix, err := daemon.NewUnix(cfg, log)
		if err != nil {
			return &exitError{exTempFail, err}
		}
		if local, domain := users.Split(to); unix.HasDomain(domain) {
			return deliverUnix(ctx, st, unix, local, to, from, msg)
		}
		f := &delivery.Filter{Sieve: st, Mail: st, Queue: storeQueue{st}, Hostname: cfg.Hostname, Logger: log}
		return deliverTo(ctx, st, us, f, to, from, folder, msg, cfg.SMTP.MaxReceived)
	})
	var ee *exitError
	if err != nil && !errors.As(err, &ee) {
		return &exitError{exTempFail, err}
	}
	return err
}

// stripFromLine removes an mbox "From sender date" first line.
func stripFromLine(msg []byte) ([]byte, string) {
	if !bytes.HasPrefix(msg, []byte("From ")) {
		return msg, ""
	}
	line, rest, _ := bytes.Cut(msg, []byte("\r\n"))
	f := strings.Fields(string(line))
	sender := ""
	if len(f) > 1 && f[1] != "MAILER-DAEMON" {
		sender = f[1]
	}
	return rest, sender
}

// deliverTo resolves the address and delivers a copy to each account,
// queueing addresses elsewhere (forwarding aliases) for the daemon.
func deliverTo(ctx context.Context, st store.Store, us *users.Service, f *delivery.Filter, to, from, folder string, msg []byte, maxHops int) error {
	local, domain := users.Split(to)
	res, err := us.Resolve(ctx, local, domain)
	switch {
	case errors.Is(err, users.ErrNoSuchUser), errors.Is(err, users.ErrNotLocal):
		return exitf(exNoUser, "%s: no such user here", to)
	case err != nil:
		return &exitError{exTempFail, err}
	}
	info, err := scanHeader(msg)
	if err != nil {
		return &exitError{exDataErr, err}
	}
	if info.Received > maxHops {
		return exitf(exDataErr, "too many Received headers: mail loop?")
	}
	for _, acct := range res.Accounts {
		if slices.Contains(info.DeliveredTo, acct) {
			return exitf(exDataErr, "mail forwarding loop for %s", acct)
		}
		if err := deliverCopy(ctx, st, f, to, acct, from, folder, msg); err != nil {
			return &exitError{exTempFail, err}
		}
	}
	if len(res.Remote) > 0 {
		return queueForward(ctx, st, from, res.Remote, msg)
	}
	return nil
}

func scanHeader(msg []byte) (message.HeaderInfo, error) {
	f := &message.Filter{W: io.Discard, MaxBytes: 1 << 20, MaxCount: 10000}
	if _, err := f.Write(msg); err != nil {
		return f.Info, err
	}
	return f.Info, f.Close()
}

// deliverCopy writes one account's copy through its Sieve script; keep
// goes into folder when it exists.
func deliverCopy(ctx context.Context, st store.Store, f *delivery.Filter, rcpt, acct, from, folder string, msg []byte) error {
	if folder != "" && !strings.EqualFold(folder, "INBOX") {
		if _, err := st.MailboxStatus(ctx, acct, folder); err != nil {
			folder = "INBOX"
		}
	}
	hdr := fmt.Sprintf("Return-Path: <%s>\r\nDelivered-To: %s\r\n", from, acct)
	d := store.Delivery{Account: acct, Mailbox: folder, Date: time.Now(), Header: []byte(hdr), Body: bytes.NewReader(msg), BodySize: int64(len(msg))}
	ds, _ := f.Apply(ctx, delivery.Local{Delivery: d, Rcpt: rcpt, From: from})
	for _, err := range st.Deliver(ctx, ds) {
		if err != nil {
			return err
		}
	}
	return nil
}

// storeQueue queues straight into the store, for the daemon's runner to
// send when it next looks (`deliver` runs without the daemon's queue).
type storeQueue struct{ st store.Store }

func (q storeQueue) Enqueue(ctx context.Context, m store.QueuedMessage, body io.Reader) (string, error) {
	if m.ID == "" {
		m.ID = queue.NewID()
	}
	now := time.Now()
	for i := range m.Rcpts {
		m.Rcpts[i].State, m.Rcpts[i].NextAttempt = store.RcptQueued, now
	}
	return m.ID, q.st.Enqueue(ctx, m, body)
}

// deliverUnix delivers to a host account of a [unix] domain: its mbox or
// Maildir, or where /etc/aliases and ~/.forward send it.
func deliverUnix(ctx context.Context, st store.Store, unix *unixmail.System, local, to, from string, msg []byte) error {
	targets, err := unix.Resolve(local)
	switch {
	case errors.Is(err, unixmail.ErrNoSuchUser):
		return exitf(exNoUser, "%s: no such user here", to)
	case err != nil:
		return &exitError{exTempFail, err}
	}
	var remote []string
	hdr := fmt.Sprintf("Return-Path: <%s>\r\nDelivered-To: %s\r\n", from, to)
	for _, t := range targets {
		if t.Kind == unixmail.Address {
			remote = append(remote, t.Addr)
			continue
		}
		if err := unix.Deliver(ctx, t, from, io.MultiReader(strings.NewReader(hdr), bytes.NewReader(msg))); err != nil {
			var p unixmail.Permanent
			if errors.As(err, &p) {
				return exitf(exUnavailable, "%s: %v", t, err)
			}
			return &exitError{exTempFail, fmt.Errorf("%s: %w", t, err)}
		}
	}
	if len(remote) > 0 {
		return queueForward(ctx, st, from, remote, msg)
	}
	return nil
}

// queueForward leaves copies for remote alias targets in the queue, which
// the daemon's runner delivers.
func queueForward(ctx context.Context, st store.Store, from string, to []string, msg []byte) error {
	m := store.QueuedMessage{ID: queue.NewID(), From: from, Created: time.Now(), Size: int64(len(msg))}
	for _, t := range to {
		m.Rcpts = append(m.Rcpts, store.QueuedRcpt{Addr: t, State: store.RcptQueued, NextAttempt: time.Now()})
	}
	if err := st.Enqueue(ctx, m, bytes.NewReader(msg)); err != nil {
		return &exitError{exTempFail, err}
	}
	return nil
}

package cli

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/user"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/spf13/cobra"

	"posthorn/internal/daemon"
	"posthorn/internal/delivery"
	"posthorn/internal/message"
	"posthorn/internal/pickup"
	"posthorn/internal/queue"
	"posthorn/internal/smtp"
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
A leading mbox "From " line is removed (its sender is used without -f).
-f must be an envelope address, "" or "<>" (else 64); an empty message is
refused (65). For a [unix] domain deliver needs no access to the store: run
as the recipient (as mailbox_command is), it writes the user's own mbox or
Maildir, and copies for remote .forward targets go through the maildrop.`,
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
	// Checked before reading: a bad -f is the caller's error (64), and it
	// would become the mbox From_ line and Return-Path.
	if from, err = envelopeSender(from, cfg.Hostname); err != nil {
		return exitf(exUsage, "-f: %v", err)
	}
	msg, mboxFrom, err := readDelivery(a.stdin, int64(cfg.SMTP.MaxMessageSize))
	if err != nil {
		return err
	}
	if from == "" {
		from, _ = envelopeSender(mboxFrom, cfg.Hostname) // unusable: the null sender
	}
	if !strings.Contains(to, "@") {
		to += "@" + cfg.Hostname
	}
	log := newLogger(cfg, a.stderr)
	unix, err := daemon.NewUnix(cfg, log)
	if err != nil {
		return &exitError{exTempFail, err}
	}
	if local, domain := users.Split(to); unix.HasDomain(domain) {
		// No store here: as Postfix's mailbox_command, deliver runs with
		// the recipient's uid, which may not open the daemon's database.
		drop := dropForwarder{dir: filepath.Join(cfg.DataDir, daemon.MaildropName), dataDir: cfg.DataDir, hostname: cfg.Hostname}
		return tempUnlessExit(deliverUnix(context.Background(), unix, drop.forward, local, to, from, msg))
	}
	err = a.withUsers(func(ctx context.Context, st storeT, us *usersT) error {
		f := &delivery.Filter{Sieve: st, Mail: st, Queue: storeQueue{st}, Hostname: cfg.Hostname, Logger: log}
		return deliverTo(ctx, st, us, f, to, from, folder, msg, cfg.SMTP.MaxReceived)
	})
	if ee := (*exitError)(nil); errors.As(err, &ee) && ee.code == exNoPerm {
		return &exitError{exTempFail, err} // a setup to fix, not a reason to bounce
	}
	return tempUnlessExit(err)
}

// tempUnlessExit makes an error without an exit status a temporary
// failure (75): the MTA keeps the message and tries again.
func tempUnlessExit(err error) error {
	var ee *exitError
	if err != nil && !errors.As(err, &ee) {
		return &exitError{exTempFail, err}
	}
	return err
}

// readDelivery reads the message (every line as it is: an LDA has no
// dot convention) and removes a leading mbox From_ line, returning its
// sender. An empty message is refused (65): an MTA never hands one over
// (Postfix's cleanup gives every message at least Received), so empty
// input means the program feeding us failed, and an exit status tells
// it so where an empty mailbox entry would pass for mail.
func readDelivery(r io.Reader, max int64) ([]byte, string, error) {
	raw, err := readMessage(r, true, max, true)
	if err != nil {
		return nil, "", &exitError{exDataErr, err}
	}
	if bytes.IndexByte(raw, 0) >= 0 {
		// As SMTP refuses it (550 5.6.0): RFC 5322 text has no NUL, and
		// IMAP could not send it in a plain literal (RFC 9051 §9).
		return nil, "", &exitError{exDataErr, errors.New("the message holds a NUL octet")}
	}
	msg, sender := stripFromLine(raw)
	if len(bytes.TrimSpace(msg)) == 0 {
		return nil, "", &exitError{exDataErr, errors.New("empty message: nothing delivered")}
	}
	return msg, sender, nil
}

// envelopeSender checks a sender given to deliver (-f, or the From_
// line's): it is written into the mbox From_ line and Return-Path, so it
// must be an RFC 5321 address (no space, line break or '>' outside a
// quoted local part), or empty or "<>" for the null sender. A bare name
// is qualified, as sendmail does.
func envelopeSender(s, hostname string) (string, error) {
	if strings.HasPrefix(s, "<") && strings.HasSuffix(s, ">") {
		s = s[1 : len(s)-1]
	}
	if s == "" {
		return "", nil
	}
	if !strings.Contains(s, "@") {
		s += "@" + hostname
	}
	a, err := smtp.ParseAddress(s, true)
	if err != nil {
		return "", fmt.Errorf("%q is not an envelope address: %w", s, err)
	}
	return a.String(), nil
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
// Maildir, or where /etc/aliases and ~/.forward send it; forward gets the
// targets in other domains.
func deliverUnix(ctx context.Context, unix *unixmail.System, forward func(from string, to []string, msg []byte) error, local, to, from string, msg []byte) error {
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
			return unixDeliveryError(t, err)
		}
	}
	if len(remote) > 0 {
		return forward(from, remote, msg)
	}
	return nil
}

// unixDeliveryError gives a failed delivery its exit status, explaining
// the usual reason a user's own delivery is refused.
func unixDeliveryError(t unixmail.Target, err error) error {
	var p unixmail.Permanent
	if errors.As(err, &p) {
		return exitf(exUnavailable, "%s: %v", t, err)
	}
	if errors.Is(err, fs.ErrPermission) && os.Geteuid() != 0 {
		// Postfix runs mailbox_command as the user: mbox locking then
		// needs the spool directory writable by the user's group
		// (procmail is installed setgid mail for this).
		return exitf(exTempFail, "%s: %v (running as uid %d: with mailbox = \"mbox\" the spool directory must let this user create its dot-lock, e.g. mode 1777 or group mail; or use mailbox = \"maildir\")", t, err, os.Geteuid())
	}
	return &exitError{exTempFail, fmt.Errorf("%s: %w", t, err)}
}

// dropForwarder sends copies for remote alias and .forward targets
// through the maildrop, as Postfix's postdrop does: any user may write
// it, the daemon's pickup sends them, and it bounces a refused target to
// the envelope sender instead of failing this delivery, whose mailbox
// copies are already written.
type dropForwarder struct{ dir, dataDir, hostname string }

func (d dropForwarder) forward(from string, to []string, msg []byte) error {
	env := pickup.Envelope{From: d.sender(from), Rcpts: to}
	if _, err := pickup.Write(d.dir, env, msg); err != nil {
		return exitf(exTempFail, "forwarding to %s: maildrop: %v", strings.Join(to, ", "), err)
	}
	return nil
}

// sender keeps the original envelope sender when the daemon trusts us
// with it (root or its own user, like Postfix's trusted senders). For
// anyone else the forwarded copy goes out as the forwarding user, who
// then gets its bounces: another sender would carry an
// X-Authentication-Warning naming the user, or be refused with
// [delivery] sendmail_any_sender off.
func (d dropForwarder) sender(from string) string {
	euid := os.Geteuid()
	var st syscall.Stat_t
	if from == "" || euid == 0 || (syscall.Stat(d.dataDir, &st) == nil && int(st.Uid) == euid) {
		return from
	}
	name := "uid" + strconv.Itoa(euid)
	if u, err := user.LookupId(strconv.Itoa(euid)); err == nil {
		name = u.Username
	}
	return name + "@" + d.hostname
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

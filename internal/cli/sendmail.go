package cli

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/mail"
	"os/user"
	"path/filepath"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"posthorn/internal/daemon"
	"posthorn/internal/message"
	"posthorn/internal/pickup"
	"posthorn/internal/queue"
	"posthorn/internal/smtp"
)

// Exit codes of sendmail(8), from sysexits.h.
const (
	exUsage       = 64
	exDataErr     = 65
	exNoUser      = 67
	exUnavailable = 69
	exSoftware    = 70
	exTempFail    = 75
)

// exitError carries a sysexits code out of a command.
type exitError struct {
	code int
	err  error
}

func (e *exitError) Error() string { return e.err.Error() }
func (e *exitError) Unwrap() error { return e.err }

func exitf(code int, format string, args ...any) error {
	return &exitError{code, fmt.Errorf(format, args...)}
}

func (a *app) sendmailCmd() *cobra.Command {
	return &cobra.Command{
		Use:                "sendmail [flags] [--] [recipient...]",
		Short:              "Send a message from standard input (sendmail(8) compatible)",
		Long:               sendmailHelp,
		DisableFlagParsing: true,
		RunE:               func(_ *cobra.Command, args []string) error { return a.sendmail(args) },
	}
}

const sendmailHelp = `sendmail reads a message on standard input and hands it to the running
posthorn daemon through its local socket. Exit status 0 means the message is
on stable storage. Flags, as in Postfix and Sendmail:

  -t          take recipients from To:, Cc: and Bcc: (Bcc: is removed)
  -i, -oi     a line with a single dot does not end the message
  -f SENDER   envelope sender (root and the posthorn user only)
  -F NAME     full name for the From: header when it is added
  -N NOTIFY   DSN NOTIFY (never, or success,failure,delay)
  -R RET      DSN RET (full or hdrs)
  -V ENVID    DSN ENVID
  -bs         speak SMTP on standard input and output
  -bp         list the queue (like mailq)
  -q          flush the queue
  -bm         read a message (the default)
Other -o options are accepted and ignored. Exit codes follow sysexits(3):
64 usage, 65 bad message, 67 unknown recipient, 75 try again later.`

// sendmailArgs are the parsed sendmail flags.
type sendmailArgs struct {
	mode         string // "bm", "bs", "bp", "q"
	fromHeaders  bool   // -t
	ignoreDots   bool   // -i
	sender, name string
	notify       []string
	ret, envid   string
	rcpts        []string
}

// parseSendmail parses sendmail's traditional flags, where a value may be
// glued to its flag (-fuser) or follow it (-f user).
func parseSendmail(args []string) (sendmailArgs, error) {
	s := sendmailArgs{mode: "bm"}
	for i := 0; i < len(args); i++ {
		arg := args[i]
		if arg == "--" {
			s.rcpts = append(s.rcpts, args[i+1:]...)
			break
		}
		if !strings.HasPrefix(arg, "-") || arg == "-" {
			s.rcpts = append(s.rcpts, arg)
			continue
		}
		flag, val := arg[1:2], arg[2:]
		needs := strings.Contains("fFNRVrBCLOX", flag)
		if needs && val == "" {
			if i+1 >= len(args) {
				return s, fmt.Errorf("-%s needs a value", flag)
			}
			i++
			val = args[i]
		}
		if err := s.apply(flag, val); err != nil {
			return s, err
		}
	}
	return s, nil
}

func (s *sendmailArgs) apply(flag, val string) error {
	switch flag {
	case "t":
		s.fromHeaders = true
	case "i":
		s.ignoreDots = true
	case "o":
		if val == "i" {
			s.ignoreDots = true
		}
	case "f", "r":
		s.sender = val
	case "F":
		s.name = val
	case "N":
		s.notify = strings.Split(strings.ToUpper(val), ",")
	case "R":
		s.ret = strings.ToUpper(val)
	case "V":
		s.envid = val
	case "b":
		if val != "m" && val != "s" && val != "p" {
			return fmt.Errorf("-b%s is not supported", val)
		}
		s.mode = "b" + val
	case "q":
		s.mode = "q"
	default:
		// -v, -m, -e, -U, -G, -n, -d, -h, -B, -C, -L, -O, -X and anything
		// else scripts pass out of habit: accepted, no effect.
	}
	return nil
}

// sendmail runs the sendmail command.
func (a *app) sendmail(args []string) error {
	args = a.takeConfigFlag(args)
	sa, err := parseSendmail(args)
	if err != nil {
		return &exitError{exUsage, err}
	}
	switch sa.mode {
	case "bp":
		return a.withUsers(func(ctx context.Context, st storeT, _ *usersT) error { return a.mailq(ctx, st) })
	case "q":
		return a.withUsers(func(ctx context.Context, st storeT, _ *usersT) error { return queue.Flush(ctx, st, "") })
	}
	cfg, err := a.loadConfig()
	if err != nil {
		return &exitError{exTempFail, err}
	}
	sock := filepath.Join(cfg.DataDir, daemon.SocketName)
	if sa.mode == "bs" {
		return a.proxySMTP(sock)
	}
	msg, err := readMessage(a.stdin, sa.ignoreDots, int64(cfg.SMTP.MaxMessageSize))
	if err != nil {
		return &exitError{exDataErr, err}
	}
	return a.submitLocal(sock, filepath.Join(cfg.DataDir, daemon.MaildropName), cfg.Hostname, sa, msg)
}

// takeConfigFlag removes posthorn's own --config flag, which cobra leaves
// in place for a command that parses its own flags.
func (a *app) takeConfigFlag(args []string) []string {
	var out []string
	for i := 0; i < len(args); i++ {
		switch {
		case args[i] == "--":
			return append(out, args[i:]...)
		case args[i] == "--config" && i+1 < len(args):
			a.configPath = args[i+1]
			i++
		case strings.HasPrefix(args[i], "--config="):
			a.configPath = strings.TrimPrefix(args[i], "--config=")
		default:
			out = append(out, args[i])
		}
	}
	return out
}

// readMessage reads the message, turns LF line ends into CRLF and, unless
// ignoreDots, stops at a line holding a single dot. A bare CR ends a line
// too: the SMTP client sends it as CRLF (no smuggling sequence leaves this
// host), so the -t header parsing must see the same lines, or
// "Subject: x\rBcc: y" hid a Bcc field that was then sent as one.
func readMessage(r io.Reader, ignoreDots bool, max int64) ([]byte, error) {
	var out bytes.Buffer
	br := bufio.NewReaderSize(io.LimitReader(r, max+1), 64<<10)
	for {
		line, err := br.ReadBytes('\n')
		if len(line) > 0 {
			line = bytes.TrimRight(line, "\r\n")
			if !ignoreDots && string(line) == "." {
				break
			}
			for _, part := range bytes.Split(line, []byte("\r")) {
				out.Write(part)
				out.WriteString("\r\n")
			}
		}
		if int64(out.Len()) > max {
			return nil, fmt.Errorf("message larger than %d bytes", max)
		}
		if err == io.EOF {
			break
		}
		if err != nil {
			return nil, err
		}
	}
	return out.Bytes(), nil
}

// submitLocal prepares the envelope and the header and sends over the
// daemon's socket. Either every recipient is accepted or none gets it.
func (a *app) submitLocal(sock, drop, hostname string, sa sendmailArgs, msg []byte) error {
	sender := sa.sender
	if sender == "" {
		u, err := user.Current()
		if err != nil {
			return &exitError{exSoftware, err}
		}
		sender = u.Username + "@" + hostname
	}
	utf8 := false
	if sender == "<>" {
		sender = ""
	} else {
		a, err := envelopeAddress(sender, hostname)
		if err != nil {
			return exitf(exUsage, "sender: %v", err)
		}
		sender, utf8 = a.String(), !a.IsASCII()
	}
	msg, headerRcpts, err := prepareHeader(msg, sa, sender)
	if err != nil {
		return &exitError{exDataErr, err}
	}
	rcpts, rcptUTF8, err := qualify(headerRcpts, sa.rcpts, hostname)
	if err != nil {
		return &exitError{exDataErr, err}
	}
	if len(rcpts) == 0 {
		return exitf(exUsage, "no recipients")
	}
	// RFC 6531: an address with UTF-8 needs SMTPUTF8 (Postfix's
	// smtputf8_autodetect_classes does the same for sendmail).
	env := smtp.Envelope{From: sender, UTF8: utf8 || rcptUTF8, Ret: sa.ret, EnvID: sa.envid, Size: int64(len(msg))}
	for _, r := range rcpts {
		env.Rcpts = append(env.Rcpts, smtp.EnvelopeRcpt{Addr: r, Notify: sa.notify})
	}
	err = a.sendOverSocket(sock, env, msg)
	if errors.Is(err, errNoDaemon) {
		// The daemon is down: leave the message in the maildrop, where
		// it will pick it up. Written and fsynced before we exit 0.
		if _, derr := pickup.Write(drop, dropEnvelope(env), msg); derr != nil {
			return exitf(exTempFail, "daemon not running and maildrop not writable: %v", derr)
		}
		return nil
	}
	return err
}

func dropEnvelope(env smtp.Envelope) pickup.Envelope {
	d := pickup.Envelope{From: env.From, Ret: env.Ret, EnvID: env.EnvID}
	for _, r := range env.Rcpts {
		d.Rcpts = append(d.Rcpts, r.Addr)
		d.Notify = r.Notify
	}
	return d
}

// errNoDaemon: nothing listens on the sendmail socket.
var errNoDaemon = errors.New("posthorn daemon not running")

// qualify turns recipients into envelope addresses, adding @hostname to
// bare user names, and removes duplicates: fromHeader holds addr-specs
// as net/mail gives them (-t), args the command line's, each maybe a
// comma-separated list of addresses in any RFC 5322 form. utf8 reports an
// address that needs SMTPUTF8.
func qualify(fromHeader, args []string, hostname string) (out []string, utf8 bool, err error) {
	seen := map[string]bool{}
	add := func(s string) error {
		a, err := envelopeAddress(s, hostname)
		if err != nil {
			return fmt.Errorf("recipient %q: %w", s, err)
		}
		if key := strings.ToLower(a.String()); !seen[key] {
			seen[key] = true
			out = append(out, a.String())
			utf8 = utf8 || !a.IsASCII()
		}
		return nil
	}
	for _, r := range fromHeader {
		if err := add(r); err != nil {
			return nil, false, err
		}
	}
	for _, r := range args {
		for _, part := range strings.Split(r, ",") {
			if part = strings.TrimSpace(part); part == "" {
				continue
			}
			if a, err := mail.ParseAddress(part); err == nil {
				part = a.Address
			} else if _, err := smtp.ParseAddress(part, true); err != nil && strings.Contains(part, "@") {
				// Neither RFC 5322 nor RFC 5321 reads it ("a@@x"): do
				// not guess which '@' was meant.
				return nil, false, fmt.Errorf("recipient %q: not a valid address", part)
			}
			if err := add(part); err != nil {
				return nil, false, err
			}
		}
	}
	return out, utf8, nil
}

// envelopeAddress makes an SMTP address of an addr-spec as net/mail
// gives it (smtp.FromAddrSpec). A name without '@' is a local user's.
func envelopeAddress(s, hostname string) (smtp.Address, error) {
	if !strings.Contains(s, "@") {
		s += "@" + hostname
	}
	a, err := smtp.FromAddrSpec(s)
	if err != nil {
		return smtp.Address{}, fmt.Errorf("not a valid address: %q", s)
	}
	return a, nil
}

// prepareHeader collects -t recipients (dropping Bcc) and adds From when
// missing. Message-ID and Date are added by the daemon.
func prepareHeader(msg []byte, sa sendmailArgs, sender string) ([]byte, []string, error) {
	head, body := splitHeader(msg)
	fields := splitFields(head)
	var rcpts []string
	var kept [][]byte
	hasFrom := false
	for _, f := range fields {
		name, value, _ := bytes.Cut(f, []byte(":"))
		n := strings.ToLower(strings.TrimSpace(string(name)))
		if sa.fromHeaders && (n == "to" || n == "cc" || n == "bcc") {
			list, err := mail.ParseAddressList(strings.TrimSpace(unfoldHeader(value)))
			if err != nil {
				return nil, nil, fmt.Errorf("bad %s header: %w", name, err)
			}
			for _, a := range list {
				rcpts = append(rcpts, a.Address)
			}
		}
		if n == "bcc" { // never shown to the other recipients
			continue
		}
		hasFrom = hasFrom || n == "from"
		kept = append(kept, f)
	}
	var out bytes.Buffer
	if !hasFrom && sender != "" {
		if sa.name != "" {
			fmt.Fprintf(&out, "From: %s\r\n", (&mail.Address{Name: sa.name, Address: sender}).String())
		} else {
			fmt.Fprintf(&out, "From: <%s>\r\n", sender)
		}
	}
	for _, f := range kept {
		out.Write(f)
		out.WriteString("\r\n")
	}
	out.WriteString("\r\n")
	out.Write(body)
	return out.Bytes(), rcpts, nil
}

// splitHeader splits a message (CRLF lines) at the end of its header: the
// blank line, or the first line that is neither a field nor (after one) a
// field's continuation, which then begins the body (as in Postfix). A
// message that begins with a blank line has no header at all: the lines
// after it are body, never recipients for -t.
func splitHeader(msg []byte) (head, body []byte) {
	for i := 0; i < len(msg); {
		j := bytes.Index(msg[i:], []byte("\r\n"))
		if j < 0 {
			j = len(msg) - i
		}
		line := msg[i : i+j]
		cont := i > 0 && len(line) > 0 && (line[0] == ' ' || line[0] == '\t')
		switch {
		case len(line) == 0:
			return msg[:i], msg[min(i+2, len(msg)):]
		case !cont && !message.IsFieldLine(line):
			return msg[:i], msg[i:]
		}
		i += j + 2
	}
	return msg, nil
}

// splitFields splits a header section (CRLF lines) into unfolded-able
// fields, each keeping its continuation lines.
func splitFields(head []byte) [][]byte {
	var out [][]byte
	for _, line := range bytes.Split(head, []byte("\r\n")) {
		if len(line) > 0 && (line[0] == ' ' || line[0] == '\t') && len(out) > 0 {
			out[len(out)-1] = append(append(out[len(out)-1], '\r', '\n'), line...)
			continue
		}
		if len(line) > 0 {
			out = append(out, append([]byte(nil), line...))
		}
	}
	return out
}

func unfoldHeader(v []byte) string { return strings.NewReplacer("\r\n", "").Replace(string(v)) }

// sendOverSocket runs the SMTP transaction with the daemon.
func (a *app) sendOverSocket(sock string, env smtp.Envelope, msg []byte) error {
	c, err := dialSocket(sock)
	if err != nil {
		return err
	}
	defer c.Quit()
	if err := c.Hello("localhost"); err != nil {
		return exitf(exTempFail, "posthorn daemon: %v", err)
	}
	// All or nothing: check every recipient before any data goes.
	res, err := c.Send(env, bytes.NewReader(msg))
	if err != nil {
		return exitf(exTempFail, "posthorn daemon: %v", err)
	}
	if res.Mail.Code != 250 {
		return replyExit("sender <"+env.From+">", res.Mail)
	}
	for i, r := range res.Rcpts {
		if r.Code/100 != 2 {
			return replyExit("recipient <"+env.Rcpts[i].Addr+">", r)
		}
	}
	if res.Data.Code != 250 {
		return replyExit("message", res.Data)
	}
	return nil
}

func dialSocket(sock string) (*smtp.Client, error) {
	nc, err := net.DialTimeout("unix", sock, 10*time.Second)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", errNoDaemon, err)
	}
	c, err := smtp.NewClient(nc, 5*time.Minute)
	if err != nil {
		nc.Close()
		return nil, exitf(exTempFail, "posthorn daemon: %v", err)
	}
	return c, nil
}

func replyExit(what string, r smtp.Reply) error {
	code := exTempFail
	if r.Code >= 500 {
		code = exNoUser
		if strings.HasPrefix(r.Enhanced, "5.6") || strings.HasPrefix(r.Enhanced, "5.3") {
			code = exDataErr
		}
	}
	return exitf(code, "%s refused: %s", what, r.String())
}

// proxySMTP connects standard input and output to the daemon (-bs).
func (a *app) proxySMTP(sock string) error {
	nc, err := net.DialTimeout("unix", sock, 10*time.Second)
	if err != nil {
		return exitf(exTempFail, "cannot reach the posthorn daemon at %s: %v", sock, err)
	}
	defer nc.Close()
	done := make(chan struct{})
	go func() {
		_, _ = io.Copy(a.stdout, nc)
		close(done)
	}()
	_, _ = io.Copy(nc, a.stdin)
	if uc, ok := nc.(*net.UnixConn); ok {
		_ = uc.CloseWrite()
	}
	<-done
	return nil
}

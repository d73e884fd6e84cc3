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
	"slices"
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
	exNoPerm      = 77
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
on stable storage. Flags, parsed like Postfix's (getopt: -ti is -t -i, and
a flag's value may be the next argument: -o i, -f user):

  -t          take recipients from To:, Cc: and Bcc: (Resent-To:, -Cc:,
              -Bcc: when there is a Resent- field); Bcc: and Resent-Bcc:
              are removed
  -i, -oi     a line with a single dot does not end the message
  -f SENDER   envelope sender (see [delivery] sendmail_any_sender)
  -F NAME     full name for the From: header when it is added
  -N NOTIFY   DSN NOTIFY (never, or success,failure,delay)
  -R RET      DSN RET (full or hdrs)
  -V ENVID    DSN ENVID
  -bs         speak SMTP on standard input and output
  -bp         list the queue (like mailq)
  -bi, -I     check the alias files (like newaliases)
  -q          flush the queue
  -bm         read a message (the default)
Other Postfix and Sendmail flags (-h N, -p P, -B, -L, -O, -o X, -v ...) are
accepted and ignored. Exit codes follow sysexits(3): 64 usage, 65 bad
message, 67 unknown recipient, 75 try again later; any of them means nobody
got the message. Once someone has it, recipients refused beside them are
bounced to the sender by the daemon, and the exit status is 0.`

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

// sendmailOpts are the flags of Postfix's sendmail(1) as its getopt(3)
// string declares them ("A:B:C:F:GIL:N:O:R:UV:X:b:ce:f:h:imno:p:r:q:tvx"):
// a letter followed by ':' takes a value, glued (-fuser) or as the next
// argument (-f user). Flags may be combined (-ti, -tf user).
const sendmailOpts = "A:B:C:F:GIL:N:O:R:UV:X:b:ce:f:h:imno:p:r:q:tvx"

// takesValue tells whether flag c takes a value. A flag not in the list is
// taken as one without, as getopt does, and ignored by apply.
func takesValue(c byte) bool {
	i := strings.IndexByte(sendmailOpts, c)
	return c != ':' && i >= 0 && i+1 < len(sendmailOpts) && sendmailOpts[i+1] == ':'
}

// parseSendmail parses sendmail's flags the way getopt(3) does for
// Postfix and Sendmail: options end at "--" or at the first argument that
// is not one (everything after it is a recipient, as with POSIX getopt,
// so a recipient is never read as a flag). A lone "-q" flushes the queue
// (Postfix special-cases it: it is "q:" in the option string).
func parseSendmail(args []string) (sendmailArgs, error) {
	s := sendmailArgs{mode: "bm"}
	i := 0
	for ; i < len(args); i++ {
		arg := args[i]
		if arg == "--" {
			i++
			break
		}
		if !strings.HasPrefix(arg, "-") || arg == "-" {
			break
		}
		if arg == "-q" {
			s.mode = "q"
			continue
		}
		next, err := s.parseCluster(arg[1:], args[i+1:])
		if err != nil {
			return s, err
		}
		i += next
	}
	s.rcpts = append(s.rcpts, args[i:]...)
	return s, nil
}

// parseCluster applies one argument's flags ("ti", "tfuser", "f") and
// returns how many of the following arguments it used as a value.
func (s *sendmailArgs) parseCluster(cluster string, rest []string) (int, error) {
	for j := 0; j < len(cluster); j++ {
		c := cluster[j]
		if !takesValue(c) {
			if err := s.apply(string(c), ""); err != nil {
				return 0, err
			}
			continue
		}
		if val := cluster[j+1:]; val != "" {
			return 0, s.apply(string(c), val)
		}
		if len(rest) == 0 {
			return 0, fmt.Errorf("-%c needs a value", c)
		}
		return 1, s.apply(string(c), rest[0])
	}
	return 0, nil
}

// apply sets one flag. Options Postfix and Sendmail accept but posthorn
// has no use for (-v, -m, -e, -U, -G, -c, -x, -n, -h, -p, -B, -C, -L,
// -A, -X, other -o and -O) are accepted and ignored, as Postfix ignores
// them: scripts pass them out of habit.
func (s *sendmailArgs) apply(flag, val string) error {
	switch flag {
	case "t":
		s.fromHeaders = true
	case "i":
		s.ignoreDots = true
	case "o":
		s.ignoreDots = s.ignoreDots || val == "i"
	case "O": // Sendmail's long form of -oi
		s.ignoreDots = s.ignoreDots || strings.EqualFold(val, "IgnoreDots") || strings.EqualFold(val, "IgnoreDots=true")
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
	case "I":
		s.mode = "bi"
	case "b":
		if val != "m" && val != "s" && val != "p" && val != "i" {
			return fmt.Errorf("-b%s is not supported", val)
		}
		s.mode = "b" + val
	case "q":
		// -qRsite and -qSsite flush (everything: there is one queue);
		// -q30m is a daemon's interval, which Postfix ignores too.
		if val == "" || val[0] < '0' || val[0] > '9' {
			s.mode = "q"
		}
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
	case "bi":
		return a.newaliases()
	}
	cfg, err := a.loadConfig()
	if err != nil {
		return &exitError{exTempFail, err}
	}
	sock := filepath.Join(cfg.DataDir, daemon.SocketName)
	if sa.mode == "bs" {
		return a.proxySMTP(sock)
	}
	msg, err := readMessage(a.stdin, sa.ignoreDots, int64(cfg.SMTP.MaxMessageSize), false)
	if err == nil {
		msg = breakLongLines(msg, cfg.SMTP.MaxLineLength)
		err = checkText(msg, cfg.SMTP.MaxLineLength)
	}
	if err != nil {
		return &exitError{exDataErr, err}
	}
	return a.submitLocal(sock, filepath.Join(cfg.DataDir, daemon.MaildropName), cfg.Hostname, cfg.SMTP.MaxRecipients, sa, msg)
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

// checkText refuses what the daemon refuses on its socket and in the
// maildrop (a NUL; a line over maxLine octets, which breakLongLines has
// broken up before) before either is tried:
// with the daemon down, such a message left in the maildrop got exit 0
// here and a bounce later; now the caller gets 65 on both paths.
func checkText(msg []byte, maxLine int) error {
	if bytes.IndexByte(msg, 0) >= 0 {
		return errors.New("the message holds a NUL octet")
	}
	for line := range bytes.Lines(msg) {
		if len(bytes.TrimRight(line, "\r\n")) > maxLine {
			return fmt.Errorf("a line is longer than %d octets (smtp.max_line_length)", maxLine)
		}
	}
	return nil
}

// breakLongLines breaks every line longer than maxLine octets (CRLF line
// ends, as readMessage makes them) with message.FoldLines, as Postfix's
// SMTP client does: cron output or a web application's HTML with a line
// over smtp.max_line_length is delivered, not refused.
func breakLongLines(msg []byte, maxLine int) []byte {
	if maxLine < 8 || !hasLongLine(msg, maxLine) {
		return msg
	}
	out, _ := io.ReadAll(message.FoldLines(bytes.NewReader(msg), maxLine)) // a bytes.Reader does not fail
	return out
}

func hasLongLine(msg []byte, maxLine int) bool {
	for line := range bytes.Lines(msg) {
		if len(bytes.TrimSuffix(line, []byte("\r\n"))) > maxLine {
			return true
		}
	}
	return false
}

// readMessage reads the message, turns LF line ends into CRLF and, unless
// ignoreDots, stops at a line holding a single dot. For sendmail
// (lda false) a bare CR ends a line too: the SMTP client sends it as
// CRLF (no smuggling sequence leaves this host), so the -t header
// parsing must see the same lines, or "Subject: x\rBcc: y" hid a Bcc
// field that was then sent as one. For deliver (lda true) the message
// comes from elsewhere, through an MTA that keeps a bare CR as data: in
// the header section it becomes a space, or "Subject: x\rX-Spam: no"
// from any sender gave the stored message a field of its choosing.
func readMessage(r io.Reader, ignoreDots bool, max int64, lda bool) ([]byte, error) {
	var out bytes.Buffer
	br := bufio.NewReaderSize(io.LimitReader(r, max+1), 64<<10)
	header := true
	for {
		line, err := br.ReadBytes('\n')
		if len(line) > 0 {
			line = bytes.TrimRight(line, "\r\n")
			if !ignoreDots && string(line) == "." {
				break
			}
			if lda && header {
				line = bytes.ReplaceAll(line, []byte("\r"), []byte(" "))
			}
			for _, part := range bytes.Split(line, []byte("\r")) {
				out.Write(part)
				out.WriteString("\r\n")
				header = header && len(part) > 0
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

// submitLocal prepares the envelope and the header and hands the message
// to the daemon (see deliverEnvelope for what the exit status promises).
func (a *app) submitLocal(sock, drop, hostname string, batch int, sa sendmailArgs, msg []byte) error {
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
	msg, headerRcpts := prepareHeader(msg, sa, sender)
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
	return deliverEnvelope(sock, drop, batch, env, msg)
}

// deliverEnvelope hands a message to the daemon through its socket, or,
// when the daemon is down, leaves it in the maildrop, where the daemon
// picks it up (written and fsynced before we exit 0). Exit status 0
// means every recipient is on stable storage; any other means nobody
// got the message.
func deliverEnvelope(sock, drop string, batch int, env smtp.Envelope, msg []byte) error {
	err := sendOverSocket(sock, drop, batch, env, msg)
	if errors.Is(err, errNoDaemon) {
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

// prepareHeader collects -t recipients, removes Bcc and Resent-Bcc (RFC
// 5322 §3.6.3 and §3.6.6: blind copies are never shown to the other
// recipients; Postfix's cleanup(8) removes both) and adds From when
// missing. Message-ID and Date are added by the daemon. A leading mbox
// "From " line is dropped, as Postfix's sendmail does: it is no header
// field, and would otherwise end the header before its first line.
func prepareHeader(msg []byte, sa sendmailArgs, sender string) ([]byte, []string) {
	msg, _ = stripFromLine(msg)
	head, body := splitHeader(msg)
	fields := splitFields(head)
	var rcpts []string
	if sa.fromHeaders {
		rcpts = headerRcpts(fields)
	}
	var kept [][]byte
	hasFrom := false
	for _, f := range fields {
		n := fieldName(f)
		if n == "bcc" || n == "resent-bcc" {
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
	return out.Bytes(), rcpts
}

func fieldName(f []byte) string {
	name, _, _ := bytes.Cut(f, []byte(":"))
	return strings.ToLower(strings.TrimSpace(string(name)))
}

// headerRcpts are the -t recipients: those of To, Cc and Bcc, or, in a
// message that has been re-sent (it has a Resent- field, RFC 5322
// §3.6.6), those of Resent-To, Resent-Cc and Resent-Bcc only: the
// original recipients already have it. Sendmail and Postfix's cleanup(8)
// do the same.
func headerRcpts(fields [][]byte) []string {
	prefix := ""
	for _, f := range fields {
		if strings.HasPrefix(fieldName(f), "resent-") {
			prefix = "resent-"
			break
		}
	}
	var out []string
	for _, f := range fields {
		switch fieldName(f) {
		case prefix + "to", prefix + "cc", prefix + "bcc":
			_, v, _ := bytes.Cut(f, []byte(":"))
			out = append(out, addressList(unfoldHeader(v))...)
		}
	}
	return out
}

// addressList gives the addresses of an address-list field. It reads
// RFC 5322 first (groups, quoted names, comments, encoded words); what
// that refuses is read leniently, as Postfix's tok822 parser does, rather
// than losing the mail: an empty field holds none, a bare name is a local
// user's ("To: root", as cron, mdadm and logwatch write; qualify adds the
// domain), and each comma-separated part gives the address in its angle
// brackets, or else its text. So "Doe, John <a@b>" gives Doe and a@b, as
// with Postfix; a name that is nobody's is refused by the daemon, and
// bounced when others got the message (see sendOverSocket).
func addressList(v string) []string {
	v = strings.TrimSpace(v)
	if v == "" {
		return nil
	}
	var out []string
	if list, err := mail.ParseAddressList(v); err == nil {
		for _, a := range list {
			out = append(out, a.Address)
		}
		return out
	}
	for _, part := range splitAddressList(v) {
		if a := partAddress(part); a != "" {
			out = append(out, a)
		}
	}
	return out
}

// splitAddressList splits at the commas and semicolons outside quoted
// strings, angle brackets and comments, dropping comments and group names
// ("team: a, b;").
func splitAddressList(v string) []string {
	var parts []string
	var cur strings.Builder
	quoted, escaped, angle, comment := false, false, 0, 0
	for _, r := range v {
		switch {
		case escaped:
			escaped = false
		case r == '\\' && (quoted || comment > 0):
			escaped = true
		case quoted:
			quoted = r != '"'
		case comment > 0:
			if r == '(' {
				comment++
			} else if r == ')' {
				comment--
			}
			continue
		case r == '(':
			comment++
			continue
		case r == '"':
			quoted = true
		case r == '<':
			angle++
		case r == '>' && angle > 0:
			angle--
		case angle == 0 && (r == ',' || r == ';'):
			parts = append(parts, cur.String())
			cur.Reset()
			continue
		case angle == 0 && r == ':':
			cur.Reset() // a group's display name
			continue
		}
		if comment == 0 {
			cur.WriteRune(r)
		}
	}
	return append(parts, cur.String())
}

// partAddress is the address of one part of a list: inside its last
// angle brackets (less any source route, RFC 5321 §4.1.1.3), or the part.
func partAddress(part string) string {
	if i := strings.LastIndexByte(part, '<'); i >= 0 {
		part, _, _ = strings.Cut(part[i+1:], ">")
		if j := strings.LastIndexByte(part, ':'); strings.HasPrefix(part, "@") && j > 0 {
			part = part[j+1:]
		}
	}
	part = strings.Join(strings.Fields(part), " ")
	if a, err := mail.ParseAddress(part); err == nil {
		return a.Address
	}
	return part
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

// sendOverSocket sends the message in transactions of at most batch
// recipients, the daemon's max_recipients: more would get 452 4.5.3
// (RFC 5321 §4.5.3.1.10). Every batch is tried. If no transaction
// delivered, the first refusal is the exit status and nobody has the
// message: sendmail's caller learns of a wrong address at once. Once
// anyone has the message, it is never left half sent: the recipients
// refused or deferred, in any transaction, go to the maildrop, where the
// daemon bounces or retries them, and the exit status is 0. That is what Postfix's
// sendmail does for every message (it hands all to its maildrop, then
// cleanup(8) and the queue manager bounce the bad recipients).
func sendOverSocket(sock, drop string, batch int, env smtp.Envelope, msg []byte) error {
	var sent int
	var left []smtp.EnvelopeRcpt
	var first error
	for part := range slices.Chunk(env.Rcpts, max(batch, 1)) {
		e := env
		e.Rcpts = part
		ok, refused, err := sendBatch(sock, e, msg)
		if errors.Is(err, errNoDaemon) && sent == 0 && len(left) == 0 {
			return err // the caller writes it all to the maildrop
		}
		sent += ok
		left = append(left, refused...)
		if first == nil {
			first = err
		}
	}
	switch {
	case sent == 0 && first == nil: // cannot happen: every batch has recipients
		return exitf(exSoftware, "no recipient was offered")
	case sent == 0:
		return first
	case len(left) == 0:
		return nil
	}
	e := env
	e.Rcpts = left
	if _, err := pickup.Write(drop, dropEnvelope(e), msg); err != nil {
		return exitf(exTempFail, "%d recipients have the message, but %d could not be kept for a retry or a bounce: %v (first refusal: %v)", sent, len(left), err, first)
	}
	return nil
}

// sendBatch runs one transaction on its own connection. It returns how
// many recipients have the message, those who have not, and the first
// refusal or failure.
func sendBatch(sock string, env smtp.Envelope, msg []byte) (int, []smtp.EnvelopeRcpt, error) {
	c, err := dialSocket(sock)
	if err != nil {
		return 0, env.Rcpts, err
	}
	defer c.Quit()
	if err := c.Hello("localhost"); err != nil {
		return 0, env.Rcpts, exitf(exTempFail, "posthorn daemon: %v", err)
	}
	res, err := c.Send(env, bytes.NewReader(msg))
	switch {
	case err != nil:
		// The outcome is unknown; a retry may duplicate, never lose.
		return 0, env.Rcpts, exitf(exTempFail, "posthorn daemon: %v", err)
	case res.Mail.Code != 250:
		return 0, env.Rcpts, replyExit("sender <"+env.From+">", res.Mail)
	}
	var accepted, refused []smtp.EnvelopeRcpt
	var first error
	for i, r := range res.Rcpts {
		if r.Code/100 == 2 {
			accepted = append(accepted, env.Rcpts[i])
			continue
		}
		refused = append(refused, env.Rcpts[i])
		if first == nil {
			first = replyExit("recipient <"+env.Rcpts[i].Addr+">", r)
		}
	}
	if len(accepted) > 0 && res.Data.Code != 250 {
		return 0, env.Rcpts, replyExit("message", res.Data)
	}
	return len(accepted), refused, first
}

func dialSocket(sock string) (*smtp.Client, error) {
	nc, err := net.DialTimeout("unix", sock, 10*time.Second)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", errNoDaemon, err)
	}
	c, err := smtp.NewClient(nc, 5*time.Minute)
	if err != nil {
		// No greeting, or 421 (too busy, shutting down): nothing was
		// sent, so the maildrop takes the message without any risk of
		// a second copy (exit 75 here lost cron mail during a burst).
		nc.Close()
		return nil, fmt.Errorf("%w: %v", errNoDaemon, err)
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

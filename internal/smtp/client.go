package smtp

import (
	"bufio"
	"bytes"
	"context"
	"crypto/tls"
	"encoding/base64"
	"errors"
	"fmt"
	"net"
	"strconv"
	"strings"
	"time"

	"posthorn/internal/sasl"
)

// Client limits on what a server may send us.
const (
	maxReplyLine  = 2048 // RFC 5321 §4.5.3.1.5 says 512; be lenient
	maxReplyLines = 100
)

// ErrBadReply is returned for a reply that breaks RFC 5321 §4.2's syntax.
var ErrBadReply = errors.New("smtp: malformed reply")

// Client is an SMTP client session on one connection. It is not safe for
// concurrent use.
type Client struct {
	nc      net.Conn
	raw     net.Conn
	br      *bufio.Reader
	bw      *bufio.Writer
	ext     map[string]string // EHLO keywords, upper-cased
	tls     bool
	timeout time.Duration
	// Greeting is the server's 220 reply.
	Greeting Reply
	// HelloName is the name the server gave for itself in its last
	// EHLO or HELO reply (RFC 5321 §4.1.1.1: the first word of the
	// 250), or "" before Hello.
	HelloName string
}

// NewClient reads the greeting on nc. timeout bounds each command.
func NewClient(nc net.Conn, timeout time.Duration) (*Client, error) {
	if timeout <= 0 {
		timeout = 5 * time.Minute
	}
	c := &Client{nc: nc, raw: nc, timeout: timeout}
	c.br = bufio.NewReader(nc)
	c.bw = bufio.NewWriter(deadlineWriter{nc, timeout})
	r, err := c.readReply()
	if err != nil {
		return nil, err
	}
	if r.Code != CodeReady {
		// A greeting below 400 that is not 220 (221, 250) is no failure
		// to r.Err: returning that nil error with no client crashed the
		// daemon on the next call.
		return nil, r.errUnless("greeting")
	}
	c.Greeting = r
	return c, nil
}

// errUnless is the error for a reply to what that is not the one the
// protocol calls for: its own failure, or ErrBadReply for a positive
// reply of the wrong kind, which must not be taken for success.
func (r Reply) errUnless(what string) error {
	if err := r.Err(); err != nil {
		return err
	}
	return fmt.Errorf("%w: %d to %s: %.200s", ErrBadReply, r.Code, what, r.Text())
}

// Text returns the reply text, lines joined with spaces.
func (r Reply) Text() string { return strings.Join(r.Lines, " ") }

// Err returns r as an *Error (nil for 2xx and 3xx replies).
func (r Reply) Err() error {
	if r.Code < 400 {
		return nil
	}
	enh := r.Enhanced
	if enh == "" {
		enh = fmt.Sprintf("%d.0.0", r.Code/100)
	}
	return &Error{Code: r.Code, Enhanced: enh, Msg: r.Text()}
}

func (r Reply) String() string {
	if r.Enhanced != "" {
		return fmt.Sprintf("%d %s %s", r.Code, r.Enhanced, r.Text())
	}
	return fmt.Sprintf("%d %s", r.Code, r.Text())
}

// deadlineWriter gives every write to the server its own deadline, so
// that a large message sent to a server reading it slowly but steadily is
// not cut off by one deadline for the whole transfer (RFC 5321
// §4.5.3.2.5: a timeout per data block sent, not per message).
type deadlineWriter struct {
	nc      net.Conn
	timeout time.Duration
}

func (w deadlineWriter) Write(p []byte) (int, error) {
	_ = w.nc.SetWriteDeadline(time.Now().Add(w.timeout))
	return w.nc.Write(p)
}

// readReply reads one reply, strictly: every line "ddd-" or "ddd ", the
// same code on every line, no NUL or stray CR, bounded length and count.
func (c *Client) readReply() (Reply, error) {
	return c.readReplyWithin(c.timeout)
}

func (c *Client) readReplyWithin(timeout time.Duration) (Reply, error) {
	_ = c.nc.SetReadDeadline(time.Now().Add(timeout))
	var r Reply
	for n := 0; ; n++ {
		if n >= maxReplyLines {
			return r, fmt.Errorf("%w: more than %d lines", ErrBadReply, maxReplyLines)
		}
		line, err := c.readLine()
		if err != nil {
			return r, err
		}
		code, last, text, ok := parseReplyLine(line)
		if !ok || (n > 0 && code != r.Code) {
			return r, fmt.Errorf("%w: %q", ErrBadReply, line)
		}
		r.Code = code
		r.Lines = append(r.Lines, text)
		if last {
			break
		}
	}
	r.Enhanced, r.Lines = splitEnhanced(r.Code, r.Lines)
	return r, nil
}

func (c *Client) readLine() (string, error) {
	line, err := c.br.ReadSlice('\n')
	if errors.Is(err, bufio.ErrBufferFull) || len(line) > maxReplyLine {
		return "", fmt.Errorf("%w: line too long", ErrBadReply)
	}
	if err != nil {
		return "", err
	}
	line = bytes.TrimSuffix(bytes.TrimSuffix(line, []byte("\n")), []byte("\r"))
	if bytes.ContainsAny(line, "\r\x00") {
		return "", fmt.Errorf("%w: control characters", ErrBadReply)
	}
	return string(line), nil
}

func parseReplyLine(line string) (code int, last bool, text string, ok bool) {
	if len(line) < 3 || line[0] < '2' || line[0] > '5' || line[1] < '0' || line[1] > '9' || line[2] < '0' || line[2] > '9' {
		return 0, false, "", false
	}
	code, _ = strconv.Atoi(line[:3])
	switch {
	case len(line) == 3:
		return code, true, "", true
	case line[3] == ' ':
		return code, true, line[4:], true
	case line[3] == '-':
		return code, false, line[4:], true
	}
	return 0, false, "", false
}

// splitEnhanced takes the RFC 2034 code off every line if the first has one
// of the reply's class.
func splitEnhanced(code int, lines []string) (string, []string) {
	first, _, _ := strings.Cut(lines[0], " ")
	if !isEnhanced(first, code) {
		return "", lines
	}
	out := make([]string, len(lines))
	for i, l := range lines {
		if e, rest, _ := strings.Cut(l, " "); e == first {
			out[i] = rest
		} else {
			out[i] = l
		}
	}
	return first, out
}

func isEnhanced(s string, code int) bool {
	p := strings.Split(s, ".")
	if len(p) != 3 || p[0] != strconv.Itoa(code/100) {
		return false
	}
	for _, x := range p[1:] {
		if n, err := strconv.Atoi(x); err != nil || n < 0 || n > 999 || x == "" {
			return false
		}
	}
	return true
}

// cmd sends one command and reads its reply.
func (c *Client) cmd(format string, args ...any) (Reply, error) {
	if err := c.send(format, args...); err != nil {
		return Reply{}, err
	}
	return c.readReply()
}

func (c *Client) send(format string, args ...any) error {
	line := fmt.Sprintf(format, args...)
	if strings.ContainsAny(line, "\r\n") {
		return errors.New("smtp: CR or LF in a command")
	}
	if _, err := c.bw.WriteString(line + "\r\n"); err != nil {
		return err
	}
	return c.bw.Flush()
}

// Hello sends EHLO, or HELO when the server does not know EHLO.
func (c *Client) Hello(name string) error {
	r, err := c.cmd("EHLO %s", name)
	if err != nil {
		return err
	}
	if r.Code == CodeOK {
		c.HelloName = firstWord(r.Lines)
		c.ext = map[string]string{}
		for _, l := range r.Lines[1:] {
			k, v, _ := strings.Cut(l, " ")
			c.ext[strings.ToUpper(k)] = v
		}
		return nil
	}
	if r, err = c.cmd("HELO %s", name); err != nil {
		return err
	}
	c.ext = map[string]string{}
	if err := r.Err(); err != nil {
		return err
	}
	c.HelloName = firstWord(r.Lines)
	return nil
}

// firstWord is the first word of a reply's first line: in a greeting or
// an EHLO reply, the server's name for itself (RFC 5321 §4.2).
func firstWord(lines []string) string {
	if len(lines) == 0 {
		return ""
	}
	w, _, _ := strings.Cut(strings.TrimLeft(lines[0], " "), " ")
	return w
}

// GreetingName is the name the server gave for itself in its 220.
func (c *Client) GreetingName() string { return firstWord(c.Greeting.Lines) }

// Ext reports whether the server announced an EHLO keyword, and its value.
func (c *Client) Ext(name string) (string, bool) {
	v, ok := c.ext[strings.ToUpper(name)]
	return v, ok
}

// TLS reports whether the session is encrypted.
func (c *Client) TLS() (tls.ConnectionState, bool) {
	if tc, ok := c.nc.(*tls.Conn); ok {
		return tc.ConnectionState(), true
	}
	return tls.ConnectionState{}, false
}

// StartTLS upgrades the connection (RFC 3207). Whatever the server sent
// after its 220 in plaintext is discarded, never read as a TLS-protected
// reply (response injection, CVE-2011-0411's client side). The caller must
// send EHLO again.
func (c *Client) StartTLS(ctx context.Context, cfg *tls.Config) error {
	r, err := c.cmd("STARTTLS")
	if err != nil {
		return err
	}
	if r.Code != CodeReady {
		return r.errUnless("STARTTLS") // a 250 is no "go ahead" for TLS
	}
	tc := tls.Client(c.raw, cfg)
	_ = tc.SetDeadline(time.Now().Add(c.timeout))
	if err := tc.HandshakeContext(ctx); err != nil {
		return fmt.Errorf("smtp: TLS handshake: %w", err)
	}
	_ = tc.SetDeadline(time.Time{})
	c.nc, c.tls = tc, true
	c.br = bufio.NewReader(tc) // drops buffered plaintext
	c.bw = bufio.NewWriter(deadlineWriter{tc, c.timeout})
	c.ext = nil
	return nil
}

// Auth runs a client SASL exchange. step answers each server challenge
// (nil first, for the initial response).
func (c *Client) Auth(mech string, step func(challenge []byte) ([]byte, error)) error {
	ir, err := step(nil)
	if err != nil {
		return err
	}
	arg := mech
	if ir != nil {
		enc := base64.StdEncoding.EncodeToString(ir)
		if enc == "" {
			enc = "="
		}
		arg += " " + enc
	}
	r, err := c.cmd("AUTH %s", arg)
	for err == nil && r.Code == 334 {
		ch, derr := base64.StdEncoding.DecodeString(r.Text())
		if derr != nil {
			return fmt.Errorf("%w: bad challenge", ErrBadReply)
		}
		resp, serr := step(ch)
		if serr != nil {
			_, _ = c.cmd("*")
			return serr
		}
		r, err = c.cmd("%s", base64.StdEncoding.EncodeToString(resp))
	}
	if err != nil {
		return err
	}
	return r.Err()
}

// PlainAuth returns a step function for PLAIN.
func PlainAuth(user, password string) func([]byte) ([]byte, error) {
	return func(ch []byte) ([]byte, error) {
		if ch == nil {
			return sasl.PlainResponse("", user, password), nil
		}
		return nil, errors.New("smtp: unexpected PLAIN challenge")
	}
}

// Quit ends the session politely and closes the connection.
func (c *Client) Quit() error {
	return c.QuitWithin(c.timeout)
}

// QuitWithin is Quit waiting at most d for the server's reply, which
// changes nothing once the transaction's replies are in.
func (c *Client) QuitWithin(d time.Duration) error {
	_ = c.nc.SetWriteDeadline(time.Now().Add(d))
	if err := c.send("QUIT"); err == nil {
		_, _ = c.readReplyWithin(d)
	}
	return c.nc.Close()
}

// Close closes the connection without QUIT.
func (c *Client) Close() error { return c.nc.Close() }

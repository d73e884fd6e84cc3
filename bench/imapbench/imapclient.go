package main

import (
	"bufio"
	"bytes"
	"crypto/tls"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"net"
	"strconv"
	"strings"
	"time"

	"github.com/xdg-go/scram"
)

// imapConn is a minimal IMAP client: one command at a time, responses read
// up to the tagged status line, literals skipped (their octets counted).
type imapConn struct {
	nc   net.Conn
	br   *bufio.Reader
	bw   *bufio.Writer
	tagN int
	line []byte // scratch for the logical line being read
	// litCount counts literal octets received on this connection.
	litCount int64
}

// reply is what one command got back.
type reply struct {
	status   string // OK, NO, BAD
	text     string // rest of the tagged line
	untagged int    // untagged responses seen
	literal  int64  // literal octets received
	exists   int    // last "* N EXISTS", or -1
	searched int    // numbers in "* SEARCH" / "* ESEARCH ... ALL"
}

// account is one login: the SCRAM client caches the derived keys, so
// thousands of logins cost the client one PBKDF2 per account.
type account struct {
	user, pass string
	scram      *scram.Client
}

func newAccount(user, pass string) (*account, error) {
	cl, err := scram.SHA256.NewClient(user, pass, "")
	if err != nil {
		return nil, err
	}
	return &account{user: user, pass: pass, scram: cl}, nil
}

// dialIMAP connects, reads the greeting and runs STARTTLS when tlsCfg is
// set.
func dialIMAP(addr string, local *net.TCPAddr, tlsCfg *tls.Config, timeout time.Duration) (*imapConn, error) {
	d := net.Dialer{Timeout: timeout}
	if local != nil {
		d.LocalAddr = local
	}
	nc, err := d.Dial("tcp", addr)
	if err != nil {
		return nil, err
	}
	c := &imapConn{nc: nc}
	c.br = bufio.NewReaderSize(nc, 32<<10)
	c.bw = bufio.NewWriterSize(nc, 4<<10)
	_ = nc.SetDeadline(time.Now().Add(timeout))
	g, err := c.readLine()
	if err != nil {
		nc.Close()
		return nil, fmt.Errorf("greeting: %w", err)
	}
	if !bytes.HasPrefix(g, []byte("* OK")) {
		nc.Close()
		return nil, fmt.Errorf("greeting: %q", g)
	}
	if tlsCfg != nil {
		r, err := c.run("STARTTLS")
		if err != nil || r.status != "OK" {
			nc.Close()
			return nil, fmt.Errorf("STARTTLS: %v %s %s", err, r.status, r.text)
		}
		tc := tls.Client(nc, tlsCfg)
		if err := tc.Handshake(); err != nil {
			nc.Close()
			return nil, fmt.Errorf("tls: %w", err)
		}
		c.nc = tc
		c.br.Reset(tc)
		c.bw.Reset(tc)
	}
	_ = c.nc.SetDeadline(time.Time{})
	return c, nil
}

func (c *imapConn) Close() error { return c.nc.Close() }

// login authenticates with LOGIN ("login") or AUTHENTICATE SCRAM-SHA-256
// ("scram").
func (c *imapConn) login(a *account, mech string) error {
	switch mech {
	case "login":
		r, err := c.run("LOGIN " + quote(a.user) + " " + quote(a.pass))
		if err != nil {
			return err
		}
		if r.status != "OK" {
			return fmt.Errorf("LOGIN %s: %s %s", a.user, r.status, r.text)
		}
		return nil
	case "scram":
		return c.scramLogin(a)
	}
	return fmt.Errorf("unknown auth %q", mech)
}

func (c *imapConn) scramLogin(a *account) error {
	conv := a.scram.NewConversation()
	first, err := conv.Step("")
	if err != nil {
		return err
	}
	tag := c.nextTag()
	fmt.Fprintf(c.bw, "%s AUTHENTICATE SCRAM-SHA-256 %s\r\n", tag, base64.StdEncoding.EncodeToString([]byte(first)))
	if err := c.bw.Flush(); err != nil {
		return err
	}
	for {
		line, err := c.readLine()
		if err != nil {
			return err
		}
		switch {
		case bytes.HasPrefix(line, []byte("+")):
			ch, err := base64.StdEncoding.DecodeString(strings.TrimSpace(string(line[1:])))
			if err != nil {
				return fmt.Errorf("scram challenge: %w", err)
			}
			resp := ""
			if !conv.Done() {
				if resp, err = conv.Step(string(ch)); err != nil {
					c.bw.WriteString("*\r\n")
					c.bw.Flush()
					return fmt.Errorf("scram: %w", err)
				}
			}
			if conv.Done() {
				resp = ""
			}
			c.bw.WriteString(base64.StdEncoding.EncodeToString([]byte(resp)) + "\r\n")
			if err := c.bw.Flush(); err != nil {
				return err
			}
		case bytes.HasPrefix(line, []byte(tag+" ")):
			rest := string(line[len(tag)+1:])
			if !strings.HasPrefix(rest, "OK") {
				return fmt.Errorf("AUTHENTICATE %s: %s", a.user, rest)
			}
			return nil
		}
	}
}

func (c *imapConn) nextTag() string {
	c.tagN++
	return "a" + strconv.Itoa(c.tagN)
}

// run sends one command and reads its responses.
func (c *imapConn) run(cmd string) (reply, error) {
	tag := c.nextTag()
	c.bw.WriteString(tag)
	c.bw.WriteByte(' ')
	c.bw.WriteString(cmd)
	c.bw.WriteString("\r\n")
	if err := c.bw.Flush(); err != nil {
		return reply{}, err
	}
	return c.readReply(tag)
}

// readReply reads responses until the tagged one.
func (c *imapConn) readReply(tag string) (reply, error) {
	r := reply{exists: -1}
	for {
		lit0 := c.litCount
		line, err := c.readLine()
		if err != nil {
			return r, err
		}
		r.literal += c.litCount - lit0
		if len(line) > 2 && line[0] == '*' && line[1] == ' ' {
			r.untagged++
			if n, ok := parseExists(line); ok {
				r.exists = n
			} else if bytes.HasPrefix(line, []byte("* SEARCH")) {
				r.searched += bytes.Count(line, []byte(" "))
				r.searched--
			}
			continue
		}
		if len(line) > len(tag) && string(line[:len(tag)]) == tag && line[len(tag)] == ' ' {
			rest := string(line[len(tag)+1:])
			st, text, _ := strings.Cut(rest, " ")
			r.status, r.text = st, text
			return r, nil
		}
		// continuation requests and anything else are ignored
	}
}

// parseExists recognises "* N EXISTS".
func parseExists(line []byte) (int, bool) {
	if !bytes.HasSuffix(line, []byte(" EXISTS")) {
		return 0, false
	}
	n, err := strconv.Atoi(string(line[2 : len(line)-len(" EXISTS")]))
	return n, err == nil
}

// readLine reads one logical response line without CRLF. Literals inside it
// are skipped; the text keeps the "{n}" marker.
func (c *imapConn) readLine() ([]byte, error) {
	c.line = c.line[:0]
	for {
		chunk, err := c.br.ReadSlice('\n')
		c.line = append(c.line, chunk...)
		if errors.Is(err, bufio.ErrBufferFull) {
			continue
		}
		if err != nil {
			return nil, err
		}
		l := bytes.TrimRight(c.line, "\r\n")
		if n, ok := literalSize(l); ok {
			if _, err := c.br.Discard(int(n)); err != nil {
				return nil, err
			}
			c.litCount += n
			c.line = l // continue the same logical line
			continue
		}
		return l, nil
	}
}

// literalSize recognises a line ending in "{n}" or "{n+}".
func literalSize(l []byte) (int64, bool) {
	if len(l) < 3 || l[len(l)-1] != '}' {
		return 0, false
	}
	i := bytes.LastIndexByte(l, '{')
	if i < 0 {
		return 0, false
	}
	num := bytes.TrimSuffix(l[i+1:len(l)-1], []byte("+"))
	n, err := strconv.ParseInt(string(num), 10, 64)
	if err != nil || n < 0 {
		return 0, false
	}
	return n, true
}

// startIdle sends IDLE and waits for the continuation request.
func (c *imapConn) startIdle() (string, error) {
	tag := c.nextTag()
	fmt.Fprintf(c.bw, "%s IDLE\r\n", tag)
	if err := c.bw.Flush(); err != nil {
		return "", err
	}
	for {
		line, err := c.readLine()
		if err != nil {
			return "", err
		}
		if bytes.HasPrefix(line, []byte("+")) {
			return tag, nil
		}
		if bytes.HasPrefix(line, []byte(tag+" ")) {
			return "", fmt.Errorf("IDLE: %s", line)
		}
	}
}

func quote(s string) string {
	return `"` + strings.NewReplacer(`\`, `\\`, `"`, `\"`).Replace(s) + `"`
}

var _ io.Closer = (*imapConn)(nil)

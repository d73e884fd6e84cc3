package fetch

import (
	"bufio"
	"bytes"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"strconv"
	"strings"
)

// pop3Client speaks the client side of POP3 (RFC 1939) with CAPA
// (RFC 2449) and STLS (RFC 2595). It is not safe for concurrent use.
type pop3Client struct {
	conn net.Conn
	r    *bufio.Reader
	w    *bufio.Writer
	// begin, when set, runs before every command (see deadlineConn).
	begin func()
}

// Limits on what the server sends.
const (
	// RFC 2449 §4: a response line is at most 512 octets; be lenient.
	pop3MaxStatus = 4 << 10
	// A listing (UIDL, LIST, CAPA) line is short; a message line is
	// bounded only by the message size.
	pop3MaxListLine = 1 << 10
	// pop3MaxListing bounds the messages one maildrop may list.
	pop3MaxListing = 1 << 20
	// pop3MaxCapa bounds the lines of a CAPA response (a real server
	// sends about ten).
	pop3MaxCapa = 1000
)

// pop3Error is a -ERR response.
type pop3Error struct{ cmd, text string }

func (e *pop3Error) Error() string { return fmt.Sprintf("pop3 %s: -ERR %s", e.cmd, e.text) }

// errTooBig: a message is larger than the limit it was read with.
var errTooBig = errors.New("message larger than the maximum size")

func newPOP3Client(conn net.Conn) *pop3Client {
	return &pop3Client{conn: conn, r: bufio.NewReaderSize(conn, 32<<10), w: bufio.NewWriter(conn)}
}

// greeting reads the server's first line (RFC 1939 §4).
func (c *pop3Client) greeting() error {
	_, err := c.status("greeting")
	return err
}

// cmd sends one command line and reads its status line.
func (c *pop3Client) cmd(name string, args ...string) (string, error) {
	line := strings.Join(append([]string{name}, args...), " ")
	if strings.ContainsAny(line, "\r\n") {
		return "", fmt.Errorf("pop3 %s: argument with a line break", name)
	}
	if c.begin != nil {
		c.begin()
	}
	if _, err := c.w.WriteString(line + "\r\n"); err != nil {
		return "", err
	}
	if err := c.w.Flush(); err != nil {
		return "", fmt.Errorf("pop3 %s: %w", name, err)
	}
	return c.status(name)
}

// status reads a "+OK text" or "-ERR text" line.
func (c *pop3Client) status(name string) (string, error) {
	line, err := c.readLine(pop3MaxStatus)
	if err != nil {
		return "", fmt.Errorf("pop3 %s: %w", name, err)
	}
	s := string(line)
	switch {
	case s == "+OK" || strings.HasPrefix(s, "+OK "):
		return strings.TrimPrefix(strings.TrimPrefix(s, "+OK"), " "), nil
	case s == "-ERR" || strings.HasPrefix(s, "-ERR "):
		return "", &pop3Error{cmd: name, text: strings.TrimPrefix(strings.TrimPrefix(s, "-ERR"), " ")}
	}
	return "", fmt.Errorf("pop3 %s: malformed response %.80q", name, s)
}

// readLine returns the next line without its line end (CRLF, or a bare
// LF), failing when it is longer than limit octets.
func (c *pop3Client) readLine(limit int) ([]byte, error) {
	var line []byte
	for {
		part, err := c.r.ReadSlice('\n')
		if len(line)+len(part) > limit+2 {
			return nil, fmt.Errorf("line longer than %d octets", limit)
		}
		line = append(line, part...)
		switch {
		case err == nil:
			line = bytes.TrimSuffix(line[:len(line)-1], []byte("\r"))
			return line, nil
		case errors.Is(err, bufio.ErrBufferFull):
			continue
		case errors.Is(err, io.EOF):
			return nil, io.ErrUnexpectedEOF
		default:
			return nil, err
		}
	}
}

// multi reads the lines of a multi-line response up to the terminating
// "." (RFC 1939 §3), removing dot-stuffing, and calls fn with each. A
// single line is at most lineLimit octets.
func (c *pop3Client) multi(lineLimit int, fn func([]byte) error) error {
	for {
		line, err := c.readLine(lineLimit)
		if err != nil {
			return err
		}
		if len(line) > 0 && line[0] == '.' {
			if len(line) == 1 {
				return nil
			}
			line = line[1:]
		}
		if err := fn(line); err != nil {
			return err
		}
	}
}

// capa returns the server's capabilities, upper-cased, or nil when it
// has no CAPA command.
func (c *pop3Client) capa() (map[string]bool, error) {
	if _, err := c.cmd("CAPA"); err != nil {
		var pe *pop3Error
		if errors.As(err, &pe) {
			return nil, nil
		}
		return nil, err
	}
	caps := map[string]bool{}
	lines := 0
	err := c.multi(pop3MaxListLine, func(line []byte) error {
		// An endless CAPA grew the client by 50 MB a second.
		if lines++; lines > pop3MaxCapa {
			return fmt.Errorf("pop3 CAPA: more than %d lines", pop3MaxCapa)
		}
		caps[strings.ToUpper(strings.Fields(string(line) + " x")[0])] = true
		return nil
	})
	return caps, err
}

// stls upgrades the connection (RFC 2595 §4); conn is the plain
// connection under the client.
func (c *pop3Client) stls(conf *tls.Config) error {
	if _, err := c.cmd("STLS"); err != nil {
		return err
	}
	if c.r.Buffered() > 0 {
		return errors.New("pop3 STLS: server sent data before the TLS handshake")
	}
	tc := tls.Client(c.conn, conf)
	if err := tc.Handshake(); err != nil {
		return fmt.Errorf("pop3 STLS: %w", err)
	}
	c.conn, c.r, c.w = tc, bufio.NewReaderSize(tc, 32<<10), bufio.NewWriter(tc)
	return nil
}

// login authenticates with USER and PASS (RFC 1939 §7).
func (c *pop3Client) login(user, pass string) error {
	if _, err := c.cmd("USER", user); err != nil {
		return err
	}
	_, err := c.cmd("PASS", pass)
	return err
}

// pop3Entry is one message of the maildrop.
type pop3Entry struct {
	n    int
	uidl string
	// unusable: its UIDL is shared with another message or holds octets
	// RFC 1939 §7 forbids (outside 0x21-0x7E). Such a message is neither
	// fetched nor deleted: one UIDL for two messages would make the
	// second look fetched (and be deleted unread), and a UIDL that is
	// not text does not survive the state file (fetched again each time).
	unusable bool
	size     int64
}

// list returns every message with its UIDL and size (RFC 1939 §7 UIDL,
// §5 LIST), in message-number order.
func (c *pop3Client) list() ([]pop3Entry, error) {
	if _, err := c.cmd("UIDL"); err != nil {
		return nil, fmt.Errorf("%w (posthorn fetch needs UIDL to know which messages it has)", err)
	}
	var es []pop3Entry
	index := map[int]int{}
	err := c.multi(pop3MaxListLine, func(line []byte) error {
		f := strings.Fields(string(line))
		n, err := strconv.Atoi(firstOr(f))
		// RFC 1939 §7: a unique-id is 1 to 70 characters 0x21 to 0x7E.
		if err != nil || n < 1 || len(f) != 2 || len(f[1]) > 70 || len(es) >= pop3MaxListing {
			return fmt.Errorf("pop3 UIDL: malformed line %.80q", line)
		}
		if _, dup := index[n]; dup {
			return fmt.Errorf("pop3 UIDL: message %d listed twice", n)
		}
		index[n] = len(es)
		es = append(es, pop3Entry{n: n, uidl: f[1], unusable: !printableUIDL(f[1])})
		return nil
	})
	if err != nil {
		return nil, err
	}
	seen := make(map[string]int, len(es))
	for i, e := range es {
		if j, dup := seen[e.uidl]; dup {
			es[i].unusable, es[j].unusable = true, true
		}
		seen[e.uidl] = i
	}
	if _, err := c.cmd("LIST"); err != nil {
		return nil, err
	}
	lines := 0
	err = c.multi(pop3MaxListLine, func(line []byte) error {
		// An endless LIST held a pass for ever: every read got data, so
		// no read timed out. LIST names each message once, as UIDL did.
		if lines++; lines > len(es) {
			return fmt.Errorf("pop3 LIST: more lines than UIDL listed (%d)", len(es))
		}
		f := strings.Fields(string(line))
		if len(f) != 2 {
			return fmt.Errorf("pop3 LIST: malformed line %.80q", line)
		}
		n, err1 := strconv.Atoi(f[0])
		size, err2 := strconv.ParseInt(f[1], 10, 64)
		if err1 != nil || err2 != nil || size < 0 {
			return fmt.Errorf("pop3 LIST: malformed line %.80q", line)
		}
		if i, ok := index[n]; ok {
			es[i].size = size
		}
		return nil
	})
	return es, err
}

// printableUIDL reports whether u is made of 0x21-0x7E (RFC 1939 §7).
func printableUIDL(u string) bool {
	for i := 0; i < len(u); i++ {
		if u[i] < 0x21 || u[i] > 0x7e {
			return false
		}
	}
	return u != ""
}

func firstOr(f []string) string {
	if len(f) == 0 {
		return ""
	}
	return f[0]
}

// retr returns message n with CRLF line ends, failing with errTooBig
// (and leaving the connection unusable) past limit octets.
func (c *pop3Client) retr(n int, limit int64) ([]byte, error) {
	if _, err := c.cmd("RETR", strconv.Itoa(n)); err != nil {
		return nil, err
	}
	var buf bytes.Buffer
	err := c.multi(int(min(limit, 1<<30)), func(line []byte) error {
		if int64(buf.Len()+len(line)+2) > limit {
			return errTooBig
		}
		buf.Write(line)
		buf.WriteString("\r\n")
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("pop3 RETR %d: %w", n, err)
	}
	return buf.Bytes(), nil
}

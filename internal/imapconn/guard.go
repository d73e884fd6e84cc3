// Package imapconn connects our IMAP clients (posthorn fetch and posthorn
// mail, both on go-imap's imapclient) to servers that may be hostile: a
// STARTTLS that refuses injected data, and a Guard on every octet the
// server sends, so that no announced literal or endless line can make the
// client library hold more than a bound.
package imapconn

import (
	"fmt"
	"io"
	"net"
	"strings"
	"sync/atomic"
)

// Guard bounds what one IMAP response may make the client library
// (go-imap's imapclient) hold: it reads a literal that is not a message body into memory whole,
// and a response line too, so a hostile server announcing {3221225472}
// in an ENVELOPE, or sending an endless "* SEARCH" line, grew the daemon
// by gigabytes. It follows IMAP's framing (RFC 9051 §4.3: a literal is
// announced by "{n}" at the end of a line and its octets are skipped, not
// scanned) and fails the connection when one response, literals and lines
// together, passes max octets.
type Guard struct {
	net.Conn
	r    io.Reader // Conn, maybe behind a synthetic greeting
	max  int64
	skip int64 // octets of the current literal still to come
	sum  int64 // octets of the current response
	text int64 // of those, octets outside literals

	// The end of the current line, as far as a literal announcement
	// goes: after "{", digits (n), "+", "}", "\r".
	ann     annState
	n       int64
	tooLong bool // n passed max while its digits came

	cont bool   // the current response goes on after a literal
	head []byte // the first octets of the current response

	// uv counts "[UIDVALIDITY " response codes outside literals: a
	// session compares the count before it trusts UIDs (UIDValidityCodes).
	uv      atomic.Int64
	uvMatch int // octets of uvCode matched so far

	onWrite atomic.Pointer[func()]
}

const uvCode = "[UIDVALIDITY "

type annState int

const (
	annNone   annState = iota
	annDigits          // "{" and digits so far
	annPlus            // "{n+"
	annClosed          // "{n}" or "{n+}"
	annCR              // "{n}\r"
)

// MaxText bounds the octets of one response outside its literals: the
// library parses them into values (a flag list, numbers), each costing
// far more memory than its octets, so 256 MiB of "\Seen " grew a
// client to 3.3 GB. 16 MiB holds a UID SEARCH of two million messages.
const MaxText = 16 << 20

// NewGuard returns c guarded, failing it when one response passes max
// octets; r, when not nil, is what to read instead of c (c behind a
// greeting made up for the library).
func NewGuard(c net.Conn, r io.Reader, max int64) *Guard {
	if r == nil {
		r = c
	}
	return &Guard{Conn: c, r: r, max: max, head: make([]byte, 0, 16)}
}

// UIDValidityCodes counts the "[UIDVALIDITY " response codes read so far
// outside literals.
func (g *Guard) UIDValidityCodes() int64 { return g.uv.Load() }

// OnWrite sets f to run before every write to the server: posthorn fetch
// times each answer from the command that asked for it.
func (g *Guard) OnWrite(f func()) { g.onWrite.Store(&f) }

func (g *Guard) Write(p []byte) (int, error) {
	if f := g.onWrite.Load(); f != nil {
		(*f)()
	}
	return g.Conn.Write(p)
}

func (g *Guard) Read(p []byte) (int, error) {
	n, err := g.r.Read(p)
	if gerr := g.scan(p[:n]); gerr != nil {
		g.Conn.Close()
		return 0, gerr
	}
	return n, err
}

func (g *Guard) scan(b []byte) error {
	for len(b) > 0 {
		if g.skip > 0 {
			k := min(g.skip, int64(len(b)))
			g.skip -= k
			b = b[k:]
			continue
		}
		c := b[0]
		b = b[1:]
		if g.sum++; g.sum > g.max {
			return g.tooBig()
		}
		if g.text++; g.text > MaxText {
			return g.tooBig()
		}
		if c == '\n' {
			literal := g.ann == annCR || g.ann == annClosed
			if !g.cont && textResponse(g.head) {
				// resp-text runs to the line's end and holds no literal
				// (RFC 9051 §9): "* OK x {40}" announces nothing, and
				// skipping 40 octets would hide a real announcement.
				literal = false
			}
			g.ann = annNone
			if !literal {
				g.sum, g.text, g.cont, g.head = 0, 0, false, g.head[:0] // the response ended
				continue
			}
			g.cont = true
			if g.tooLong || g.sum+g.n > g.max {
				return g.tooBig()
			}
			g.sum += g.n
			g.skip = g.n
			continue
		}
		g.announce(c)
		g.watchUV(c)
		if !g.cont && len(g.head) < cap(g.head) {
			g.head = append(g.head, c)
		}
	}
	return nil
}

// textResponse reports whether a response beginning with head is one
// whose rest of line is resp-text: a continuation ("+"), an untagged
// OK, NO, BAD, BYE or PREAUTH, or a tagged OK, NO or BAD (RFC 9051 §7.1).
func textResponse(head []byte) bool {
	f := strings.Fields(string(head))
	if len(f) > 0 && f[0] == "+" {
		return true
	}
	if len(f) < 2 {
		return false
	}
	switch strings.ToUpper(f[1]) {
	case "OK", "NO", "BAD":
		return true
	case "BYE", "PREAUTH":
		return f[0] == "*"
	}
	return false
}

// watchUV counts uvCode in the text it is shown (case-insensitive: RFC
// 9051 atoms are). A false match inside a quoted string only makes the
// session more careful.
func (g *Guard) watchUV(c byte) {
	if c >= 'a' && c <= 'z' {
		c -= 'a' - 'A'
	}
	switch {
	case c == uvCode[g.uvMatch]:
		if g.uvMatch++; g.uvMatch == len(uvCode) {
			g.uv.Add(1)
			g.uvMatch = 0
		}
	case c == '[':
		g.uvMatch = 1
	default:
		g.uvMatch = 0
	}
}

// announce follows a possible "{n}" / "{n+}" / "~{n}" at the line's end.
func (g *Guard) announce(c byte) {
	switch {
	case c == '{':
		g.ann, g.n, g.tooLong = annDigits, 0, false
	case g.ann == annDigits && c >= '0' && c <= '9':
		if g.n = g.n*10 + int64(c-'0'); g.n > g.max {
			g.tooLong, g.n = true, g.max+1 // leading zeros cost nothing
		}
	case g.ann == annDigits && c == '+':
		g.ann = annPlus
	case (g.ann == annDigits || g.ann == annPlus) && c == '}':
		g.ann = annClosed
	case g.ann == annClosed && c == '\r':
		g.ann = annCR
	default:
		g.ann = annNone
	}
}

func (g *Guard) tooBig() error {
	return fmt.Errorf("imap: the server sent a response of more than %d octets", g.max)
}

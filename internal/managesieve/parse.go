package managesieve

import (
	"bytes"
	"math"
	"strconv"
	"strings"
	"unicode/utf8"
)

// maxQuoted is the longest quoted string we send: RFC 5804 §4 limits one
// to 1024 octets between the quotes. Longer strings go as literals.
const maxQuoted = 1024

// args reads the arguments of one command (RFC 5804 §4): from the rest of
// the command's line segment and, after each literal, from the segment
// that follows it. The first error stops it: bad says why, lost that the
// connection is gone (and readFailed has answered).
type args struct {
	c    *conn
	seg  []byte // the current line segment, without CRLF
	pos  int    // parse position in seg
	bad  *failure
	lost bool
	done bool // end succeeded: the command has been read whole
}

// fail records the first error and returns false, for "return a.fail(…)".
func (a *args) fail(f *failure) bool {
	if a.bad == nil && !a.lost {
		a.bad = f
	}
	return false
}

func (a *args) ok() bool { return a.bad == nil && !a.lost }

// atom reads a run of octets up to a space or the end of the segment: a
// command name, a number.
func (a *args) atom() string {
	start := a.pos
	for a.pos < len(a.seg) && a.seg[a.pos] != ' ' {
		a.pos++
	}
	return string(a.seg[start:a.pos])
}

// space consumes the separator before an argument. RFC 5804 §4 has one
// SP; more are forgiven.
func (a *args) space() bool {
	if !a.ok() {
		return false
	}
	if a.pos >= len(a.seg) || a.seg[a.pos] != ' ' {
		return a.fail(errSyntax)
	}
	for a.pos < len(a.seg) && a.seg[a.pos] == ' ' {
		a.pos++
	}
	return true
}

// more reports whether an optional argument follows.
func (a *args) more() bool {
	return a.ok() && len(bytes.TrimLeft(a.seg[a.pos:], " ")) > 0
}

// end checks that the command has no more arguments (trailing spaces
// forgiven).
func (a *args) end() bool {
	if !a.ok() {
		return false
	}
	if len(bytes.TrimLeft(a.seg[a.pos:], " ")) > 0 {
		return a.fail(errSyntax)
	}
	a.done = true
	return true
}

// str reads a string (RFC 5804 §4: quoted or literal-c2s) of at most
// limit octets; tooLong is the answer to a longer one.
func (a *args) str(limit int64, tooLong *failure) (string, bool) {
	if !a.ok() {
		return "", false
	}
	if a.pos < len(a.seg) {
		switch a.seg[a.pos] {
		case '"':
			return a.quoted(limit, tooLong)
		case '{':
			return a.literal(limit, tooLong)
		}
	}
	return "", a.fail(errSyntax)
}

// quoted reads a quoted string: "\" escapes only "\" and DQUOTE
// (RFC 5804 §4 QUOTED-SPECIALS). The line limit bounds it; we do not hold
// clients to the 1024 octets we keep to.
func (a *args) quoted(limit int64, tooLong *failure) (string, bool) {
	var out []byte
	for i := a.pos + 1; i < len(a.seg); i++ {
		switch b := a.seg[i]; b {
		case '"':
			if int64(len(out)) > limit {
				return "", a.fail(tooLong)
			}
			a.pos = i + 1
			return string(out), true
		case '\\':
			if i++; i >= len(a.seg) || a.seg[i] != '"' && a.seg[i] != '\\' {
				return "", a.fail(errSyntax)
			}
			out = append(out, a.seg[i])
		default:
			out = append(out, b)
		}
	}
	return "", a.fail(errSyntax) // no closing quote
}

// literal reads a literal whose header "{N+}" or "{N}" ends the segment,
// then the segment after it. RFC 5804 §4 has clients send only the
// non-synchronizing "{N+}"; "{N}" is taken the same way, as Dovecot and
// Cyrus do, since ManageSieve has no continuation outside AUTHENTICATE.
// A literal over limit is left for skipLiterals to discard.
func (a *args) literal(limit int64, tooLong *failure) (string, bool) {
	n, ok := literalHeader(a.seg[a.pos:])
	switch {
	case !ok:
		return "", a.fail(errSyntax)
	case n > limit:
		return "", a.fail(tooLong)
	}
	buf, err := a.c.readLiteral(n)
	if err != nil {
		return "", a.connLost(err)
	}
	seg, bad, err := a.c.readLine(false)
	if err != nil {
		return "", a.connLost(err)
	}
	a.seg, a.pos = seg, 0
	if bad != nil {
		return "", a.fail(bad)
	}
	return string(buf), true
}

func (a *args) connLost(err error) bool {
	a.c.readFailed(err)
	a.lost = true
	return false
}

// number reads SP and a number (RFC 5804 §4: a 32-bit unsigned decimal).
func (a *args) number() (int64, bool) {
	if !a.space() {
		return 0, false
	}
	n, err := strconv.ParseUint(a.atom(), 10, 32) // digits only: no sign
	if err != nil {
		return 0, a.fail(errSyntax)
	}
	return int64(n), true
}

// word reads a string, or an atom where a client sends one unquoted
// (a mechanism name, a SASL response).
func (a *args) word(limit int64, tooLong *failure) (string, bool) {
	if a.ok() && a.pos < len(a.seg) && a.seg[a.pos] != '"' && a.seg[a.pos] != '{' {
		return a.atom(), true
	}
	return a.str(limit, tooLong)
}

// literalHeader parses b as exactly "{N}" or "{N+}" with N of at most 32
// bits (RFC 5804 §4 number).
func literalHeader(b []byte) (int64, bool) {
	if len(b) < 3 || b[0] != '{' || b[len(b)-1] != '}' {
		return 0, false
	}
	digits := bytes.TrimSuffix(b[1:len(b)-1], []byte("+"))
	if len(digits) == 0 {
		return 0, false
	}
	for _, d := range digits {
		if d < '0' || d > '9' {
			return 0, false
		}
	}
	n, err := strconv.ParseUint(string(digits), 10, 32)
	if err != nil {
		// All digits, but beyond RFC 5804's number (32 bits): still a
		// literal whose octets follow, only too large to take. Read as
		// no literal, its octets ran as commands.
		return math.MaxInt64, true
	}
	return int64(n), true
}

// trailingLiteral reports whether a line ends in a literal header, and
// the literal's length.
func trailingLiteral(line []byte) (int64, bool) {
	i := bytes.LastIndexByte(line, '{')
	if i < 0 {
		return 0, false
	}
	return literalHeader(line[i:])
}

// appendString appends s as a quoted string when it can be one (UTF-8
// without NUL, CR and LF, at most maxQuoted octets with its escapes),
// else as a literal-s2c "{N}" CRLF s (RFC 5804 §4).
func appendString(b []byte, s string) []byte {
	if !quotable(s) {
		b = append(b, '{')
		b = strconv.AppendInt(b, int64(len(s)), 10)
		b = append(b, "}\r\n"...)
		return append(b, s...)
	}
	b = append(b, '"')
	for i := 0; i < len(s); i++ {
		if s[i] == '"' || s[i] == '\\' {
			b = append(b, '\\')
		}
		b = append(b, s[i])
	}
	return append(b, '"')
}

func quotable(s string) bool {
	n := len(s) + strings.Count(s, `"`) + strings.Count(s, `\`)
	return n <= maxQuoted && utf8.ValidString(s) && !strings.ContainsAny(s, "\x00\r\n")
}

package imap

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"math"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"
)

// Parser limits. RFC 9051 sets none; these follow Dovecot's
// (research/security.md §2.4).
const (
	maxCommand  = 64 << 10 // one command, literals included (APPEND's message excepted)
	maxSkip     = 1 << 20  // the rest of a refused command that is read and dropped, its literals included
	maxDepth    = 32       // nested parentheses
	maxLiteral8 = 4096     // non-synchronising literal that we may discard unread (LITERAL-)
)

// errSyntax and errTooBig are client errors: tagged BAD, session goes on.
var (
	errSyntax = errors.New("syntax error")
	errTooBig = errors.New("command too long")
	// errLineTooLong ends the session: the rest of a refused line went on
	// past maxSkip.
	errLineTooLong = errors.New("line too long")
)

// syntaxf returns an errSyntax with detail for the BAD text.
func syntaxf(format string, args ...any) error {
	return fmt.Errorf("%w: %s", errSyntax, fmt.Sprintf(format, args...))
}

// scanner parses one command from the connection. Literals are read as they
// come: a synchronising one gets "+" first (RFC 9051 §4.3).
type scanner struct {
	br     *bufio.Reader
	budget int
	cont   func() error // sends the "+ Ready" continuation
	utf8   bool         // mailbox names are UTF-8, not modified UTF-7
	depth  int
	eol    bool // the line end has been consumed: nothing to skip on error
	lit8   bool // the last literal read was a literal8 (~{n}, RFC 3516)
}

// peek looks at the next byte. Once the command budget is spent it fails
// like next does, so every "peek, then consume" loop ends at the limit
// instead of spinning on a byte it can no longer take.
func (s *scanner) peek() (byte, error) {
	if s.budget <= 0 {
		return 0, errTooBig
	}
	b, err := s.br.Peek(1)
	if err != nil {
		return 0, err
	}
	return b[0], nil
}

func (s *scanner) next() (byte, error) {
	if s.budget <= 0 {
		return 0, errTooBig
	}
	b, err := s.br.ReadByte()
	if err == nil {
		s.budget--
		s.eol = b == '\n'
	}
	return b, err
}

func (s *scanner) expect(want byte) error {
	b, err := s.next()
	if err != nil {
		return err
	}
	if b != want {
		return syntaxf("expected %q", want)
	}
	return nil
}

func (s *scanner) sp() error { return s.expect(' ') }

// crlf ends a command. RFC 9051 §2.2: lines end with CRLF.
func (s *scanner) crlf() error {
	if err := s.expect('\r'); err != nil {
		return err
	}
	return s.expect('\n')
}

// maybeSP consumes a space if one follows.
func (s *scanner) maybeSP() bool {
	if b, err := s.peek(); err == nil && b == ' ' {
		_, _ = s.next()
		return true
	}
	return false
}

// atEnd reports whether the command line ends here.
func (s *scanner) atEnd() bool {
	b, err := s.peek()
	return err != nil || b == '\r' || b == '\n'
}

// isAtomChar: ATOM-CHAR of RFC 9051 §9, plus ']' when astring.
func isAtomChar(b byte, astring bool) bool {
	switch {
	case b <= ' ' || b >= 0x7f:
		return false
	case strings.IndexByte(`(){%*"\`, b) >= 0:
		return false
	case b == ']':
		return astring
	}
	return true
}

// readAtom reads ATOM-CHARs (or ASTRING-CHARs), at least one.
func (s *scanner) readAtom(astring bool) (string, error) {
	var b strings.Builder
	for {
		c, err := s.peek()
		if err != nil {
			return "", err
		}
		if !isAtomChar(c, astring) {
			break
		}
		_, _ = s.next()
		b.WriteByte(c)
	}
	if b.Len() == 0 {
		return "", syntaxf("expected an atom")
	}
	return b.String(), nil
}

func (s *scanner) atom() (string, error) { return s.readAtom(false) }

// tag reads a command tag: ASTRING-CHARs except "+" (RFC 9051 §9).
func (s *scanner) tag() (string, error) {
	t, err := s.readAtom(true)
	if err == nil && strings.ContainsRune(t, '+') {
		return "", syntaxf("bad tag")
	}
	return t, err
}

// astring reads an atom, a quoted string or a literal.
func (s *scanner) astring() (string, error) {
	c, err := s.peek()
	if err != nil {
		return "", err
	}
	if c == '"' || c == '{' || c == '~' {
		return s.str()
	}
	return s.readAtom(true)
}

// str reads a quoted string or a literal.
func (s *scanner) str() (string, error) {
	c, err := s.peek()
	if err != nil {
		return "", err
	}
	switch c {
	case '"':
		return s.quoted()
	case '{', '~':
		return s.literal()
	}
	return "", syntaxf("expected a string")
}

// nstring reads NIL or a string.
func (s *scanner) nstring() (string, bool, error) {
	c, err := s.peek()
	if err != nil {
		return "", false, err
	}
	if c == 'N' || c == 'n' {
		a, err := s.atom()
		if err != nil || !strings.EqualFold(a, "NIL") {
			return "", false, syntaxf("expected NIL")
		}
		return "", true, nil
	}
	v, err := s.str()
	return v, false, err
}

// quoted reads a quoted string with \" and \\ escapes (RFC 9051 §4.3).
// Non-ASCII is allowed (UTF8=ACCEPT); CR, LF and NUL are not.
func (s *scanner) quoted() (string, error) {
	if err := s.expect('"'); err != nil {
		return "", err
	}
	var b strings.Builder
	for {
		c, err := s.next()
		if err != nil {
			return "", err
		}
		switch c {
		case '"':
			return b.String(), nil
		case '\\':
			if c, err = s.next(); err != nil {
				return "", err
			}
			if c != '"' && c != '\\' {
				return "", syntaxf("bad escape in quoted string")
			}
		case '\r', '\n', 0:
			return "", syntaxf("bad character in quoted string")
		}
		b.WriteByte(c)
	}
}

// literalHeader reads "{n}" or "{n+}" (and "~{n}" for literal8) with its
// CRLF, and sends the continuation for a synchronising literal.
func (s *scanner) literalHeader(max int64) (int64, error) {
	n, sync, err := s.literalSize()
	if err != nil {
		return 0, err
	}
	if n > max {
		if !sync {
			return n, &literalError{n: n}
		}
		return 0, errTooBig
	}
	if sync {
		if err := s.cont(); err != nil {
			return 0, err
		}
	}
	return n, nil
}

// literalSize reads "[~]{n[+|-]}" CRLF; sync is false for a
// non-synchronising literal (RFC 7888), whose octets follow at once.
func (s *scanner) literalSize() (n int64, sync bool, err error) {
	c, _ := s.peek()
	s.lit8 = c == '~'
	if s.lit8 {
		_, _ = s.next() // literal8 (RFC 3516): the same framing
	}
	if err := s.expect('{'); err != nil {
		return 0, false, err
	}
	if n, err = s.number64(); err != nil {
		return 0, false, err
	}
	sync = true
	if c, _ := s.peek(); c == '+' || c == '-' {
		_, _ = s.next()
		sync = false
	}
	if err := s.expect('}'); err != nil {
		return 0, false, err
	}
	return n, sync, s.crlf()
}

// literalError is a non-synchronising literal too big to take: its octets
// are on their way and must be skipped, or the connection closed.
type literalError struct{ n int64 }

func (e *literalError) Error() string { return "literal too big" }

// literal reads a whole literal into memory, within the command budget.
func (s *scanner) literal() (string, error) {
	n, err := s.literalHeader(int64(s.budget))
	if err != nil {
		return "", err
	}
	buf := make([]byte, n)
	if _, err := io.ReadFull(s.br, buf); err != nil {
		return "", err
	}
	s.budget -= int(n)
	for _, c := range buf {
		if c == 0 {
			return "", syntaxf("NUL in literal") // CVE-2019-11500 class
		}
	}
	return string(buf), nil
}

// number reads a 32-bit number (RFC 9051 §9 number).
func (s *scanner) number() (uint32, error) {
	n, err := s.number64()
	if err != nil || n > 1<<32-1 {
		return 0, syntaxf("bad number")
	}
	return uint32(n), nil
}

// number64 reads a 63-bit number (mod-sequence values, literal sizes).
func (s *scanner) number64() (int64, error) {
	var n int64
	digits := 0
	for {
		c, err := s.peek()
		if err != nil {
			return 0, err
		}
		if c < '0' || c > '9' {
			break
		}
		_, _ = s.next()
		d := int64(c - '0')
		if n > (math.MaxInt64-d)/10 { // RFC 9051 §9: up to 2^63-1
			return 0, syntaxf("number too large")
		}
		n = n*10 + d
		digits++
	}
	if digits == 0 {
		return 0, syntaxf("expected a number")
	}
	return n, nil
}

// list reads "(" item *(SP item) ")"; item is called at each item.
func (s *scanner) list(item func() error) error {
	if err := s.expect('('); err != nil {
		return err
	}
	if s.depth++; s.depth > maxDepth {
		return syntaxf("too many nested parentheses")
	}
	defer func() { s.depth-- }()
	if c, err := s.peek(); err == nil && c == ')' {
		_, _ = s.next()
		return nil
	}
	for {
		if err := item(); err != nil {
			return err
		}
		c, err := s.next()
		if err != nil {
			return err
		}
		if c == ')' {
			return nil
		}
		if c != ' ' {
			return syntaxf("expected SP or )")
		}
	}
}

// flag reads a flag: "\" atom or a keyword atom (RFC 9051 §9).
func (s *scanner) flag() (string, error) {
	c, err := s.peek()
	if err != nil {
		return "", err
	}
	if c == '\\' {
		_, _ = s.next()
		a, err := s.atom()
		return `\` + a, err
	}
	return s.atom()
}

func (s *scanner) flagList() ([]string, error) {
	var flags []string
	err := s.list(func() error {
		if len(flags) == maxMessageFlags {
			return syntaxf("more than %d flags", maxMessageFlags)
		}
		f, err := s.flag()
		if err == nil {
			err = storableFlag(f)
		}
		flags = append(flags, f)
		return err
	})
	return flags, err
}

// storableFlag refuses, in STORE and APPEND, what could not be kept (so
// that no flag is dropped behind an OK): a system flag other than the
// five of RFC 9051 §2.3.2 (\Recent cannot be set), and a keyword longer
// than maxKeyword.
func storableFlag(f string) error {
	if strings.HasPrefix(f, `\`) {
		for _, sys := range []string{`\Answered`, `\Flagged`, `\Deleted`, `\Seen`, `\Draft`} {
			if strings.EqualFold(f, sys) {
				return nil
			}
		}
		return syntaxf("%s cannot be stored", f)
	}
	if len(f) > maxKeyword {
		return syntaxf("keyword longer than %d octets", maxKeyword)
	}
	return nil
}

// maxKeyword is the longest keyword kept.
const maxKeyword = 128

// maxMessageFlags bounds the flags of one message, and so of one flag
// list: every SELECT lists the mailbox's keywords, and 50,000 of them
// made it send most of a megabyte and take seconds.
const maxMessageFlags = 128

// mailbox reads a mailbox name; INBOX in any case means INBOX. Names are
// modified UTF-7 (RFC 3501 §5.1.3) unless UTF-8 was enabled.
func (s *scanner) mailbox() (string, error) {
	n, err := s.astring()
	if err != nil {
		return "", err
	}
	if strings.EqualFold(n, "INBOX") {
		return "INBOX", nil
	}
	// Modified UTF-7 unless UTF-8 was enabled; a name already in UTF-8
	// (which mUTF-7 can never contain) is taken as it is.
	if !s.utf8 && isASCII(n) {
		if n, err = decodeUTF7(n); err != nil {
			return "", syntaxf("bad modified UTF-7 mailbox name")
		}
	} else if !utf8.ValidString(n) {
		return "", syntaxf("mailbox name is not UTF-8")
	}
	return strings.TrimSuffix(n, "/"), nil
}

// dateTime reads a quoted date-time: "dd-Mon-yyyy hh:mm:ss +zzzz".
func (s *scanner) dateTime() (time.Time, error) {
	q, err := s.quoted()
	if err != nil {
		return time.Time{}, err
	}
	t, err := time.Parse("_2-Jan-2006 15:04:05 -0700", q)
	if err != nil {
		return time.Time{}, syntaxf("bad date-time")
	}
	if y := t.UTC().Year(); y < 1900 || y > 2199 {
		// Four digits allow years 0000 to 9999; no mail was written in
		// most of them, and stores keep a narrower range.
		return time.Time{}, syntaxf("date-time out of range (1900-2199)")
	}
	return t, nil
}

// date reads a search date, quoted or not: "d-Mon-yyyy".
func (s *scanner) date() (time.Time, error) {
	var v string
	var err error
	if c, _ := s.peek(); c == '"' {
		v, err = s.quoted()
	} else {
		v, err = s.atom()
	}
	if err != nil {
		return time.Time{}, err
	}
	t, err := time.Parse("_2-Jan-2006", v)
	if err != nil {
		return time.Time{}, syntaxf("bad date")
	}
	return t, nil
}

// skipLine discards the rest of a refused command. A non-synchronising
// literal announced at the end of a line is skipped too, since its octets
// follow without waiting; one too large to skip makes the caller hang up.
func skipLine(br *bufio.Reader) error {
	skipped := 0
	for {
		line, err := br.ReadSlice('\n')
		skipped += len(line)
		for errors.Is(err, bufio.ErrBufferFull) && skipped <= maxSkip {
			line, err = br.ReadSlice('\n')
			skipped += len(line)
		}
		if skipped > maxSkip {
			// A line without end: under COMPRESS a few kilobytes of
			// input inflate to gigabytes of it, and skipping them all
			// costs CPU for nothing (Dovecot disconnects too).
			return errLineTooLong
		}
		if err != nil {
			return err
		}
		n, ok := trailingLiteral(line)
		if !ok {
			return nil
		}
		if n > maxCommand {
			return errTooBig
		}
		// Literals count too: a refused command of repeated {60000+}
		// literals was read for some 6 GB before its 1 MiB of lines.
		if skipped += int(n); skipped > maxSkip {
			return errLineTooLong
		}
		if _, err := br.Discard(int(n)); err != nil {
			return err
		}
	}
}

// trailingLiteral finds "{n+}\r\n" at the end of a line.
func trailingLiteral(line []byte) (int64, bool) {
	l := strings.TrimRight(string(line), "\r\n")
	if !strings.HasSuffix(l, "+}") && !strings.HasSuffix(l, "-}") {
		return 0, false
	}
	i := strings.LastIndexByte(l, '{')
	if i < 0 {
		return 0, false
	}
	n, err := strconv.ParseInt(l[i+1:len(l)-2], 10, 64)
	return n, err == nil && n >= 0
}

func isASCII(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] >= 0x80 {
			return false
		}
	}
	return true
}

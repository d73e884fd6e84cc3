package managesieve

import (
	"bytes"
	"errors"
	"fmt"
	"net"
	"strconv"
	"strings"
	"testing"
	"time"
)

// memConn is a net.Conn whose input is fixed and whose output is kept.
type memConn struct {
	in  *bytes.Reader
	out bytes.Buffer
}

func (m *memConn) Read(p []byte) (int, error)       { return m.in.Read(p) }
func (m *memConn) Write(p []byte) (int, error)      { return m.out.Write(p) }
func (m *memConn) Close() error                     { return nil }
func (m *memConn) LocalAddr() net.Addr              { return &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 4190} }
func (m *memConn) RemoteAddr() net.Addr             { return &net.TCPAddr{IP: net.IPv4(192, 0, 2, 1), Port: 5000} }
func (m *memConn) SetDeadline(time.Time) error      { return nil }
func (m *memConn) SetReadDeadline(time.Time) error  { return nil }
func (m *memConn) SetWriteDeadline(time.Time) error { return nil }

// FuzzSession feeds arbitrary client input to a whole session, once over
// plaintext with STARTTLS offered and once as if TLS were on (so
// AUTHENTICATE works; PLAIN takes any password). The session must end
// when the input does, never panic, open and close the scripts alike,
// change no script without AUTHENTICATE, and write only well-formed
// responses.
func FuzzSession(f *testing.F) {
	f.Add([]byte("AUTHENTICATE \"PLAIN\" \"AGEAYg==\"\r\nPUTSCRIPT \"a\" {6+}\r\nkeep;\n\r\nSETACTIVE \"a\"\r\nLISTSCRIPTS\r\nGETSCRIPT \"a\"\r\nLOGOUT\r\n"))
	f.Add([]byte("AUTHENTICATE \"PLAIN\"\r\n{8+}\r\nAGEAYg==\r\nCHECKSCRIPT \"bogus\"\r\nNOOP {3+}\r\na\r\n\r\n"))
	f.Add([]byte("CAPABILITY\r\nSTARTTLS\r\nCAPABILITY\r\n"))
	f.Fuzz(func(t *testing.T, in []byte) {
		for _, secure := range []bool{false, true} {
			out := fuzzRun(t, in, secure)
			if err := checkOutput(out); err != nil {
				t.Fatalf("%v\ninput %q\noutput %q", err, in, out)
			}
		}
	})
}

func fuzzRun(t *testing.T, in []byte, secure bool) []byte {
	b := newBackend()
	b.anyPassword = true
	b.scripts["old"] = "keep;"
	b.active = "old"
	s, err := New(Options{Hostname: "sieve.test", Backend: b, TLS: testTLS(), MaxErrors: 1000, MaxScriptSize: 4096})
	if err != nil {
		t.Fatal(err)
	}
	mc := &memConn{in: bytes.NewReader(in)}
	c := newConn(s, mc)
	c.secure = secure
	c.serve()
	if s.Panics() != 0 {
		t.Fatalf("panic on %q", in)
	}
	scripts, active, opens, closes := b.state()
	if opens != closes {
		t.Fatalf("%d stores opened, %d closed", opens, closes)
	}
	if opens == 0 && (len(scripts) != 1 || scripts["old"] != "keep;" || active != "old") {
		t.Fatalf("scripts changed without login: %q, active %q", scripts, active)
	}
	return mc.out.Bytes()
}

// checkOutput parses the server's side of a session (RFC 5804 §4): data
// lines of strings (capabilities, challenges, listings, a script) and
// responses OK, NO or BYE with an optional code and text. Nothing follows
// a BYE; after the OK to STARTTLS the rest is TLS and is not checked.
func checkOutput(out []byte) error {
	p := &outParser{b: out}
	if !bytes.HasPrefix(out, []byte(`"IMPLEMENTATION" "Posthorn"`+"\r\n")) {
		return errors.New("no greeting")
	}
	for p.i < len(p.b) {
		start := p.i
		status := p.status()
		if status == "" {
			if err := p.dataLine(); err != nil {
				return err
			}
			continue
		}
		if err := p.response(); err != nil {
			return err
		}
		switch line := string(p.b[start:p.i]); {
		case line == "OK \"Begin TLS negotiation now\"\r\n":
			return nil
		case status == "BYE" && p.i != len(p.b):
			return fmt.Errorf("%q after BYE", p.b[p.i:])
		}
	}
	return nil
}

type outParser struct {
	b []byte
	i int
}

func (p *outParser) rest() []byte { return p.b[p.i:] }

func (p *outParser) take(s string) bool {
	if bytes.HasPrefix(p.rest(), []byte(s)) {
		p.i += len(s)
		return true
	}
	return false
}

func (p *outParser) status() string {
	for _, s := range []string{"OK", "NO", "BYE"} {
		if r := p.rest(); bytes.HasPrefix(r, []byte(s)) && (len(r) == len(s) || r[len(s)] == ' ' || r[len(s)] == '\r') {
			return s
		}
	}
	return ""
}

// dataLine: string [SP (string / "ACTIVE")] CRLF.
func (p *outParser) dataLine() error {
	if err := p.str(); err != nil {
		return err
	}
	if p.take(" ") && !p.take("ACTIVE") {
		if err := p.str(); err != nil {
			return err
		}
	}
	return p.crlf()
}

// response: status [SP "(" code [SP string] ")"] [SP string] CRLF.
func (p *outParser) response() error {
	p.i += len(p.status())
	if p.take(" (") {
		j := p.i
		for p.i < len(p.b) && (p.b[p.i] >= 'A' && p.b[p.i] <= 'Z' || p.b[p.i] == '-' || p.b[p.i] == '/') {
			p.i++
		}
		code := string(p.b[j:p.i])
		if code == "" {
			return fmt.Errorf("empty response code at %q", p.rest())
		}
		if code == "TAG" || code == "SASL" {
			if !p.take(" ") {
				return fmt.Errorf("%s without string", code)
			}
			if err := p.str(); err != nil {
				return err
			}
		}
		if !p.take(")") {
			return fmt.Errorf("unterminated response code at %q", p.rest())
		}
	}
	if p.take(" ") {
		if err := p.str(); err != nil {
			return err
		}
	}
	return p.crlf()
}

func (p *outParser) crlf() error {
	if !p.take("\r\n") {
		return fmt.Errorf("no CRLF at %q", p.rest())
	}
	return nil
}

// str: a quoted string (no CR, LF or NUL, at most 1024 octets) or a
// literal-s2c "{N}" CRLF N octets.
func (p *outParser) str() error {
	switch {
	case p.take(`"`):
		n := 0
		for ; p.i < len(p.b); p.i++ {
			switch c := p.b[p.i]; {
			case c == '"':
				p.i++
				if n > maxQuoted {
					return errors.New("quoted string too long")
				}
				return nil
			case c == '\\':
				if p.i+1 >= len(p.b) || p.b[p.i+1] != '"' && p.b[p.i+1] != '\\' {
					return fmt.Errorf("bad escape at %q", p.rest())
				}
				p.i++
				n += 2
			case c == '\r' || c == '\n' || c == 0:
				return fmt.Errorf("control character in quoted string at %q", p.rest())
			default:
				n++
			}
		}
		return errors.New("unterminated quoted string")
	case p.take("{"):
		j := bytes.Index(p.rest(), []byte("}\r\n"))
		if j < 0 {
			return fmt.Errorf("bad literal at %q", p.rest())
		}
		n, err := strconv.Atoi(string(p.rest()[:j]))
		if err != nil || n < 0 || p.i+j+3+n > len(p.b) {
			return fmt.Errorf("bad literal length at %q", p.rest())
		}
		p.i += j + 3 + n
		return nil
	}
	return fmt.Errorf("no string at %q", p.rest())
}

// TestCheckOutput: the fuzz target's checker refuses what it should.
func TestCheckOutput(t *testing.T) {
	t.Parallel()
	greet := `"IMPLEMENTATION" "Posthorn"` + "\r\n"
	for _, tc := range []struct {
		out string
		ok  bool
	}{
		{greet + "OK \"ready\"\r\n\"a\" ACTIVE\r\n\"b\"\r\n{3}\r\nabc\r\nOK (TAG {2}\r\nab) \"Done\"\r\nNO (QUOTA/MAXSIZE) \"x\"\r\nBYE\r\n", true},
		{greet + "OK \"Begin TLS negotiation now\"\r\n\x16\x03garbage", true},
		{"OK\r\n", false},
		{greet + "OK \"Do\ne\"\r\n", false},
		{greet + "OK \"a\\b\"\r\n", false},
		{greet + "OK (TAG) \"x\"\r\n", false},
		{greet + "OK ( \"x\"\r\n", false},
		{greet + "NO {5}\r\nab\r\n", false},
		{greet + "BYE\r\nOK\r\n", false},
		{greet + "OK \"" + strings.Repeat("x", 1025) + "\"\r\n", false},
		{greet + "plain text\r\n", false},
		{greet + "OK", false},
	} {
		if err := checkOutput([]byte(tc.out)); (err == nil) != tc.ok {
			t.Errorf("checkOutput(%q) = %v, want ok %v", tc.out, err, tc.ok)
		}
	}
}

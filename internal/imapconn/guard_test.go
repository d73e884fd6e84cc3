package imapconn

import (
	"context"
	"crypto/tls"
	"io"
	"net"
	"strconv"
	"strings"
	"testing"
	"time"
)

// TestLiteralGuard: literals are skipped, not scanned (a line inside one
// that looks like an announcement counts for nothing), and a response
// whose literals and line add up to more than the limit fails the
// connection, however its announcement is padded.
func TestLiteralGuard(t *testing.T) {
	t.Parallel()
	inner := "x {999999}\r\n"
	for _, tc := range []struct {
		name, in string
		ok       bool
	}{
		{"small literal", "* 1 FETCH (BODY[] {5}\r\nhello)\r\n", true},
		{"announcement inside a literal", "* 1 FETCH (BODY[] {" + strconv.Itoa(len(inner)) + "}\r\n" + inner + ")\r\nA OK\r\n", true},
		{"one literal too big", "* 1 FETCH (ENVELOPE (NIL {3221225472}\r\nxxxx", false},
		{"literal8 too big", "* 1 FETCH (BINARY[] ~{200}\r\n", false},
		{"several adding up", "* 1 FETCH (ENVELOPE ({60}\r\n" + strings.Repeat("a", 60) + " {60}\r\n" + strings.Repeat("b", 60) + ")\r\n", false},
		{"the sum is per response", "* 1 FETCH (BODY[] {50}\r\n" + strings.Repeat("a", 50) + ")\r\n* 2 FETCH (BODY[] {50}\r\n" + strings.Repeat("b", 50) + ")\r\n", true},
		{"leading zeros", "* 1 FETCH (ENVELOPE (NIL {" + strings.Repeat("0", 40) + "3221225472}\r\nxxxx", false},
		{"an endless line", "* SEARCH" + strings.Repeat(" 1", 60) + "\r\n", false},
		{"many short lines", strings.Repeat("* 1 EXISTS\r\n", 100), true},
		// resp-text holds no literal: "{40}" there announces nothing, and
		// the real announcement after it must be seen.
		{"announcement hidden behind resp-text", "* OK foo {40}\r\n* 1 FETCH (ENVELOPE (\"d\" {100000000}\r\n" + strings.Repeat("x\r\n", 40), false},
		{"tagged resp-text", "A1 OK done {9999}\r\n" + strings.Repeat("* 1 EXISTS\r\n", 20), true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			for _, chunk := range []int{1, 7, 4096} {
				g := NewGuard(scriptConn(""), &chunked{r: strings.NewReader(tc.in), n: chunk}, 100)
				_, err := io.ReadAll(g)
				if (err == nil) != tc.ok {
					t.Errorf("chunks of %d: err %v, want ok=%v", chunk, err, tc.ok)
				}
			}
		})
	}
}

// TestLiteralGuardCountsUIDValidity: the UIDVALIDITY response codes in
// the text are counted, in any case and split across reads; those inside
// a literal (a message that quotes one) are not.
func TestLiteralGuardCountsUIDValidity(t *testing.T) {
	t.Parallel()
	in := "* OK [UIDVALIDITY 7] ok\r\n* 1 FETCH (BODY[] {23}\r\nx [UIDVALIDITY 8] quote)\r\n* ok [uidvalidity 9]\r\n"
	g := NewGuard(scriptConn(""), &chunked{r: strings.NewReader(in), n: 3}, 1000)
	if _, err := io.ReadAll(g); err != nil {
		t.Fatal(err)
	}
	if n := g.UIDValidityCodes(); n != 2 {
		t.Errorf("counted %d UIDVALIDITY codes, want 2", n)
	}
}

// chunked reads at most n octets at a time.
type chunked struct {
	r io.Reader
	n int
}

func (c *chunked) Read(p []byte) (int, error) { return c.r.Read(p[:min(len(p), c.n)]) }

// TestIMAPStartTLSRefusals: data the server sends after its STARTTLS OK
// and before the handshake is refused (it would be read as if under
// TLS), and so are a PREAUTH greeting and a refused STARTTLS.
func TestIMAPStartTLSRefusals(t *testing.T) {
	t.Parallel()
	for server, want := range map[string]string{
		"* OK hi\r\nP OK begin TLS\r\n* OK [CAPABILITY IMAP4rev1 AUTH=PLAIN] injected\r\n": "between its STARTTLS reply",
		"* PREAUTH hi\r\n":                                   "not * OK",
		"* OK hi\r\nP NO not here\r\n":                       "refused",
		"* OK hi\r\n* " + strings.Repeat("x", 5000) + "\r\n": "longer than 4096",
	} {
		_, err := StartTLS(context.Background(), scriptConn(server), &tls.Config{}, "mx.test:143", time.Second)
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("server %.40q: got %v, want an error with %q", server, err, want)
		}
	}
}

// scriptConn is a connection whose server side says server and takes
// whatever is written.
func scriptConn(server string) net.Conn {
	return &fakeConn{r: strings.NewReader(server)}
}

type fakeConn struct {
	net.Conn // nil: unused methods panic
	r        io.Reader
}

func (c *fakeConn) Read(p []byte) (int, error)  { return c.r.Read(p) }
func (c *fakeConn) Write(p []byte) (int, error) { return len(p), nil }
func (c *fakeConn) Close() error                { return nil }

// FuzzGuard: whatever a server sends, the guard passes it through
// unchanged up to the point where it fails, and fails any input holding
// a response line longer than its bound outside literals.
func FuzzGuard(f *testing.F) {
	for _, s := range []string{"* OK hi\r\n", "* 1 FETCH (BODY[] {5}\r\nhello)\r\n", "* OK x {40}\r\n* 1 EXISTS\r\n", "* 1 FETCH (X ~{0003}\r\nabc)\r\n", "A1 OK [UIDVALIDITY 3] x\r\n"} {
		f.Add([]byte(s), uint8(7))
	}
	f.Fuzz(func(t *testing.T, in []byte, chunk uint8) {
		const max = 64
		g := NewGuard(scriptConn(""), &chunked{r: strings.NewReader(string(in)), n: int(chunk%16) + 1}, max)
		out, err := io.ReadAll(g)
		if !strings.HasPrefix(string(in), string(out)) {
			t.Fatalf("passed %q of %q", out, in)
		}
		if err == nil && len(out) != len(in) {
			t.Fatalf("no error, but %d of %d octets passed", len(out), len(in))
		}
		if err == nil && !strings.Contains(string(in), "{") && !strings.Contains(string(in), "\n") && len(in) > max {
			t.Fatalf("a line of %d octets without an end or literal passed a bound of %d", len(in), max)
		}
	})
}

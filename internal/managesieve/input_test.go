package managesieve

import (
	"strings"
	"testing"
	"time"
)

// TestStartTLSInjection: plaintext pipelined behind STARTTLS is discarded
// (CVE-2011-0411); nothing answers it after the handshake.
func TestStartTLSInjection(t *testing.T) {
	t.Parallel()
	for _, injected := range []string{
		"CAPABILITY\r\n",
		`AUTHENTICATE "PLAIN" "` + plain("", testUser, testPass) + "\"\r\nLISTSCRIPTS\r\n",
	} {
		b := newBackend()
		_, addr := testServer(t, b, nil)
		c := dial(t, addr)
		c.send("STARTTLS\r\n" + injected)
		c.expect(`OK "Begin TLS negotiation now"`)
		c.handshake()
		if got := c.response(); strings.Join(got, "\n") != strings.Join(capsTLS, "\n") {
			t.Fatalf("after STARTTLS: %q", got)
		}
		c.silent(300 * time.Millisecond)
		c.cmd("LISTSCRIPTS", `NO "Command not valid in this state"`) // not logged in
		c.cmd("LOGOUT", `OK ...`)
		c.closed()
		if _, _, opens, _ := b.state(); opens != 0 {
			t.Errorf("injected login opened the scripts")
		}
	}
}

// TestStartTLSHandshakeFailure: garbage instead of a ClientHello closes.
func TestStartTLSHandshakeFailure(t *testing.T) {
	t.Parallel()
	_, addr := testServer(t, newBackend(), nil)
	c := dial(t, addr)
	c.cmd("STARTTLS", `OK "Begin TLS negotiation now"`)
	c.send("this is not TLS\r\n")
	_ = c.nc.SetReadDeadline(time.Now().Add(5 * time.Second))
	if _, err := c.br.ReadString('\n'); err == nil {
		t.Error("connection still open")
	}
}

// TestStrings: quoted strings with their escapes, literals of both kinds
// (RFC 5804 §4), pipelining and command names in any case.
func TestStrings(t *testing.T) {
	t.Parallel()
	b := newBackend()
	_, addr := testServer(t, b, func(o *Options) { o.MaxErrors = 100 })
	c := dial(t, addr)
	// A synchronizing literal gets no continuation: the server waits for
	// the octets without a word.
	c.send("NOOP {5}\r\n")
	c.silent(200 * time.Millisecond)
	c.send("hello\r\n")
	c.expect(`OK (TAG "hello") "Done"`)
	c.run(`
		C: noop "esc\"aped\\"
		S: OK (TAG "esc\"aped\\") "Done"
		C: NoOp ""
		S: OK (TAG "") "Done"
		C: NOOP   "many spaces"  
		S: OK (TAG "many spaces") "Done"
		C: NOOP "bad\escape"
		S: NO "Syntax error"
		C: NOOP "unterminated
		S: NO "Syntax error"
		C: NOOP "a"b
		S: NO "Syntax error"
		C: NOOP "a" "b"
		S: NO "Syntax error"
		C: NOOP atom
		S: NO "Syntax error"
		C: NOOP {5+}x
		S: NO "Syntax error"
		C: NOOP {}
		S: NO "Syntax error"
		C: NOOP {-1+}
		S: NO "Syntax error"`)
	// (A length past 32 bits is a literal too large to take: BYE, in
	// TestOversizeLiteral.)
	c.send("NOOP {0+}\r\n\r\n")
	c.expect(`OK (TAG "") "Done"`)
	// A tag that cannot be quoted is echoed as a literal.
	c.send("NOOP " + lit("a\r\nb") + "\r\n")
	if got := c.response(); strings.Join(got, "|") != "OK (TAG {4}|a\r\nb|) \"Done\"" {
		t.Errorf("literal tag echo: %q", got)
	}
	// Pipelined commands are answered in order.
	c.send("NOOP \"1\"\r\nNOOP \"2\"\r\nCAPABILITY\r\nNOOP \"3\"\r\n")
	c.expect(`OK (TAG "1") "Done"`)
	c.expect(`OK (TAG "2") "Done"`)
	if got := c.response(); got[len(got)-1] != `OK "Capability completed"` {
		t.Errorf("capability: %q", got)
	}
	c.expect(`OK (TAG "3") "Done"`)

	c.login()
	// Name and script both as literals, the script with bare LF, NUL
	// and a line that looks like a command.
	script := "keep;\nLOGOUT\r\n\x00\r\n"
	c.send("PUTSCRIPT " + lit("lit") + " " + lit(script) + "\r\n")
	c.expect(`OK "Putscript completed"`)
	c.send("PUTSCRIPT {5}\r\nempty {0}\r\n\r\n")
	c.expect(`OK "Putscript completed"`)
	c.send("RENAMESCRIPT " + lit("lit") + " x\r\n")
	c.expect(`NO "Syntax error"`)
	c.send("RENAMESCRIPT " + lit("lit") + lit("y") + "\r\n") // no SP between the two
	c.expect(`NO "Syntax error"`)
	c.send("GETSCRIPT \"lit\"\r\n")
	if got := c.response(); len(got) != 4 || got[1] != script || got[3] != `OK "Getscript completed"` {
		t.Errorf("GETSCRIPT: %q", got)
	}
	c.send("GETSCRIPT \"empty\"\r\n")
	if got := c.response(); strings.Join(got, "|") != `{0}|||OK "Getscript completed"` {
		t.Errorf("GETSCRIPT empty: %q", got)
	}
	if scripts, _, _, _ := b.state(); scripts["lit"] != script || scripts["empty"] != "" {
		t.Errorf("stored %q", scripts)
	}
}

// TestOversizeLiteral: a script literal over MaxScriptSize is answered
// NO (QUOTA/MAXSIZE) and discarded unread, content never run as
// commands; one past maxDiscard ends the session.
func TestOversizeLiteral(t *testing.T) {
	t.Parallel()
	b := newBackend()
	_, addr := testServer(t, b, func(o *Options) { o.MaxScriptSize = 100; o.MaxErrors = 100 })
	c := dial(t, addr)
	c.login()
	evil := strings.Repeat("LOGOUT\r\n", 19) // 152 octets of commands
	c.send(`PUTSCRIPT "x" ` + lit(evil) + "\r\n")
	c.expect(`NO (QUOTA/MAXSIZE) "Script too large"`)
	c.cmd("NOOP", `OK "Done"`)
	c.send("CHECKSCRIPT " + lit(evil) + "\r\nNOOP\r\n")
	c.expect(`NO (QUOTA/MAXSIZE) "Script too large"`)
	c.expect(`OK "Done"`)
	// The rest of the command after the refused literal ends in another
	// literal: skipped too.
	c.send(`PUTSCRIPT "x" ` + lit(evil) + " " + lit("LOGOUT") + "\r\n")
	c.expect(`NO (QUOTA/MAXSIZE) "Script too large"`)
	c.send("NOOP " + lit(strings.Repeat("LOGOUT\r\n", 130)) + "\r\n")
	c.expect(`NO "String too long"`)
	c.send(`PUTSCRIPT ` + lit(strings.Repeat("n", 513)) + ` "keep;"` + "\r\n")
	c.expect(`NO "String too long"`)
	c.send(`PUTSCRIPT "ok" ` + lit(strings.Repeat("#", 100)) + "\r\n")
	c.expect(`OK "Putscript completed"`)
	c.cmd("NOOP", `OK "Done"`)
	// Past maxDiscard (here minDiscard): no discarding, BYE.
	c.send(`PUTSCRIPT "x" {65537+}` + "\r\n")
	c.expect(`BYE (QUOTA/MAXSIZE) "Literal too large"`)
	c.closed()
	b.waitClosed(t, 1)
	if scripts, _, _, _ := b.state(); len(scripts) != 1 {
		t.Errorf("stored %q", scripts)
	}
	// A length past 32 bits is a literal too, too large to take: its
	// octets must not run as commands (they did).
	for _, n := range []string{"4294967296", "99999999999999999999999"} {
		c := dial(t, addr)
		c.login()
		c.send(`PUTSCRIPT "x" {` + n + "+}\r\n" + `PUTSCRIPT "injected" {5+}` + "\r\nkeep;\r\n")
		c.expect(`BYE (QUOTA/MAXSIZE) "Literal too large"`)
		c.closed()
	}
	if scripts, _, _, _ := b.state(); len(scripts) != 1 {
		t.Errorf("after the 33-bit literals: stored %q", scripts)
	}
}

// TestLongLine: a line over MaxLineLength is refused whole, literal
// included, and the session goes on.
func TestLongLine(t *testing.T) {
	t.Parallel()
	_, addr := testServer(t, newBackend(), func(o *Options) { o.MaxLineLength = 2200; o.MaxErrors = 100 })
	c := dial(t, addr)
	c.cmd(strings.Repeat("A", 2198), `NO "Unknown command"`) // 2200 with CRLF: allowed
	c.cmd(strings.Repeat("A", 2199), `NO "Line too long"`)
	c.cmd("NOOP \""+strings.Repeat("B", 20000)+"\"", `NO "Line too long"`)
	c.cmd("NOOP \""+strings.Repeat("C", 1100)+"\"", `NO "String too long"`)
	c.send("NOOP " + strings.Repeat("D", 3000) + " " + lit("LOGOUT\r\nNOOP") + "\r\n")
	c.expect(`NO "Line too long"`)
	c.cmd("NOOP", `OK "Done"`)
}

// TestBadLines: RFC 5804 §4 wants CRLF; bare LF, NUL and a CR inside the
// line are refused, literals after them skipped, and the session goes on.
func TestBadLines(t *testing.T) {
	t.Parallel()
	_, addr := testServer(t, newBackend(), func(o *Options) { o.MaxErrors = 100 })
	c := dial(t, addr)
	c.send("NOOP\n")
	c.expect(`NO "Lines must end with CRLF"`)
	c.send("\n")
	c.expect(`NO "Lines must end with CRLF"`)
	c.send("NO\x00OP\r\n")
	c.expect(`NO "Invalid characters in command"`)
	c.send("NOOP\rLOGOUT\r\n")
	c.expect(`NO "Invalid characters in command"`)
	c.send("PUTSCRIPT \"x\" {8+}\nLOGOUT\r\n\r\n")
	c.expect(`NO "Lines must end with CRLF"`)
	c.cmd("NOOP", `OK "Done"`)
	c.cmd("LOGOUT", `OK ...`)
	c.closed()
}

// TestGarbage: unknown commands are errors; MaxErrors of them end the
// session with BYE.
func TestGarbage(t *testing.T) {
	t.Parallel()
	_, addr := testServer(t, newBackend(), func(o *Options) { o.MaxErrors = 5 })
	c := dial(t, addr)
	c.run(`
		C: GET / HTTP/1.1
		S: NO "Unknown command"
		C: EHLO example.test
		S: NO "Unknown command"
		C:
		S: NO "Unknown command"
		C: a001 LOGIN user pass
		S: NO "Unknown command"
		C: listscripts
		S: NO "Command not valid in this state"
		S: BYE "Too many errors"`)
	c.closed()
}

// TestTimeout: a client that says nothing for CommandTimeout gets BYE,
// between commands, in a literal and in a SASL exchange alike.
func TestTimeout(t *testing.T) {
	t.Parallel()
	b := newBackend()
	logs := &logBuffer{}
	_, addr := testServer(t, b, func(o *Options) { o.CommandTimeout = 300 * time.Millisecond; o.Logger = logs.logger() })

	c := dial(t, addr)
	c.expect(`BYE "Disconnected for inactivity"`)
	c.closed()

	c = dial(t, addr)
	c.login()
	c.send(`PUTSCRIPT "x" {100+}` + "\r\nkeep;")
	c.expect(`BYE "Disconnected for inactivity"`)
	c.closed()
	b.waitClosed(t, 1)

	c = dial(t, addr)
	c.starttls()
	c.cmd(`AUTHENTICATE "PLAIN"`, `""`)
	c.expect(`BYE "Disconnected for inactivity"`)
	c.closed()
	if !strings.Contains(logs.String(), "managesieve autologout") {
		t.Errorf("no autologout in the log:\n%s", logs)
	}
}

// TestLineBoundaryRead: a command split over many small writes is
// assembled.
func TestLineBoundaryRead(t *testing.T) {
	t.Parallel()
	_, addr := testServer(t, newBackend(), nil)
	c := dial(t, addr)
	for _, part := range []string{"NO", "OP {", "3+", "}\r", "\nab", "c", "\r\n"} {
		c.send(part)
		time.Sleep(10 * time.Millisecond)
	}
	c.expect(`OK (TAG "abc") "Done"`)
}

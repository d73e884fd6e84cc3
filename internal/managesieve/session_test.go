package managesieve

import (
	"errors"
	"strings"
	"testing"
)

const (
	vacation = "require \"vacation\";\r\nvacation \"away\";\r\n"
	keep     = "keep;\r\n"
	broken   = "require \"fileinto\";\r\nkeep;\r\nbogus;\r\n"
)

// capsTLS is the capability response after STARTTLS.
var capsTLS = []string{
	`"IMPLEMENTATION" "Posthorn"`,
	`"SASL" "PLAIN SCRAM-SHA-256"`,
	`"SIEVE" "fileinto reject ereject envelope imap4flags copy subaddress body vacation variables relational mailbox"`,
	`"UNAUTHENTICATE"`,
	`"VERSION" "1.0"`,
	`OK "TLS negotiation successful"`,
}

// TestFullSession walks through every command in the order a client
// would use them.
func TestFullSession(t *testing.T) {
	t.Parallel()
	b := newBackend()
	_, addr := testServer(t, b, nil)
	c := dial(t, addr)
	c.run(`
		C: CAPABILITY
		S: "IMPLEMENTATION" "Posthorn"
		S: "SASL" ""
		S: "STARTTLS"
		S: "SIEVE" ...
		S: "UNAUTHENTICATE"
		S: "VERSION" "1.0"
		S: OK "Capability completed"
		C: NOOP
		S: OK "Done"`)
	if got := c.starttls(); strings.Join(got, "\n") != strings.Join(capsTLS, "\n") {
		t.Fatalf("capabilities after STARTTLS:\n%s", strings.Join(got, "\n"))
	}
	c.run(`
		C: AUTHENTICATE "PLAIN" "` + plain("", testUser, testPass) + `"
		S: OK "Logged in"
		C: CAPABILITY
		S: "IMPLEMENTATION" "Posthorn"
		S: "SASL" "PLAIN SCRAM-SHA-256"
		S: "SIEVE" ...
		S: "OWNER" "me@example.test"
		S: "UNAUTHENTICATE"
		S: "VERSION" "1.0"
		S: OK "Capability completed"
		C: LISTSCRIPTS
		S: OK "Listscripts completed"
		C: HAVESPACE "away" 44
		S: OK "Putscript would succeed"`)
	c.send(`PUTSCRIPT "away" ` + lit(vacation) + "\r\n")
	c.expect(`OK "Putscript completed"`)
	c.send(`PUTSCRIPT "plain" "keep;"` + "\r\n")
	c.expect(`OK "Putscript completed"`)
	c.run(`
		C: SETACTIVE "away"
		S: OK "Setactive completed"
		C: listscripts
		S: "away" ACTIVE
		S: "plain"
		S: OK "Listscripts completed"
		C: GETSCRIPT "away"
		S: {39}
		S: require "vacation";
		S: vacation "away";
		S:
		S: OK "Getscript completed"
		C: GETSCRIPT "plain"
		S: {5}
		S: keep;
		S: OK "Getscript completed"`)
	c.send("CHECKSCRIPT " + lit(keep) + "\r\n")
	c.expect(`OK "Script is valid"`)
	c.run(`
		C: RENAMESCRIPT "away" "holiday"
		S: OK "Renamescript completed"
		C: LISTSCRIPTS
		S: "holiday" ACTIVE
		S: "plain"
		S: OK ...
		C: DELETESCRIPT "plain"
		S: OK "Deletescript completed"
		C: SETACTIVE ""
		S: OK "Setactive completed"
		C: DELETESCRIPT "holiday"
		S: OK "Deletescript completed"
		C: LISTSCRIPTS
		S: OK "Listscripts completed"
		C: NOOP "STARTTLS-RESYNC-CAPA"
		S: OK (TAG "STARTTLS-RESYNC-CAPA") "Done"
		C: UNAUTHENTICATE
		S: OK "Unauthenticate completed"
		C: LISTSCRIPTS
		S: NO "Command not valid in this state"
		C: STARTTLS
		S: NO "TLS already active"
		C: CAPABILITY
		S: "IMPLEMENTATION" "Posthorn"
		S: "SASL" "PLAIN SCRAM-SHA-256"
		S: "SIEVE" ...
		S: "UNAUTHENTICATE"
		S: "VERSION" "1.0"
		S: OK "Capability completed"
		C: AUTHENTICATE "PLAIN" "` + plain("", testUser, testPass) + `"
		S: OK "Logged in"
		C: LOGOUT
		S: OK "Logout completed"`)
	c.closed()
	b.waitClosed(t, 2)
	if scripts, active, _, _ := b.state(); len(scripts) != 0 || active != "" {
		t.Errorf("left %v, active %q", scripts, active)
	}
}

// TestScriptErrors: every NO of the script commands, with its response
// code (RFC 5804 §1.3), and the session goes on after each.
func TestScriptErrors(t *testing.T) {
	t.Parallel()
	b := newBackend()
	b.scripts["active"] = keep
	b.scripts["other"] = keep
	b.active = "active"
	_, addr := testServer(t, b, func(o *Options) { o.MaxErrors = 100; o.MaxScriptSize = 1000 })
	c := dial(t, addr)
	c.login()
	c.send(`PUTSCRIPT "new" ` + lit(broken) + "\r\n")
	c.expect(`NO "line 3: unknown command \"bogus\""`)
	c.send("CHECKSCRIPT " + lit(broken) + "\r\n")
	c.expect(`NO "line 3: unknown command \"bogus\""`)
	c.run(`
		C: SETACTIVE "missing"
		S: NO (NONEXISTENT) "No such script"
		C: GETSCRIPT "missing"
		S: NO (NONEXISTENT) "No such script"
		C: DELETESCRIPT "missing"
		S: NO (NONEXISTENT) "No such script"
		C: RENAMESCRIPT "missing" "x"
		S: NO (NONEXISTENT) "No such script"
		C: DELETESCRIPT "active"
		S: NO (ACTIVE) "Script is active"
		C: SETACTIVE "active"
		S: OK "Setactive completed"
		C: RENAMESCRIPT "other" "active"
		S: NO (ALREADYEXISTS) "A script with that name exists"
		C: HAVESPACE "x" 1001
		S: NO (QUOTA/MAXSIZE) "Script too large"
		C: HAVESPACE "x" 4294967295
		S: NO (QUOTA/MAXSIZE) "Script too large"
		C: HAVESPACE "x" 4294967296
		S: NO "Syntax error"
		C: HAVESPACE "x" -1
		S: NO "Syntax error"
		C: HAVESPACE "x"
		S: NO "Syntax error"
		C: PUTSCRIPT "x"
		S: NO "Syntax error"
		C: PUTSCRIPT "x" keep;
		S: NO "Syntax error"
		C: GETSCRIPT "active" "other"
		S: NO "Syntax error"
		C: GETSCRIPT active
		S: NO "Syntax error"
		C: LISTSCRIPTS "x"
		S: NO "Syntax error"
		C: AUTHENTICATE "PLAIN"
		S: NO "Command not valid in this state"
		C: STARTTLS
		S: NO "Command not valid in this state"
		C: DELETESCRIPT "active"
		S: NO (ACTIVE) "Script is active"`)
	// Renaming the active script keeps it active.
	c.cmd(`RENAMESCRIPT "active" "renamed"`, `OK ...`)
	if _, active, _, _ := b.state(); active != "renamed" {
		t.Errorf("active %q after rename", active)
	}

	b.mu.Lock()
	b.maxScripts, b.quota = 2, 20
	b.mu.Unlock()
	c.run(`
		C: PUTSCRIPT "third" "keep;"
		S: NO (QUOTA/MAXSCRIPTS) "Too many scripts"
		C: HAVESPACE "third" 1
		S: NO (QUOTA/MAXSCRIPTS) "Too many scripts"
		C: HAVESPACE "other" 100
		S: NO (QUOTA) "Quota exceeded"
		C: PUTSCRIPT "other" "keep; keep; keep; keep;"
		S: NO (QUOTA) "Quota exceeded"
		C: HAVESPACE "other" 10
		S: OK ...`)

	// Backend failures: generic text, TRYLATER; details in the log only.
	for _, m := range []string{"List", "Get", "Check", "Put", "SetActive", "Delete", "Rename", "HaveSpace"} {
		b.mu.Lock()
		b.fail = map[string]error{m: errors.New("disk on fire")}
		b.mu.Unlock()
		cmd := map[string]string{"List": `LISTSCRIPTS`, "Get": `GETSCRIPT "other"`, "Check": `CHECKSCRIPT "keep;"`,
			"Put": `PUTSCRIPT "other" "keep;"`, "SetActive": `SETACTIVE "other"`, "Delete": `DELETESCRIPT "other"`,
			"Rename": `RENAMESCRIPT "other" "x"`, "HaveSpace": `HAVESPACE "other" 1`}[m]
		c.cmd(cmd, `NO (TRYLATER) "Temporary failure, try again later"`)
	}
	b.mu.Lock()
	b.fail = map[string]error{"Put": ErrTooLarge}
	b.mu.Unlock()
	c.cmd(`PUTSCRIPT "other" "keep;"`, `NO (QUOTA/MAXSIZE) "Script too large"`)
	c.cmd("LOGOUT", `OK "Logout completed"`)
	c.closed()
	b.waitClosed(t, 1)
}

// TestScriptNames: RFC 5804 §1.6 on the wire; validName has its own table.
func TestScriptNames(t *testing.T) {
	t.Parallel()
	b := newBackend()
	_, addr := testServer(t, b, func(o *Options) { o.MaxErrors = 100 })
	c := dial(t, addr)
	c.login()
	long := strings.Repeat("é", 129)
	c.run(`
		C: PUTSCRIPT "" "keep;"
		S: NO "script name is empty"
		C: GETSCRIPT ""
		S: NO "script name is empty"
		C: PUTSCRIPT "a` + "\x01" + `b" "keep;"
		S: NO "script name contains control characters"
		C: PUTSCRIPT "a` + "\u2028" + `b" "keep;"
		S: NO "script name contains control characters"
		C: PUTSCRIPT "a` + "\xff" + `" "keep;"
		S: NO "script name is not UTF-8"
		C: PUTSCRIPT "e` + "\u0301" + `" "keep;"
		S: NO "script name is not in Unicode normalization form C"
		C: PUTSCRIPT "` + long + `" "keep;"
		S: NO "script name too long"
		C: PUTSCRIPT "` + long[2:] + `" "keep;"
		S: OK ...
		C: PUTSCRIPT "quote\"back\\slash" "keep;"
		S: OK ...
		C: PUTSCRIPT "Grüße ✉" "keep;"
		S: OK ...
		C: LISTSCRIPTS
		S: "Grüße ✉"
		S: "quote\"back\\slash"
		S: "` + long[2:] + `"
		S: OK ...`)
	// A name in a literal, with a character that needs no quoting there.
	c.send("GETSCRIPT " + lit(`quote"back\slash`) + "\r\n")
	c.expect("{5}")
	c.expect("keep;")
	c.expect(`OK ...`)
}

func TestValidName(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name string
		ok   bool
	}{
		{"main", true},
		{"with space", true},
		{strings.Repeat("x", 128), true},
		{strings.Repeat("ü", 128), true},
		{strings.Repeat("x", 129), false},
		{"", false},
		{"tab\there", false},
		{"del\x7f", false},
		{"c1\u0085", false},
		{"ps\u2029", false},
		{"bad\xc3", false},
		{"A\u030a", false}, // NFD of Å
		{"\u00c5", true},
	} {
		if got := validName(tc.name, 128) == ""; got != tc.ok {
			t.Errorf("validName(%q) ok = %v, want %v", tc.name, got, tc.ok)
		}
	}
}

func TestCheckError(t *testing.T) {
	t.Parallel()
	if got := (&CheckError{Line: 3, Msg: "unexpected }"}).Error(); got != "line 3: unexpected }" {
		t.Errorf("got %q", got)
	}
	if got := (&CheckError{Msg: "script too large"}).Error(); got != "script too large" {
		t.Errorf("got %q", got)
	}
}

// TestCheckErrorFraming: error text that cannot be quoted goes as a
// literal, so it cannot end the response early.
func TestCheckErrorFraming(t *testing.T) {
	t.Parallel()
	b := newBackend()
	b.fail["Check"] = &CheckError{Line: 2, Msg: "bad\r\nOK \"fake\""}
	_, addr := testServer(t, b, nil)
	c := dial(t, addr)
	c.login()
	c.send("CHECKSCRIPT \"keep;\"\r\n")
	got := c.response()
	want := []string{"NO {22}", "line 2: bad\r\nOK \"fake\"", ""}
	if strings.Join(got, "|") != strings.Join(want, "|") {
		t.Fatalf("got %q, want %q", got, want)
	}
}

package fetch

import (
	"bufio"
	"bytes"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"slices"
	"strings"
	"testing"
	"time"
)

func TestPOP3FetchAndDelete(t *testing.T) {
	t.Parallel()
	p := newPOP3Peer(t)
	p.add("u1", testMessage("one"))
	p.add("u2", testMessage("two"))
	d := &memDeliverer{}
	f := newFetcher(t, p.source(), d, t.TempDir())
	st, err := once(t, f)
	if err != nil {
		t.Fatal(err)
	}
	if want := (Stats{Fetched: 2, Deleted: 2}); st != want {
		t.Errorf("stats %+v, want %+v", st, want)
	}
	if p.len() != 0 {
		t.Errorf("%d messages left on the server", p.len())
	}
	d.mu.Lock()
	msg := d.msgs[0].msg
	d.mu.Unlock()
	// Dot-stuffing undone: the body's "." and "..dot" lines are intact.
	if !bytes.HasSuffix(msg, []byte("\r\n.\r\n..dot\r\n")) {
		t.Errorf("message body damaged:\n%q", msg)
	}
	if id := IDOf(msg); id != "test/pop3/u1" {
		t.Errorf("fetch id %q", id)
	}
	if !strings.Contains(string(msg), "with POP3\r\n") {
		t.Errorf("Received field does not name POP3:\n%s", msg)
	}
	if st, err := once(t, f); err != nil || st != (Stats{}) {
		t.Errorf("second pass: %+v, %v", st, err)
	}
}

func TestPOP3Keep(t *testing.T) {
	t.Parallel()
	p := newPOP3Peer(t)
	p.add("u1", testMessage("one"))
	d := &memDeliverer{}
	src := p.source()
	src.Keep = true
	dir := t.TempDir()
	f := newFetcher(t, src, d, dir)
	if st, err := once(t, f); err != nil || st.Fetched != 1 {
		t.Fatalf("first pass: %+v, %v", st, err)
	}
	p.add("u/2", testMessage("two")) // escaped in the fetch id
	f.Close()
	f = newFetcher(t, src, d, dir)
	if st, err := once(t, f); err != nil || st.Fetched != 1 {
		t.Fatalf("second pass: %+v, %v", st, err)
	}
	if got := d.subjects(); !slices.Equal(got, []string{"one", "two"}) {
		t.Errorf("delivered %q", got)
	}
	d.mu.Lock()
	id := IDOf(d.msgs[1].msg)
	d.mu.Unlock()
	if id != "test/pop3/u%2F2" {
		t.Errorf("fetch id %q", id)
	}
	if p.len() != 2 {
		t.Errorf("%d messages on the server, want 2", p.len())
	}
}

// TestPOP3CrashMidSession: a delivery that fails after the message was
// stored (the fetcher never heard) ends the pass, committing only the
// deletion of what came before; the next session resumes it without a
// duplicate and deletes the rest.
func TestPOP3CrashMidSession(t *testing.T) {
	t.Parallel()
	p := newPOP3Peer(t)
	for _, s := range []string{"one", "two", "three"} {
		p.add("uidl-"+s, testMessage(s))
	}
	d := &memDeliverer{after: func(msg []byte) error {
		if header(msg).Get("Subject") == "two" {
			return errCrash
		}
		return nil
	}}
	dir := t.TempDir()
	f := newFetcher(t, p.source(), d, dir)
	if st, err := once(t, f); !errors.Is(err, errCrash) || st.Deleted != 1 || p.len() != 2 {
		t.Fatalf("first pass: %+v, %v, %d left on the server", st, err, p.len())
	}
	f.Close()
	d.after = nil
	f = newFetcher(t, p.source(), d, dir)
	st, err := once(t, f)
	if err != nil {
		t.Fatal(err)
	}
	if got := d.subjects(); !slices.Equal(got, []string{"one", "two", "three"}) {
		t.Errorf("delivered %q, want each once", got)
	}
	if st.Fetched != 2 || st.Deleted != 2 || p.len() != 0 {
		t.Errorf("second pass %+v, %d left on the server", st, p.len())
	}
}

func TestPOP3NeedsUIDL(t *testing.T) {
	t.Parallel()
	p := newPOP3Peer(t)
	p.noUIDL = true
	p.add("u1", testMessage("one"))
	f := newFetcher(t, p.source(), &memDeliverer{}, t.TempDir())
	if _, err := once(t, f); err == nil || !strings.Contains(err.Error(), "UIDL") {
		t.Errorf("got %v, want an error about UIDL", err)
	}
}

func TestPOP3TooBig(t *testing.T) {
	t.Parallel()
	p := newPOP3Peer(t)
	p.add("big", append(testMessage("big"), strings.Repeat("x\r\n", 1<<20)...))
	p.add("small", testMessage("small"))
	d := &memDeliverer{}
	f := newFetcher(t, p.source(), d, t.TempDir())
	st, err := once(t, f)
	if err != nil {
		t.Fatal(err)
	}
	if want := (Stats{Fetched: 1, Skipped: 1, Deleted: 1}); st != want {
		t.Errorf("stats %+v, want %+v", st, want)
	}
	if p.len() != 1 {
		t.Errorf("%d messages on the server, want the big one", p.len())
	}
}

// TestPOP3Client checks responses a server may send.
func TestPOP3Client(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name, server string
		wantErr      string
	}{
		{"good", "+OK hi\r\n+OK\r\n1 a\r\n2 b\r\n.\r\n+OK\r\n1 10\r\n2 20\r\n.\r\n", ""},
		{"bare LF", "+OK hi\n+OK\n1 a\n.\n+OK\n1 10\n.\n", ""},
		{"no UIDL", "+OK hi\r\n-ERR unknown command\r\n", "UIDL"},
		{"garbage status", "+OK hi\r\nHELLO\r\n", "malformed"},
		{"bad UIDL line", "+OK hi\r\n+OK\r\nx y\r\n.\r\n", "malformed"},
		{"UIDL too long", "+OK hi\r\n+OK\r\n1 " + strings.Repeat("a", 71) + "\r\n.\r\n", "malformed"},
		{"huge line", "+OK hi\r\n+OK\r\n1 " + strings.Repeat("a", 5000) + "\r\n.\r\n", "longer"},
		{"cut off", "+OK hi\r\n+OK\r\n1 a\r\n", "EOF"},
		// An endless LIST held the pass for ever (no read ever timed out).
		{"LIST longer than UIDL", "+OK hi\r\n+OK\r\n1 a\r\n.\r\n+OK\r\n1 10\r\n" + strings.Repeat("999 1\r\n", 50) + ".\r\n", "more lines than UIDL"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := newPOP3Client(scriptConn(tc.server))
			err := c.greeting()
			if err == nil {
				_, err = c.list()
			}
			if tc.wantErr == "" && err != nil || tc.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tc.wantErr)) {
				t.Errorf("got %v, want %q", err, tc.wantErr)
			}
		})
	}
}

// TestPOP3CapaBounded: an endless CAPA grew the client by 50 MB a second.
func TestPOP3CapaBounded(t *testing.T) {
	t.Parallel()
	var b strings.Builder
	b.WriteString("+OK\r\n")
	for i := range pop3MaxCapa + 1 {
		fmt.Fprintf(&b, "X-CAP-%d\r\n", i)
	}
	b.WriteString(".\r\n")
	if _, err := newPOP3Client(scriptConn(b.String())).capa(); err == nil || !strings.Contains(err.Error(), "more than") {
		t.Errorf("capa of %d lines: %v, want an error", pop3MaxCapa+1, err)
	}
	caps, err := newPOP3Client(scriptConn("+OK\r\nUIDL\r\nSTLS\r\n.\r\n")).capa()
	if err != nil || !caps["UIDL"] || !caps["STLS"] {
		t.Errorf("capa = %v, %v", caps, err)
	}
}

func TestPOP3Retr(t *testing.T) {
	t.Parallel()
	c := newPOP3Client(scriptConn("+OK\r\nSubject: x\r\n\r\n..a\r\n.\r\n"))
	msg, err := c.retr(1, 100)
	if err != nil || string(msg) != "Subject: x\r\n\r\n.a\r\n" {
		t.Errorf("retr = %q, %v", msg, err)
	}
	c = newPOP3Client(scriptConn("+OK\r\n" + strings.Repeat("0123456789\r\n", 20) + ".\r\n"))
	if _, err := c.retr(1, 100); !errors.Is(err, errTooBig) {
		t.Errorf("retr past the limit: %v", err)
	}
}

// TestPOP3UnusableUIDLs: two messages sharing a UIDL, and a UIDL of
// octets RFC 1939 §7 forbids, are neither fetched nor deleted (the
// second of a pair used to look fetched and be deleted unread; a UIDL
// that is not text did not survive the state file and was fetched again
// on every pass); the others are fetched, and the pass says why some
// stayed.
func TestPOP3UnusableUIDLs(t *testing.T) {
	t.Parallel()
	p := newPOP3Peer(t)
	p.add("dup", testMessage("first of a pair"))
	p.add("ok", testMessage("fine"))
	p.add("dup", testMessage("second of a pair"))
	p.add("a\xff\x01", testMessage("binary uidl"))
	d := &memDeliverer{}
	f := newFetcher(t, p.source(), d, t.TempDir())
	for pass := range 2 {
		st, err := once(t, f)
		if err == nil || !strings.Contains(err.Error(), "3 messages left on the server") {
			t.Errorf("pass %d: err %v, want one about 3 messages left", pass, err)
		}
		if want := (Stats{Fetched: 1 - pass, Deleted: 1 - pass}); st != want {
			t.Errorf("pass %d: stats %+v, want %+v", pass, st, want)
		}
	}
	if got := d.subjects(); !slices.Equal(got, []string{"fine"}) {
		t.Errorf("delivered %q, want only the message with a usable UIDL", got)
	}
	if p.len() != 3 {
		t.Errorf("%d messages left on the server, want 3", p.len())
	}
}

// TestPOP3STLSInjection: octets a server (or a man in the middle) sends
// after its +OK to STLS and before the handshake would be read as said
// under TLS (CVE-2011-0411's family). Sent in the same segment as the
// +OK, they fail the pass before the handshake, and no password is sent.
func TestPOP3STLSInjection(t *testing.T) {
	t.Parallel()
	conf, der := selfSigned(t)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	heard := make(chan string, 1)
	go func() {
		c, err := ln.Accept()
		if err != nil {
			return
		}
		defer c.Close()
		c.SetDeadline(time.Now().Add(10 * time.Second))
		br := bufio.NewReader(c)
		var got strings.Builder
		defer func() { heard <- got.String() }()
		io.WriteString(c, "+OK ready\r\n")
		for {
			l, err := br.ReadString('\n')
			if err != nil {
				return
			}
			got.WriteString(l)
			switch strings.ToUpper(strings.TrimSpace(l)) {
			case "CAPA":
				io.WriteString(c, "+OK\r\nSTLS\r\nUIDL\r\nUSER\r\n.\r\n")
			case "STLS":
				io.WriteString(c, "+OK begin TLS\r\n+OK injected: no password needed\r\n+OK\r\n.\r\n")
				tc := tls.Server(c, conf)
				if tc.Handshake() != nil {
					return
				}
				tb := bufio.NewReader(tc)
				for {
					l, err := tb.ReadString('\n')
					if err != nil {
						return
					}
					got.WriteString("TLS " + l)
					io.WriteString(tc, "-ERR no\r\n")
				}
			default:
				io.WriteString(c, "-ERR no\r\n")
			}
		}
	}()
	src := newPOP3Peer(t).source()
	host, port, _ := net.SplitHostPort(ln.Addr().String())
	src.Host = host
	fmt.Sscan(port, &src.Port)
	src.TLS, src.Insecure, src.Fingerprint = TLSStart, false, Fingerprint(der)
	_, err = once(t, newFetcher(t, src, &memDeliverer{}, t.TempDir()))
	if err == nil || !strings.Contains(err.Error(), "before the TLS handshake") {
		t.Errorf("pass: %v, want the injection refused", err)
	}
	ln.Close()
	if got := <-heard; strings.Contains(got, "PASS") || strings.Contains(got, "USER") || strings.Contains(got, "TLS ") {
		t.Errorf("the client went on after the injection; the server heard %q", got)
	}
}

// TestPOP3EmptyRETRIsNoMessage: a RETR with no content for a message
// LIST gave a size fails the pass; delivering it recorded the message as
// fetched (and deleted it on the server) while its content was lost.
func TestPOP3EmptyRETRIsNoMessage(t *testing.T) {
	t.Parallel()
	p := newPOP3Peer(t)
	p.add("u1", testMessage("one"))
	p.empty.Store(true)
	d := &memDeliverer{}
	f := newFetcher(t, p.source(), d, t.TempDir())
	if st, err := once(t, f); err == nil || st.Fetched != 0 || d.count() != 0 || p.len() != 1 {
		t.Fatalf("empty RETR: stats %+v, err %v, %d delivered, %d left; want an error, nothing delivered, 1 left", st, err, d.count(), p.len())
	}
	p.empty.Store(false)
	if st, err := once(t, f); err != nil || st.Fetched != 1 {
		t.Fatalf("after recovery: %+v, %v", st, err)
	}
	if got := d.subjects(); !slices.Equal(got, []string{"one"}) {
		t.Errorf("delivered %q", got)
	}
	// One that stays empty is left on the server after a few passes.
	p.add("u2", testMessage("stuck"))
	p.empty.Store(true)
	for range maxUnreadPasses - 1 {
		if _, err := once(t, f); err == nil {
			t.Fatal("a pass with an empty RETR succeeded")
		}
	}
	if st, err := once(t, f); err != nil || st.Skipped != 1 || p.len() != 1 {
		t.Fatalf("pass %d: %+v, %v, %d left; want it skipped and left", maxUnreadPasses, st, err, p.len())
	}
}

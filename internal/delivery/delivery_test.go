package delivery_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"posthorn/internal/delivery"
	"posthorn/internal/message"
	"posthorn/internal/smtp"
	"posthorn/internal/store/local"
	"posthorn/internal/users"
)

var testNow = time.Date(2025, 1, 2, 3, 4, 5, 0, time.UTC)

// fixture is a Router over the real embedded store, holding example.test
// with accounts me and you; info is an alias of me, fwd forwards to
// another domain, and loop0 starts an alias chain too deep to follow.
type fixture struct {
	st     *local.Store
	data   string // the store's data directory
	temp   string // Options.TempDir
	router *delivery.Router
}

func newFixture(t *testing.T, opt func(*delivery.Options)) *fixture {
	t.Helper()
	ctx := context.Background()
	f := &fixture{data: t.TempDir(), temp: filepath.Join(t.TempDir(), "incoming")}
	st, err := local.Open(local.Options{Dir: f.data, Hostname: "mx.test"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	f.st = st
	us, err := users.New(users.Options{Directory: st, SubaddressSeparator: "+"})
	if err != nil {
		t.Fatal(err)
	}
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	_, err = us.AddDomain(ctx, "example.test")
	must(err)
	for _, a := range []string{"me@example.test", "you@example.test"} {
		must(st.AddAccount(ctx, users.Account{Address: a, PasswordHash: "x", Created: testNow}))
	}
	must(st.AddAlias(ctx, "info@example.test", "me@example.test"))
	must(st.AddAlias(ctx, "fwd@example.test", "someone@remote.test"))
	for i := range 12 {
		must(st.AddAlias(ctx, fmt.Sprintf("loop%d@example.test", i), fmt.Sprintf("loop%d@example.test", i+1)))
	}
	must(st.AddAlias(ctx, "loop12@example.test", "me@example.test"))

	opts := delivery.Options{
		Hostname: "mx.test",
		Users:    us,
		Store:    st,
		TempDir:  f.temp,
		Now:      func() time.Time { return testNow },
	}
	if opt != nil {
		opt(&opts)
	}
	if f.router, err = delivery.New(opts); err != nil {
		t.Fatal(err)
	}
	return f
}

// session opens a session as for a client that said EHLO client.remote.test.
func (f *fixture) session(t *testing.T) smtp.Session {
	t.Helper()
	s, err := f.router.NewSession(context.Background(), &smtp.ConnInfo{
		ID:       "c1",
		Service:  "smtp",
		Local:    netip.MustParseAddrPort("203.0.113.1:25"),
		Remote:   netip.MustParseAddrPort("192.0.2.7:40000"),
		HELO:     "client.remote.test",
		ESMTP:    true,
		Hostname: "mx.test",
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Close)
	return s
}

// send runs MAIL, the RCPTs (each must be accepted) and DATA.
func (f *fixture) send(t *testing.T, from string, rcpts []string, r io.Reader) (string, error) {
	t.Helper()
	ctx := context.Background()
	s := f.session(t)
	if err := s.Mail(ctx, path(t, from), smtp.MailOptions{}); err != nil {
		t.Fatalf("MAIL FROM:%s: %v", from, err)
	}
	for _, rc := range rcpts {
		if err := s.Rcpt(ctx, path(t, rc), smtp.RcptOptions{}); err != nil {
			t.Fatalf("RCPT TO:%s: %v", rc, err)
		}
	}
	return s.Data(ctx, r)
}

// copies returns the messages in an account's INBOX, read from its Maildir,
// and checks the index agrees on their number.
func (f *fixture) copies(t *testing.T, local string) []string {
	t.Helper()
	dir := filepath.Join(f.data, "mail", "example.test", local)
	var out []string
	for _, sub := range []string{"new", "cur"} {
		ents, err := os.ReadDir(filepath.Join(dir, sub))
		if err != nil {
			t.Fatal(err)
		}
		for _, e := range ents {
			b, err := os.ReadFile(filepath.Join(dir, sub, e.Name()))
			if err != nil {
				t.Fatal(err)
			}
			out = append(out, string(b))
		}
	}
	msgs, err := f.st.Messages(context.Background(), local+"@example.test", "INBOX")
	if err != nil {
		t.Fatal(err)
	}
	if len(msgs) != len(out) {
		t.Errorf("%s: %d files in the Maildir but %d in the index", local, len(out), len(msgs))
	}
	return out
}

// checkNothingLeft checks that no account got a copy and that no staged
// file stayed behind in TempDir.
func (f *fixture) checkNothingLeft(t *testing.T) {
	t.Helper()
	for _, l := range []string{"me", "you"} {
		if c := f.copies(t, l); len(c) != 0 {
			t.Errorf("%s got %d copies, want none: %q", l, len(c), c)
		}
	}
	f.checkTempEmpty(t)
}

// checkTempEmpty checks that no staged file stayed behind in TempDir.
func (f *fixture) checkTempEmpty(t *testing.T) {
	t.Helper()
	ents, err := os.ReadDir(f.temp)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range ents {
		t.Errorf("left in TempDir: %s", e.Name())
	}
}

func path(t *testing.T, s string) smtp.Path {
	t.Helper()
	p, rest, err := smtp.ParsePath(s, smtp.PathOptions{AllowNull: true})
	if err != nil || rest != "" {
		t.Fatalf("ParsePath(%q) = %+v, %q, %v", s, p, rest, err)
	}
	return p
}

// crlf joins lines into a message with CRLF line ends, as Data receives it.
func crlf(lines ...string) string { return strings.Join(lines, "\r\n") + "\r\n" }

// wantReply checks that err is an *smtp.Error with the code and enhanced
// code; code 0 means err must be nil.
func wantReply(t *testing.T, what string, err error, code int, enhanced string) {
	t.Helper()
	if code == 0 {
		if err != nil {
			t.Errorf("%s: %v, want success", what, err)
		}
		return
	}
	var se *smtp.Error
	if !errors.As(err, &se) {
		t.Errorf("%s: %v (%T), want %d %s", what, err, err, code, enhanced)
		return
	}
	if se.Code != code || se.Enhanced != enhanced {
		t.Errorf("%s: %d %s (%v), want %d %s", what, se.Code, se.Enhanced, se, code, enhanced)
	}
}

func TestNewValidates(t *testing.T) {
	t.Parallel()
	f := newFixture(t, nil)
	us, err := users.New(users.Options{Directory: f.st})
	if err != nil {
		t.Fatal(err)
	}
	good := delivery.Options{Hostname: "mx.test", Users: us, Store: f.st, TempDir: t.TempDir()}
	tests := []struct {
		name   string
		mutate func(*delivery.Options)
	}{
		{"no users", func(o *delivery.Options) { o.Users = nil }},
		{"no store", func(o *delivery.Options) { o.Store = nil }},
		{"no hostname", func(o *delivery.Options) { o.Hostname = "" }},
		{"no temp dir", func(o *delivery.Options) { o.TempDir = "" }},
	}
	if _, err := delivery.New(good); err != nil {
		t.Fatalf("New(good options): %v", err)
	}
	for _, tc := range tests {
		o := good
		tc.mutate(&o)
		if r, err := delivery.New(o); err == nil {
			t.Errorf("%s: New = %v, want an error", tc.name, r)
		}
	}
}

func TestRcpt(t *testing.T) {
	t.Parallel()
	f := newFixture(t, nil)
	tests := []struct {
		name     string
		rcpt     string
		code     int // 0: accepted
		enhanced string
	}{
		{"account", "<me@example.test>", 0, ""},
		{"upper case", "<ME@Example.TEST>", 0, ""},
		{"sub-address", "<me+tag@example.test>", 0, ""},
		{"alias", "<info@example.test>", 0, ""},
		{"relay", "<someone@remote.test>", 554, "5.7.1"},
		{"relay to a sub-domain", "<me@sub.example.test>", 554, "5.7.1"},
		{"source route to a foreign domain", "<@example.test:someone@remote.test>", 554, "5.7.1"},
		{"IPv4 literal", "<me@[192.0.2.1]>", 554, "5.7.1"},
		{"IPv6 literal", "<me@[IPv6:2001:db8::1]>", 554, "5.7.1"},
		{"unknown user", "<nobody@example.test>", 550, "5.1.1"},
		{"percent hack", "<me%other.test@example.test>", 550, "5.1.1"},
		{"percent hack to ourselves", "<me%example.test@example.test>", 550, "5.1.1"},
		{"bang path", "<other.test!me@example.test>", 550, "5.1.1"},
		{"quoted at", `<"me@other.test"@example.test>`, 550, "5.1.1"},
		{"alias to another domain", "<fwd@example.test>", 451, "4.3.0"},
		{"alias loop", "<loop0@example.test>", 550, "5.4.6"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			ctx := context.Background()
			s := f.session(t)
			if err := s.Mail(ctx, path(t, "<sender@remote.test>"), smtp.MailOptions{}); err != nil {
				t.Fatal(err)
			}
			wantReply(t, "RCPT TO:"+tc.rcpt, s.Rcpt(ctx, path(t, tc.rcpt), smtp.RcptOptions{}), tc.code, tc.enhanced)
		})
	}
}

// TestRcptRefusedAreNotDelivered: a refused RCPT does not end the
// transaction (RFC 5321 §4.1.1.3), and gets no copy.
func TestRcptRefusedAreNotDelivered(t *testing.T) {
	t.Parallel()
	f := newFixture(t, nil)
	ctx := context.Background()
	s := f.session(t)
	if err := s.Mail(ctx, path(t, "<sender@remote.test>"), smtp.MailOptions{}); err != nil {
		t.Fatal(err)
	}
	for _, rc := range []string{"<someone@remote.test>", "<nobody@example.test>", "<fwd@example.test>", "<me@example.test>"} {
		_ = s.Rcpt(ctx, path(t, rc), smtp.RcptOptions{})
	}
	if _, err := s.Data(ctx, strings.NewReader(crlf("Subject: hi", "", "body"))); err != nil {
		t.Fatal(err)
	}
	if n := len(f.copies(t, "me")); n != 1 {
		t.Errorf("me got %d copies, want 1", n)
	}
	if n := len(f.copies(t, "you")); n != 0 {
		t.Errorf("you got %d copies, want 0", n)
	}
}

func TestDataDelivers(t *testing.T) {
	t.Parallel()
	msg := crlf(
		"Return-Path: <forged@evil.test>",
		"Subject: hi",
		"RETURN-PATH:",
		" <folded-forgery@evil.test>",
		"Message-ID: <1@remote.test>",
		"",
		"Hello,",
		"Return-Path: <in-the-body@remote.test>",
		"bye")
	// What follows our trace fields: the message, without its Return-Path
	// fields, with LF line ends. A Return-Path line in the body stays.
	rest := "Subject: hi\nMessage-ID: <1@remote.test>\n\nHello,\nReturn-Path: <in-the-body@remote.test>\nbye\n"
	tests := []struct {
		name       string
		from, rcpt string
		returnPath string
		forRcpt    string
	}{
		{"plain", "<sender@remote.test>", "<me@example.test>", "<sender@remote.test>", "<me@example.test>"},
		{"null sender", "<>", "<me@example.test>", "<>", "<me@example.test>"},
		{"sub-address", "<sender@remote.test>", "<Me+Tag@Example.TEST>", "<sender@remote.test>", "<Me+Tag@example.test>"},
		{"alias", "<sender@remote.test>", "<info@example.test>", "<sender@remote.test>", "<info@example.test>"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			f := newFixture(t, nil)
			id, err := f.send(t, tc.from, []string{tc.rcpt}, strings.NewReader(msg))
			if err != nil {
				t.Fatalf("Data: %v", err)
			}
			if id == "" {
				t.Error("Data returned an empty id")
			}
			got := f.copies(t, "me")
			if len(got) != 1 {
				t.Fatalf("me got %d copies, want 1", len(got))
			}
			file := got[0]
			if strings.Contains(file, "\r") {
				t.Errorf("file has CR characters: %q", file)
			}
			lines := strings.Split(file, "\n")
			if want := "Return-Path: " + tc.returnPath; lines[0] != want {
				t.Errorf("line 1 = %q, want %q", lines[0], want)
			}
			if want := "Delivered-To: me@example.test"; lines[1] != want {
				t.Errorf("line 2 = %q, want %q", lines[1], want)
			}
			// The Received field runs from line 3 to the next unfolded line.
			end := 3
			for end < len(lines) && strings.HasPrefix(lines[end], "\t") {
				end++
			}
			received := strings.Join(lines[2:end], "\n")
			for _, want := range []string{
				"Received: from client.remote.test ([192.0.2.7])\n",
				"by mx.test ",
				"with ESMTP id " + id + "\n",
				"\tfor " + tc.forRcpt + ";\n",
				"\t" + testNow.Format(message.DateLayout),
			} {
				if !strings.Contains(received, want) {
					t.Errorf("Received field %q lacks %q", received, want)
				}
			}
			if tail := strings.Join(lines[end:], "\n"); tail != rest {
				t.Errorf("after the trace fields:\n%q\nwant\n%q", tail, rest)
			}
			if strings.Contains(file, "forge") {
				t.Errorf("the message's own Return-Path survived: %q", file)
			}
			if n := len(f.copies(t, "you")); n != 0 {
				t.Errorf("you got %d copies, want 0", n)
			}
			f.checkTempEmpty(t)
		})
	}
}

func TestDataOneCopyPerAccount(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		rcpts   []string
		me, you int
	}{
		{"one account", []string{"<me@example.test>"}, 1, 0},
		{"account and its alias", []string{"<me@example.test>", "<info@example.test>"}, 1, 0},
		{"account and its sub-address", []string{"<me@example.test>", "<me+x@example.test>", "<ME@example.test>"}, 1, 0},
		{"two accounts", []string{"<me@example.test>", "<you@example.test>"}, 1, 1},
		{"two accounts and an alias", []string{"<info@example.test>", "<you@example.test>", "<me@example.test>"}, 1, 1},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			f := newFixture(t, nil)
			if _, err := f.send(t, "<sender@remote.test>", tc.rcpts, strings.NewReader(crlf("Subject: hi", "", "body"))); err != nil {
				t.Fatalf("Data: %v", err)
			}
			me, you := f.copies(t, "me"), f.copies(t, "you")
			if len(me) != tc.me || len(you) != tc.you {
				t.Errorf("copies: me %d, you %d; want %d, %d", len(me), len(you), tc.me, tc.you)
			}
			for _, c := range you {
				if !strings.Contains(c, "Delivered-To: you@example.test\n") || !strings.Contains(c, "for <you@example.test>") {
					t.Errorf("you's copy has the wrong trace fields:\n%s", c)
				}
			}
		})
	}
}

func TestDataHeaderChecks(t *testing.T) {
	t.Parallel()
	received := func(n int) []string {
		var h []string
		for i := range n {
			h = append(h, fmt.Sprintf("Received: from hop%d.test by hop%d.test; Thu, 2 Jan 2025 00:00:00 +0000", i, i+1))
		}
		return h
	}
	fields := func(n int) []string {
		var h []string
		for i := range n {
			h = append(h, fmt.Sprintf("X-Field-%d: v", i))
		}
		return h
	}
	withBody := func(h []string) string { return crlf(append(h, "", "body")...) }
	long := "Subject: " + strings.Repeat("x", 300)
	tests := []struct {
		name     string
		opts     func(*delivery.Options)
		rcpt     string
		msg      string
		code     int // 0: delivered
		enhanced string
	}{
		{name: "hops at the limit", opts: func(o *delivery.Options) { o.MaxReceived = 3 },
			msg: withBody(received(3))},
		{name: "too many hops", opts: func(o *delivery.Options) { o.MaxReceived = 3 },
			msg: withBody(received(4)), code: 554, enhanced: "5.4.6"},
		{name: "too many hops, default limit", msg: withBody(received(51)), code: 554, enhanced: "5.4.6"},
		{name: "Delivered-To us", msg: withBody([]string{"Delivered-To: me@example.test", "Subject: hi"}),
			code: 554, enhanced: "5.4.6"},
		{name: "Delivered-To us in other case", msg: withBody([]string{"Subject: hi", "delivered-to:  ME@Example.TEST "}),
			code: 554, enhanced: "5.4.6"},
		{name: "Delivered-To us through an alias", rcpt: "<info@example.test>",
			msg: withBody([]string{"Delivered-To: me@example.test"}), code: 554, enhanced: "5.4.6"},
		{name: "Delivered-To someone else", msg: withBody([]string{"Delivered-To: you@example.test"})},
		{name: "header under the byte limit", opts: func(o *delivery.Options) { o.MaxHeaderBytes = 1024 },
			msg: withBody([]string{long})},
		{name: "header over the byte limit", opts: func(o *delivery.Options) { o.MaxHeaderBytes = 256 },
			msg: withBody([]string{long}), code: 552, enhanced: "5.3.4"},
		{name: "header over the byte limit without body", opts: func(o *delivery.Options) { o.MaxHeaderBytes = 256 },
			msg: crlf("Subject: hi", long), code: 552, enhanced: "5.3.4"},
		{name: "fields at the limit", opts: func(o *delivery.Options) { o.MaxHeaders = 5 },
			msg: withBody(fields(5))},
		{name: "too many fields", opts: func(o *delivery.Options) { o.MaxHeaders = 5 },
			msg: withBody(fields(6)), code: 552, enhanced: "5.3.4"},
		{name: "too many fields without body", opts: func(o *delivery.Options) { o.MaxHeaders = 5 },
			msg: crlf(fields(6)...), code: 552, enhanced: "5.3.4"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			f := newFixture(t, tc.opts)
			rcpt := tc.rcpt
			if rcpt == "" {
				rcpt = "<me@example.test>"
			}
			id, err := f.send(t, "<sender@remote.test>", []string{rcpt}, strings.NewReader(tc.msg))
			wantReply(t, "Data", err, tc.code, tc.enhanced)
			if tc.code != 0 {
				if id != "" {
					t.Errorf("refused Data returned id %q", id)
				}
				f.checkNothingLeft(t)
				return
			}
			if n := len(f.copies(t, "me")); n != 1 {
				t.Errorf("me got %d copies, want 1", n)
			}
			f.checkTempEmpty(t)
		})
	}
}

// failingReader yields data, then fails with err, as the SMTP server's
// reader does when the client breaks an input rule midway.
type failingReader struct {
	data string
	err  error
}

func (r *failingReader) Read(p []byte) (int, error) {
	if r.data == "" {
		return 0, r.err
	}
	n := copy(p, r.data)
	r.data = r.data[n:]
	return n, nil
}

func TestDataReaderFails(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name     string
		data     string
		err      error
		code     int
		enhanced string
	}{
		{"bare newline in the body", crlf("Subject: hi", "", "some of the body"), smtp.ErrBareNewline, 550, "5.6.0"},
		{"bare newline in the header", "Subject: hi\r\nX-Half: ", smtp.ErrBareNewline, 550, "5.6.0"},
		{"message too big", crlf("Subject: hi", "", "body"), smtp.ErrTooBig, 552, "5.3.4"},
		// Any other failure is ours, and temporary.
		{"connection lost", crlf("Subject: hi", "", "body"), io.ErrUnexpectedEOF, 451, "4.3.0"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			f := newFixture(t, nil)
			id, err := f.send(t, "<sender@remote.test>", []string{"<me@example.test>", "<you@example.test>"},
				&failingReader{data: tc.data, err: tc.err})
			if !errors.Is(err, tc.err) {
				t.Errorf("Data: %v, want %v", err, tc.err)
			}
			wantReply(t, "Data", err, tc.code, tc.enhanced)
			if id != "" {
				t.Errorf("failed Data returned id %q", id)
			}
			f.checkNothingLeft(t)
		})
	}
}

func TestMailFreeSpace(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name     string
		minFree  uint64
		size     int64
		code     int
		enhanced string
	}{
		{"no minimum", 0, 0, 0, ""},
		{"small minimum", 1, 0, 0, ""},
		{"absurd minimum", 1 << 62, 0, 452, "4.3.1"},
		{"absurd SIZE", 1, 1 << 62, 452, "4.3.1"},
		{"no minimum ignores SIZE", 0, 1 << 62, 0, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			f := newFixture(t, func(o *delivery.Options) { o.MinFreeBytes = tc.minFree })
			s := f.session(t)
			err := s.Mail(context.Background(), path(t, "<sender@remote.test>"), smtp.MailOptions{Size: tc.size})
			wantReply(t, "MAIL", err, tc.code, tc.enhanced)
		})
	}
}

// TestQuotaCheckedAfterData: RCPT checks the size MAIL declares, which a
// client may leave out; once the message is in, a copy that would take an
// account past its quota is not stored. One recipient gets 452 4.2.2;
// with two, the other is served and the sender gets a DSN.
func TestQuotaCheckedAfterData(t *testing.T) {
	t.Parallel()
	q := &fakeQueue{}
	f := newFixture(t, func(o *delivery.Options) { o.Queue = q })
	f.router.SetQueue(q)
	ctx := context.Background()
	if err := f.st.SetQuota(ctx, "me@example.test", 3000); err != nil {
		t.Fatal(err)
	}
	big := crlf("Subject: big", "", strings.Repeat("x", 5000))
	_, err := f.send(t, "<a@remote.test>", []string{"<me@example.test>"}, strings.NewReader(big))
	wantReply(t, "5000 octets to a 3000-octet quota", err, 452, "4.2.2")
	if n := len(f.copies(t, "me")); n != 0 {
		t.Fatalf("%d copies stored past the quota", n)
	}
	if _, err := f.send(t, "<a@remote.test>", []string{"<me@example.test>", "<you@example.test>"}, strings.NewReader(big)); err != nil {
		t.Fatalf("two recipients: %v", err)
	}
	if len(f.copies(t, "me")) != 0 || len(f.copies(t, "you")) != 1 {
		t.Errorf("two recipients: me has %d, you %d", len(f.copies(t, "me")), len(f.copies(t, "you")))
	}
	if len(q.msgs) != 1 || !strings.Contains(q.msgs[0].Rcpts[0].Addr, "a@remote.test") {
		t.Errorf("want one DSN to the sender, queued: %+v", q.msgs)
	}
	small := crlf("Subject: small", "", "x")
	if _, err := f.send(t, "<a@remote.test>", []string{"<me@example.test>"}, strings.NewReader(small)); err != nil {
		t.Errorf("a small message within the quota: %v", err)
	}
}

// TestLMTPSharedAccountSharesRefusal: me@ and me+tag@ in one LMTP
// transaction reach one account, stored once; when that copy is refused
// (here: past the quota), both recipients get the refusal, not a 250 for
// the second that nothing backs.
func TestLMTPSharedAccountSharesRefusal(t *testing.T) {
	t.Parallel()
	f := newFixture(t, nil)
	ctx := context.Background()
	if err := f.st.SetQuota(ctx, "me@example.test", 3000); err != nil {
		t.Fatal(err)
	}
	s := f.session(t).(smtp.LMTPSession)
	if err := s.Mail(ctx, path(t, "<a@remote.test>"), smtp.MailOptions{}); err != nil {
		t.Fatal(err)
	}
	for _, r := range []string{"<me@example.test>", "<me+tag@example.test>", "<you@example.test>"} {
		if err := s.Rcpt(ctx, path(t, r), smtp.RcptOptions{}); err != nil {
			t.Fatalf("RCPT %s: %v", r, err)
		}
	}
	_, results, err := s.LMTPData(ctx, strings.NewReader(crlf("Subject: big", "", strings.Repeat("x", 5000))))
	if err != nil || len(results) != 3 {
		t.Fatalf("LMTPData: %v %v", results, err)
	}
	wantReply(t, "me@", results[0], 452, "4.2.2")
	wantReply(t, "me+tag@", results[1], 452, "4.2.2")
	if results[2] != nil || len(f.copies(t, "you")) != 1 {
		t.Errorf("you@: %v, %d copies", results[2], len(f.copies(t, "you")))
	}
}

// TestSuccessDSNCarriesHeaders: a "delivered" DSN for NOTIFY=SUCCESS
// returns the original's header section (RFC 3462), whatever RET says
// (RET=FULL is for failed DSNs, RFC 3461 §4.3); it used to say
// "(original message not available)".
func TestSuccessDSNCarriesHeaders(t *testing.T) {
	t.Parallel()
	f := newFixture(t, nil)
	ctx := context.Background()
	s := f.session(t)
	if err := s.Mail(ctx, path(t, "<you@example.test>"), smtp.MailOptions{Ret: "FULL", EnvID: "env1"}); err != nil {
		t.Fatal(err)
	}
	if err := s.Rcpt(ctx, path(t, "<me@example.test>"), smtp.RcptOptions{Notify: []string{"SUCCESS"}}); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Data(ctx, strings.NewReader(crlf("Subject: tracked", "", "the secret body"))); err != nil {
		t.Fatal(err)
	}
	dsns := f.copies(t, "you")
	if len(dsns) != 1 {
		t.Fatalf("%d messages for the sender, want one DSN", len(dsns))
	}
	d := dsns[0]
	for _, want := range []string{"Action: delivered", "Original-Envelope-Id: env1", "Content-Type: text/rfc822-headers", "Subject: tracked"} {
		if !strings.Contains(d, want) {
			t.Errorf("DSN lacks %q:\n%s", want, d)
		}
	}
	if strings.Contains(d, "not available") || strings.Contains(d, "the secret body") {
		t.Errorf("DSN without the header section, or with the body:\n%s", d)
	}
}

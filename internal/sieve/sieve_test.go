package sieve

import (
	"context"
	"errors"
	"slices"
	"strings"
	"testing"
	"time"
)

const sample = "From: Alice <alice@remote.test>\r\n" +
	"To: Bob <bob@example.test>\r\n" +
	"Subject: =?utf-8?q?Gr=C3=BC=C3=9Fe?= from the list\r\n" +
	"List-Id: <dev.lists.remote.test>\r\n" +
	"Message-ID: <m1@remote.test>\r\n" +
	"X-Folded: one\r\n two\r\n" +
	"\r\n" +
	"hello body text\r\n"

func input(t *testing.T, raw, from, to string) Input {
	t.Helper()
	h, n, err := ReadHeader(strings.NewReader(raw), 1<<20)
	if err != nil {
		t.Fatal(err)
	}
	body := raw[n:]
	return Input{From: from, To: to, Account: "bob@example.test", Header: h, Size: int64(len(raw)),
		Body: func() ([]byte, error) { return []byte(body), nil }}
}

func run(t *testing.T, src string, in Input) Result {
	t.Helper()
	s, err := Compile(src)
	if err != nil {
		t.Fatalf("Compile: %v", err)
	}
	r, err := s.Run(context.Background(), in)
	if err != nil {
		t.Fatalf("Run: %v", err)
	}
	return r
}

func TestReadHeader(t *testing.T) {
	h, n, err := ReadHeader(strings.NewReader(sample), 1<<20)
	if err != nil {
		t.Fatal(err)
	}
	if got := h.Get("x-folded"); got != "one two" {
		t.Errorf("folded field = %q", got)
	}
	if sample[n:] != "hello body text\r\n" {
		t.Errorf("body starts at %d: %q", n, sample[n:])
	}
	if _, _, err := ReadHeader(strings.NewReader("A: "+strings.Repeat("x", 5000)+"\r\n\r\n"), 1000); !errors.Is(err, ErrHeaderTooLarge) {
		t.Errorf("long header: err = %v", err)
	}
	h, _, err = ReadHeader(strings.NewReader("Subject: no body, LF only\n"), 100)
	if err != nil || h.Get("subject") != "no body, LF only" {
		t.Errorf("header without body: %v %q", err, h)
	}
}

func TestFileIntoByHeader(t *testing.T) {
	src := `require ["fileinto", "imap4flags"];
if header :contains "list-id" "dev.lists" {
	addflag "\\Flagged";
	fileinto "Lists/dev";
	stop;
}
keep;`
	r := run(t, src, input(t, sample, "alice@remote.test", "bob@example.test"))
	if r.Keep || len(r.FileInto) != 1 || r.FileInto[0].Mailbox != "Lists/dev" || !slices.Contains(r.Flags, `\Flagged`) {
		t.Errorf("result = %+v", r)
	}
	other := strings.Replace(sample, "List-Id: <dev.lists.remote.test>\r\n", "", 1)
	r = run(t, src, input(t, other, "alice@remote.test", "bob@example.test"))
	if !r.Keep || len(r.FileInto) != 0 {
		t.Errorf("no list: result = %+v", r)
	}
}

func TestEncodedSubjectMatches(t *testing.T) {
	src := `require "fileinto"; if header :contains "subject" "Grüße" { fileinto "de"; }`
	r := run(t, src, input(t, sample, "alice@remote.test", "bob@example.test"))
	if len(r.FileInto) != 1 {
		t.Errorf("RFC 2047 subject not decoded: %+v", r)
	}
}

func TestEnvelopeSubaddressBody(t *testing.T) {
	src := `require ["fileinto", "envelope", "subaddress", "body", "mailbox", "imap4flags"];
if envelope :detail "to" "news" { fileinto :create "News"; }
if body :contains "hello body" { addflag "x"; }
if envelope :domain "from" "remote.test" { keep; }`
	r := run(t, src, input(t, sample, "alice@remote.test", "bob+news@example.test"))
	if len(r.FileInto) != 1 || r.FileInto[0] != (Target{"News", true}) || !r.Keep {
		t.Errorf("result = %+v", r)
	}
}

func TestDiscard(t *testing.T) {
	r := run(t, `discard;`, input(t, sample, "a@b.test", "bob@example.test"))
	if !r.Discarded() {
		t.Errorf("result = %+v", r)
	}
}

func TestReject(t *testing.T) {
	for _, tc := range []struct {
		src     string
		ereject bool
	}{
		{`require "reject"; reject "not here, ${1}";`, false},
		{`require ["ereject"]; if true { ereject "go away"; }`, true},
	} {
		r := run(t, tc.src, input(t, sample, "a@b.test", "bob@example.test"))
		if !r.Rejected || r.Ereject != tc.ereject || r.Keep || len(r.FileInto) != 0 || r.Reject == "" {
			t.Errorf("%s: result = %+v", tc.src, r)
		}
	}
	s, err := Compile(`require ["reject", "fileinto"]; fileinto "x"; reject "no";`)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.Run(context.Background(), input(t, sample, "a@b.test", "bob@example.test")); !errors.Is(err, ErrConflict) {
		t.Errorf("reject with fileinto: err = %v", err)
	}
}

func TestCheckErrors(t *testing.T) {
	for src, line := range map[string]int{
		"keep;\nif header :is \"a\" {\n":               0, // unterminated block: line depends on the library
		"keep;\n\nfileinto \"x\";":                     3,
		"require \"nosuch\";":                          1,
		"keep;\nreject \"x\";":                         2,
		"require \"reject\";\nfileinto \"x\";":         0,
		"require \"reject\";\nkeep;\nreject 1;":        3,
		"require \"fileinto\";\nfileinto \"a\" \"b\";": 2,
		"if foo { keep; }":                             1,
	} {
		_, err := Compile(src)
		var ce *CheckError
		if !errors.As(err, &ce) {
			t.Errorf("%q: err = %v, want a CheckError", src, err)
			continue
		}
		if line != 0 && ce.Line != line {
			t.Errorf("%q: line %d (%v), want %d", src, ce.Line, ce, line)
		}
	}
	if _, err := Compile(strings.Repeat("#", MaxScriptSize+1)); err == nil {
		t.Error("oversized script compiled")
	}
}

func TestVacation(t *testing.T) {
	src := `require "vacation"; vacation :days 3 :subject "Away" "I am away.";`
	plain := strings.Replace(sample, "List-Id: <dev.lists.remote.test>\r\n", "", 1)
	r := run(t, src, input(t, plain, "alice@remote.test", "bob@example.test"))
	if r.Vacation == nil || r.Vacation.Days != 3 || !r.Keep {
		t.Fatalf("result = %+v", r)
	}
	if r.Vacation.Period() != 72*time.Hour || r.Vacation.Key() == "" {
		t.Errorf("period %v key %q", r.Vacation.Period(), r.Vacation.Key())
	}
	// The null sender never gets a reply, and the script still runs.
	r = run(t, src, input(t, plain, "", "bob@example.test"))
	if r.Vacation != nil || !r.Keep {
		t.Errorf("null sender: %+v", r)
	}
	reply := string(r2(t, src, plain).Reply(input(t, plain, "alice@remote.test", "bob@example.test"), "bob@example.test", "mx.example.test", time.Unix(0, 0)))
	for _, want := range []string{"To: <alice@remote.test>\r\n", "Subject: Away\r\n", "In-Reply-To: <m1@remote.test>\r\n", "Auto-Submitted: auto-replied", "\r\n\r\nI am away.\r\n"} {
		if !strings.Contains(reply, want) {
			t.Errorf("reply lacks %q:\n%s", want, reply)
		}
	}
}

func r2(t *testing.T, src, raw string) *Vacation {
	return run(t, src, input(t, raw, "alice@remote.test", "bob@example.test")).Vacation
}

func TestShouldAnswer(t *testing.T) {
	own := []string{"bob@example.test"}
	plain := strings.Replace(sample, "List-Id: <dev.lists.remote.test>\r\n", "", 1)
	cases := []struct {
		raw, from string
		want      bool
	}{
		{plain, "alice@remote.test", true},
		{sample, "alice@remote.test", false}, // List-Id
		{plain, "", false},
		{plain, "MAILER-DAEMON@remote.test", false},
		{plain, "owner-dev@remote.test", false},
		{plain, "dev-request@remote.test", false},
		{plain, "bob@example.test", false},
		{"Auto-Submitted: auto-replied\r\n" + plain, "alice@remote.test", false},
		{"Auto-Submitted: no\r\n" + plain, "alice@remote.test", true},
		{"Precedence: bulk\r\n" + plain, "alice@remote.test", false},
		{strings.Replace(plain, "To: Bob <bob@example.test>", "To: someone@else.test", 1), "alice@remote.test", false},
		{strings.Replace(plain, "To: Bob <bob@example.test>", "To: x@else.test\r\nCc: \"B\" <BOB@example.test>", 1), "alice@remote.test", true},
	}
	for i, c := range cases {
		got, why := ShouldAnswer(input(t, c.raw, c.from, "bob@example.test"), own)
		if got != c.want {
			t.Errorf("case %d: got %v (%s), want %v", i, got, why, c.want)
		}
	}
}

func TestRunTimeout(t *testing.T) {
	s, err := Compile(`keep;`)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := s.Run(ctx, input(t, sample, "a@b.test", "bob@example.test")); err == nil {
		t.Error("cancelled run succeeded")
	}
}

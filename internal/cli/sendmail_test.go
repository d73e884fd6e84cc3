package cli

import (
	"bytes"
	"slices"
	"strings"
	"testing"
)

func TestParseSendmail(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		args []string
		want sendmailArgs
	}{
		{[]string{"-t", "-oi", "-f", "root@x", "a@b"}, sendmailArgs{mode: "bm", fromHeaders: true, ignoreDots: true, sender: "root@x", rcpts: []string{"a@b"}}},
		{[]string{"-fme@x", "-FMe Myself", "-i", "--", "-weird@x"}, sendmailArgs{mode: "bm", ignoreDots: true, sender: "me@x", name: "Me Myself", rcpts: []string{"-weird@x"}}},
		{[]string{"-bs"}, sendmailArgs{mode: "bs"}},
		{[]string{"-bp"}, sendmailArgs{mode: "bp"}},
		{[]string{"-q"}, sendmailArgs{mode: "q"}},
		{[]string{"-oem", "-odb", "-v", "-X", "/tmp/log", "-Ndelay,failure", "-R", "hdrs", "x"}, sendmailArgs{mode: "bm", notify: []string{"DELAY", "FAILURE"}, ret: "HDRS", rcpts: []string{"x"}}},
	} {
		got, err := parseSendmail(tc.args)
		if err != nil {
			t.Errorf("%q: %v", tc.args, err)
			continue
		}
		if got.mode != tc.want.mode || got.fromHeaders != tc.want.fromHeaders || got.ignoreDots != tc.want.ignoreDots ||
			got.sender != tc.want.sender || got.name != tc.want.name || strings.Join(got.rcpts, ",") != strings.Join(tc.want.rcpts, ",") ||
			strings.Join(got.notify, ",") != strings.Join(tc.want.notify, ",") || got.ret != tc.want.ret {
			t.Errorf("%q: got %+v, want %+v", tc.args, got, tc.want)
		}
	}
	if _, err := parseSendmail([]string{"-f"}); err == nil {
		t.Error("-f without a value accepted")
	}
	if _, err := parseSendmail([]string{"-bz"}); err == nil {
		t.Error("-bz accepted")
	}
}

func TestReadMessage(t *testing.T) {
	t.Parallel()
	got, err := readMessage(strings.NewReader("a\nb\r\n.\nafter\n"), false, 1000, false)
	if err != nil || string(got) != "a\r\nb\r\n" {
		t.Errorf("dot ends: %q %v", got, err)
	}
	got, _ = readMessage(strings.NewReader("a\n.\nafter"), true, 1000, false)
	if string(got) != "a\r\n.\r\nafter\r\n" {
		t.Errorf("-i: %q", got)
	}
	if _, err := readMessage(strings.NewReader(strings.Repeat("x", 2000)), true, 1000, false); err == nil {
		t.Error("oversize accepted")
	}
	// A bare CR ends a line, as the SMTP client will send it: -t must see
	// the Bcc field that a CR before it would otherwise hide.
	in := "To: a@x.test\r\nSubject: s\rBcc: hidden@z.test\r\n\r\nbody\rmore\n"
	raw, _ := readMessage(strings.NewReader(in), true, 1000, false)
	if string(raw) != "To: a@x.test\r\nSubject: s\r\nBcc: hidden@z.test\r\n\r\nbody\r\nmore\r\n" {
		t.Errorf("bare CR: %q", raw)
	}
	// For deliver, a bare CR in the header section is a space: a sender
	// must not add a field to the stored message with it.
	if lda, _ := readMessage(strings.NewReader(in), true, 1000, true); string(lda) != "To: a@x.test\r\nSubject: s Bcc: hidden@z.test\r\n\r\nbody\r\nmore\r\n" {
		t.Errorf("deliver, bare CR: %q", lda)
	}
	out, rcpts := prepareHeader(raw, sendmailArgs{fromHeaders: true}, "root@h.test")
	if strings.Contains(string(out), "hidden") || strings.Join(rcpts, ",") != "a@x.test,hidden@z.test" {
		t.Errorf("-t with a bare CR: rcpts %v, message %q", rcpts, out)
	}
}

func TestPrepareHeader(t *testing.T) {
	t.Parallel()
	msg := []byte("To: a@x.test, B <b@x.test>\r\nCc: c@y.test\r\nBcc: secret@z.test,\r\n hidden@z.test\r\nSubject: s\r\n\r\nbody\r\n")
	out, rcpts := prepareHeader(msg, sendmailArgs{fromHeaders: true, name: "Root"}, "root@h.test")
	if strings.Join(rcpts, ",") != "a@x.test,b@x.test,c@y.test,secret@z.test,hidden@z.test" {
		t.Errorf("rcpts %v", rcpts)
	}
	s := string(out)
	if strings.Contains(s, "Bcc") || strings.Contains(s, "hidden") || !strings.HasPrefix(s, "From: \"Root\" <root@h.test>\r\n") || !strings.HasSuffix(s, "\r\n\r\nbody\r\n") {
		t.Errorf("message:\n%s", s)
	}
	if q, _, err := qualify(nil, []string{"root", "a@x.test", "A@x.test", "b@y, c@y"}, "h.test"); err != nil || strings.Join(q, " ") != "root@h.test a@x.test b@y c@y" {
		t.Errorf("qualify: %v %v", q, err)
	}
}

// TestSendmailAddressesQuoted: an address whose local part needed quotes
// keeps them in the envelope, so its text cannot become another
// recipient or ESMTP parameters; an address that is no address is
// refused; UTF-8 asks for SMTPUTF8.
func TestSendmailAddressesQuoted(t *testing.T) {
	t.Parallel()
	msg := []byte("To: \"bob@example.test> ORCPT=rfc822;x\"@partner.example\r\nCc: \"a b\"@x.test\r\n\r\nbody\r\n")
	_, hdr := prepareHeader(msg, sendmailArgs{fromHeaders: true}, "me@h.test")
	q, utf8, err := qualify(hdr, []string{`"c d"@y.test`, "jörg@example.test"}, "h.test")
	want := []string{`"bob@example.test> ORCPT=rfc822;x"@partner.example`, `"a b"@x.test`, `"c d"@y.test`, "jörg@example.test"}
	if err != nil || !slices.Equal(q, want) || !utf8 {
		t.Errorf("qualify: %q utf8=%v %v\nwant %q", q, utf8, err, want)
	}
	for _, bad := range []string{"a@b> RET=HDRS", "@x.test", "a@", "a@@x"} {
		if q, _, err := qualify(nil, []string{bad}, "h.test"); err == nil {
			t.Errorf("%q accepted as %q", bad, q)
		}
	}
}

// TestSendmailHeaderEnds: a message that begins with a blank line has no
// header (its To: lines are body, not -t recipients), and a line that is
// no field ends the header.
func TestSendmailHeaderEnds(t *testing.T) {
	t.Parallel()
	for in, wantRcpts := range map[string]string{
		"\r\nTo: bob@example.test\r\nNote: hi\r\n":                         "",
		"Subject: s\r\nnot a field\r\nTo: bob@example.test\r\n":            "",
		"Subject: s\r\nTo: me@x.test,\r\n  you@x.test\r\n\r\nTo: no@x\r\n": "me@x.test you@x.test",
	} {
		out, rcpts := prepareHeader([]byte(in), sendmailArgs{fromHeaders: true}, "")
		if strings.Join(rcpts, " ") != wantRcpts {
			t.Errorf("%q: rcpts %q; want %q", in, rcpts, wantRcpts)
		}
		_, body, _ := bytes.Cut(out, []byte("\r\n\r\n"))
		if bytes.HasPrefix(out, []byte("\r\n")) {
			body = out[2:] // no header at all
		}
		if !bytes.Contains(body, []byte("To: ")) && wantRcpts == "" {
			t.Errorf("%q: the To line left the body: %q", in, out)
		}
	}
}

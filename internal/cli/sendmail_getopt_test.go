package cli

import (
	"slices"
	"strings"
	"testing"
)

// TestParseSendmailGetopt: flags combine and options that take a value
// take the next argument, as getopt(3) parses them for Postfix and
// Sendmail. "-ti" dropped -i (a "." line then cut the message short),
// "-it" lost -t, and "-o i", "-h 20", "-p x" made recipients of values.
func TestParseSendmailGetopt(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		args        []string
		mode        string
		t, i        bool
		sender      string
		rcpts       []string
		wantNoError bool
	}{
		{args: []string{"-ti"}, mode: "bm", t: true, i: true},
		{args: []string{"-it"}, mode: "bm", t: true, i: true},
		{args: []string{"-o", "i", "bob"}, mode: "bm", i: true, rcpts: []string{"bob"}},
		{args: []string{"-h", "20", "-p", "smtp:x", "-L", "cron", "-B", "8BITMIME", "bob"}, mode: "bm", rcpts: []string{"bob"}},
		{args: []string{"-tfme@x", "bob"}, mode: "bm", t: true, sender: "me@x", rcpts: []string{"bob"}},
		{args: []string{"-tf", "me@x", "bob"}, mode: "bm", t: true, sender: "me@x", rcpts: []string{"bob"}},
		{args: []string{"-oi", "-O", "DeliveryMode=b", "-C", "/etc/x.cf", "bob"}, mode: "bm", i: true, rcpts: []string{"bob"}},
		{args: []string{"-O", "IgnoreDots=true", "bob"}, mode: "bm", i: true, rcpts: []string{"bob"}},
		// Options end at the first recipient, as with POSIX getopt.
		{args: []string{"bob", "-t"}, mode: "bm", rcpts: []string{"bob", "-t"}},
		{args: []string{"-q"}, mode: "q"},
		{args: []string{"-qRexample.org"}, mode: "q"},
		{args: []string{"-q30m", "bob"}, mode: "bm", rcpts: []string{"bob"}},
		{args: []string{"-bi"}, mode: "bi"},
		{args: []string{"-I"}, mode: "bi"},
	} {
		got, err := parseSendmail(tc.args)
		if err != nil {
			t.Errorf("%q: %v", tc.args, err)
			continue
		}
		if got.mode != tc.mode || got.fromHeaders != tc.t || got.ignoreDots != tc.i || got.sender != tc.sender || !slices.Equal(got.rcpts, tc.rcpts) {
			t.Errorf("%q: mode %s -t %v -i %v -f %q rcpts %q; want %s %v %v %q %q",
				tc.args, got.mode, got.fromHeaders, got.ignoreDots, got.sender, got.rcpts, tc.mode, tc.t, tc.i, tc.sender, tc.rcpts)
		}
	}
	for _, bad := range [][]string{{"-h"}, {"-ti", "-o"}, {"-tf"}} {
		if _, err := parseSendmail(bad); err == nil {
			t.Errorf("%q accepted: a value is missing", bad)
		}
	}
}

// TestSendmailHeaderRecipientsLenient: -t reads the headers cron, mdadm
// and logwatch write, and what a strict RFC 5322 parser refuses, rather
// than losing the alert: bare names (qualified like command-line ones),
// empty fields, an unquoted comma in a display name (as Postfix: both
// parts are recipients), a leading mbox From_ line.
func TestSendmailHeaderRecipientsLenient(t *testing.T) {
	t.Parallel()
	for in, want := range map[string]string{
		"To: root\r\nSubject: cron\r\n\r\nx\r\n":                                        "root@h.test",
		"To: a@x.test\r\nCc:\r\nBcc: \r\n\r\nx\r\n":                                     "a@x.test",
		"To: Doe, John <a@x.test>\r\n\r\nx\r\n":                                         "Doe@h.test a@x.test",
		"To: root, Admin (ops, night) <admin@x.test>\r\n\r\nx\r\n":                      "root@h.test admin@x.test",
		"To: team: root, b@x.test;, c@x.test\r\n\r\nx\r\n":                              "root@h.test b@x.test c@x.test",
		"From root Sun Nov 29 10:00:00 2026\r\nTo: a@x.test\r\nSubject: s\r\n\r\nx\r\n": "a@x.test",
		"To: undisclosed-recipients:;\r\nBcc: b@x.test\r\n\r\nx\r\n":                    "b@x.test",
	} {
		out, hdr := prepareHeader([]byte(in), sendmailArgs{fromHeaders: true}, "me@h.test")
		got, _, err := qualify(hdr, nil, "h.test")
		if err != nil || strings.Join(got, " ") != want {
			t.Errorf("%q: recipients %q (%v), want %q", in, got, err, want)
		}
		if !strings.Contains(string(out), "\r\n\r\nx\r\n") || strings.Contains(string(out), "From root") {
			t.Errorf("%q: message %q", in, out)
		}
	}
}

// TestSendmailResentFields: Resent-Bcc is removed like Bcc (RFC 5322
// §3.6.6), and with -t a re-sent message goes to its Resent-To, -Cc and
// -Bcc only: the original recipients already have it.
func TestSendmailResentFields(t *testing.T) {
	t.Parallel()
	in := "To: orig@x.test\r\nResent-From: me@h.test\r\nResent-To: new@x.test\r\nResent-Bcc: hidden@x.test\r\nSubject: s\r\n\r\nbody\r\n"
	out, rcpts := prepareHeader([]byte(in), sendmailArgs{fromHeaders: true}, "me@h.test")
	if strings.Join(rcpts, " ") != "new@x.test hidden@x.test" {
		t.Errorf("recipients %q, want the Resent- ones", rcpts)
	}
	if strings.Contains(string(out), "hidden") || !strings.Contains(string(out), "To: orig@x.test\r\n") {
		t.Errorf("message:\n%s", out)
	}
}

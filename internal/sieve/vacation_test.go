package sieve

import (
	"strings"
	"testing"
	"time"
)

// replyHeader returns the header lines of a reply, and fails the test
// when a line passes 998 octets (RFC 5322 §2.1.1).
func replyLines(t *testing.T, reply []byte) (header []string) {
	t.Helper()
	head, _, _ := strings.Cut(string(reply), "\r\n\r\n")
	for i, l := range strings.Split(string(reply), "\r\n") {
		if len(l) > 998 {
			t.Errorf("line %d has %d octets: %.60q…", i+1, len(l), l)
		}
	}
	return strings.Split(head, "\r\n")
}

// fieldStarts returns the field names that begin a header line.
func fieldNames(lines []string) map[string]int {
	out := map[string]int{}
	for _, l := range lines {
		if name, _, ok := strings.Cut(l, ":"); ok && l[0] != ' ' && l[0] != '\t' {
			out[strings.ToLower(name)]++
		}
	}
	return out
}

// TestVacationFrom: :from is used only when it is an address the user
// is known by, and nothing in it can start a field (vacation_inject.py).
func TestVacationFrom(t *testing.T) {
	t.Parallel()
	plain := strings.Replace(sample, "List-Id: <dev.lists.remote.test>\r\n", "", 1)
	in := input(t, plain, "alice@remote.test", "bob+away@example.test")
	for _, c := range []struct{ from, want string }{
		{"", "From: <bob+away@example.test>"},
		{"bob@example.test", "From: <bob@example.test>"},                       // the account
		{"Bob <BOB+away@example.test>", `From: "Bob" <bob+away@example.test>`}, // the address mailed
		{"boss@example.test", "From: <bob+away@example.test>"},                 // not the user's
		{"bob@example.test\r\nBcc: victim@evil.test\r\nX-Injected-Static: yes", "From: <bob+away@example.test>"},
		{"=?utf-8?q?x=0D=0ABcc=3A_victim=40evil.test?= <bob@example.test>", "From: =?utf-8?b?eA0KQmNjOiB2aWN0aW1AZXZpbC50ZXN0?= <bob@example.test>"},
		{"not an address", "From: <bob+away@example.test>"},
	} {
		v := &Vacation{From: c.from, Subject: "away", Reason: "I am away."}
		lines := replyLines(t, v.Reply(in, "bob+away@example.test", "mx.example.test", time.Unix(0, 0)))
		if lines[0] != c.want {
			t.Errorf(":from %q: %q, want %q", c.from, lines[0], c.want)
		}
		names := fieldNames(lines)
		if names["bcc"] != 0 || names["x-injected-static"] != 0 || names["from"] != 1 {
			t.Errorf(":from %q: injected fields: %q", c.from, lines)
		}
	}
}

// TestVacationFromVariable: a :from taken from the message by a
// variable, RFC 2047-decoded to hold CR LF, adds no field.
func TestVacationFromVariable(t *testing.T) {
	t.Parallel()
	src := `require ["vacation", "variables"];
if header :matches "X-Name" "*" { set "name" "${1}"; }
vacation :days 1 :handle "h2" :from "${name}" :subject "away" "I am away";`
	raw := "From: other@remote.test\r\nTo: bob@example.test\r\nSubject: hi\r\nMessage-ID: <x1@a>\r\n" +
		"X-Name: =?utf-8?q?bob=40example.test=0D=0AX-Injected-By-Sender=3A_yes?=\r\n\r\nhello\r\n"
	in := input(t, raw, "other@remote.test", "bob@example.test")
	v := run(t, src, in).Vacation
	if v == nil || !strings.Contains(v.From, "\r\n") {
		t.Fatalf("the variable did not carry CR LF: %+v", v)
	}
	lines := replyLines(t, v.Reply(in, "bob@example.test", "mx.example.test", time.Unix(0, 0)))
	if names := fieldNames(lines); names["x-injected-by-sender"] != 0 || lines[0] != "From: <bob@example.test>" {
		t.Errorf("reply header: %q", lines)
	}
}

// TestVacationLongFields: References of 200 ids (vacation_longline.py),
// a huge Message-ID, subject and reason line all give lines within 998
// octets; References keeps its first ids and the parent's.
func TestVacationLongFields(t *testing.T) {
	t.Parallel()
	var refs []string
	for i := range 200 {
		refs = append(refs, "<ref"+strings.Repeat("x", 40)+string(rune('a'+i%26))+"@example.net>")
	}
	raw := "From: other@remote.test\r\nTo: bob@example.test\r\nSubject: " + strings.Repeat("s", 5000) +
		"\r\nMessage-ID: <m1@remote.test>\r\nReferences: " + strings.Join(refs, "\r\n ") + "\r\n\r\nhi\r\n"
	in := input(t, raw, "other@remote.test", "bob@example.test")
	v := &Vacation{Reason: strings.Repeat("r", 3000) + "\nsecond line"}
	reply := v.Reply(in, "bob@example.test", "mx.example.test", time.Unix(0, 0))
	lines := replyLines(t, reply)
	h, _, err := ReadHeader(strings.NewReader(string(reply)), 1<<20)
	if err != nil {
		t.Fatal(err)
	}
	if got := h.Get("In-Reply-To"); got != "<m1@remote.test>" {
		t.Errorf("In-Reply-To = %q", got)
	}
	ids := strings.Fields(h.Get("References"))
	if len(ids) != maxRefs || ids[0] != refs[0] || ids[len(ids)-2] != refs[199] || ids[len(ids)-1] != "<m1@remote.test>" {
		t.Errorf("References = %q", ids)
	}
	if !strings.Contains(string(reply), "Content-Transfer-Encoding: quoted-printable") {
		t.Errorf("a reason line of 3000 octets went out as it was:\n%s", lines)
	}

	// A Message-ID too long to copy is left out, with its References.
	raw = strings.Replace(raw, "<m1@remote.test>", "<"+strings.Repeat("m", 5000)+"@remote.test>", 1)
	reply = (&Vacation{Reason: "away"}).Reply(input(t, raw, "other@remote.test", "bob@example.test"), "bob@example.test", "mx", time.Unix(0, 0))
	if names := fieldNames(replyLines(t, reply)); names["in-reply-to"] != 0 || names["references"] != 0 {
		t.Errorf("a 5000-octet Message-ID was copied")
	}
}

// TestVacationMimeReason: a :mime reason brings its Content-* fields and
// no other.
func TestVacationMimeReason(t *testing.T) {
	t.Parallel()
	in := input(t, sample, "alice@remote.test", "bob@example.test")
	v := &Vacation{Mime: true, Reason: "Content-Type: text/plain;\n charset=utf-8\nBcc: victim@evil.test\nX-Other: y\n\nI am away.\n"}
	reply := string(v.Reply(in, "bob@example.test", "mx", time.Unix(0, 0)))
	names := fieldNames(replyLines(t, []byte(reply)))
	if names["bcc"] != 0 || names["x-other"] != 0 || names["content-type"] != 1 {
		t.Errorf("reply:\n%s", reply)
	}
	if !strings.Contains(reply, "Content-Type: text/plain;\r\n charset=utf-8\r\n\r\nI am away.\r\n") {
		t.Errorf("MIME part not kept:\n%s", reply)
	}
}

// FuzzVacationReply: whatever the script and the message hold, the
// reply's header has only the fields Reply writes, no line over 998
// octets, and ends where it should.
func FuzzVacationReply(f *testing.F) {
	f.Add("bob@example.test\r\nBcc: x@y", "Auto: =?utf-8?q?a=0D=0AB?=", "<m1@a>", "<r1@a> <r2@b>", "reason\nline")
	f.Add("Bob <bob@example.test>", strings.Repeat("é", 300), "<"+strings.Repeat("m", 300)+"@a>", strings.Repeat("<r@a>\r\n ", 300), strings.Repeat("x", 2000))
	f.Add("\"\r\n\" <bob@example.test>", "", "no id", "<a b@c>", "")
	allowed := map[string]bool{"from": true, "to": true, "subject": true, "date": true, "message-id": true, "in-reply-to": true,
		"references": true, "auto-submitted": true, "precedence": true, "mime-version": true,
		"content-type": true, "content-transfer-encoding": true}
	f.Fuzz(func(t *testing.T, from, subject, msgid, refs, reason string) {
		in := Input{From: "alice@remote.test", To: "bob@example.test", Account: "bob@example.test",
			Header: Header{{"Subject", subject}, {"Message-ID", msgid}, {"References", refs}}}
		v := &Vacation{From: from, Subject: subject, Reason: reason}
		reply := string(v.Reply(in, "bob@example.test", "mx.example.test", time.Unix(0, 0)))
		head, _, ok := strings.Cut(reply, "\r\n\r\n")
		if !ok {
			t.Fatalf("no end of header:\n%q", reply)
		}
		for _, l := range strings.Split(head, "\r\n") {
			if len(l) > 998 {
				t.Fatalf("header line of %d octets", len(l))
			}
			if l == "" || l[0] == ' ' || l[0] == '\t' {
				continue
			}
			name, _, _ := strings.Cut(l, ":")
			if !allowed[strings.ToLower(name)] {
				t.Fatalf("field %q in:\n%s", name, head)
			}
		}
	})
}

// FuzzDecodeEncoded: decoding never panics and leaves strings without
// "${" alone.
func FuzzDecodeEncoded(f *testing.F) {
	for _, s := range []string{"${hex:41}", "${unicode:1F600 41}", "${hex:0d 0a}", "${HEX:}", "${unicode:110000}", "plain"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		out, err := decodeEncoded(s)
		if !strings.Contains(s, "${") && (out != s || err != nil) {
			t.Fatalf("%q changed to %q, %v", s, out, err)
		}
	})
}

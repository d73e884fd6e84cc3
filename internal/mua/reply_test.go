package mua

import (
	"net/mail"
	"strings"
	"testing"
	"time"
)

func original(t *testing.T, head string) *Message {
	t.Helper()
	m, err := ParseMessage(crlf(head + "Date: Wed, 01 May 2024 12:00:00 +0200\n\nfirst line\n\n> older quote\nlast line\n"))
	if err != nil {
		t.Fatal(err)
	}
	return m
}

func addrs(as []*mail.Address) string {
	var out []string
	for _, a := range as {
		out = append(out, a.Address)
	}
	return strings.Join(out, " ")
}

func TestReplyThreading(t *testing.T) {
	t.Parallel()
	me := addr("Me <me@example.test>")
	for _, c := range []struct {
		name, head      string
		all             bool
		to, cc, subject string
		inReplyTo, refs string
	}{
		{"with references", "From: You <you@example.test>\nTo: me@example.test\nCc: Other <other@example.test>, ME@example.test\nSubject: Re: Re: plans\nMessage-ID: <c@x>\nIn-Reply-To: <b@x>\nReferences: <a@x> <b@x>\n",
			false, "you@example.test", "", "Re: plans", "<c@x>", "<a@x> <b@x> <c@x>"},
		{"reply all without me", "From: You <you@example.test>\nTo: me@example.test, third@example.test\nCc: Other <other@example.test>, ME@example.test, alias@example.test\nSubject: plans\nMessage-ID: <c@x>\n",
			true, "you@example.test", "third@example.test other@example.test", "Re: plans", "<c@x>", "<c@x>"},
		{"in-reply-to stands in for references", "From: you@example.test\nTo: me@example.test\nSubject: RE[2]: x\nMessage-ID: <c@x>\nIn-Reply-To: <b@x>\n",
			false, "you@example.test", "", "Re: x", "<c@x>", "<b@x> <c@x>"},
		{"reply-to wins", "From: you@example.test\nReply-To: list@example.test\nTo: me@example.test\nSubject: y\nMessage-ID: <c@x>\n",
			false, "list@example.test", "", "Re: y", "<c@x>", "<c@x>"},
		{"our own message goes to its recipients", "From: me@example.test\nTo: you@example.test\nSubject: z\n",
			false, "you@example.test", "", "Re: z", "", ""},
	} {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			d := Reply(original(t, c.head), me, []string{"me@example.test", "alias@example.test"}, c.all, "my answer\n")
			if addrs(d.To) != c.to || addrs(d.Cc) != c.cc || d.Subject != c.subject ||
				d.InReplyTo != c.inReplyTo || strings.Join(d.References, " ") != c.refs {
				t.Errorf("to %q cc %q subject %q in-reply-to %q references %q", addrs(d.To), addrs(d.Cc), d.Subject, d.InReplyTo, d.References)
			}
			// It composes, and the threading fields survive.
			if d.To == nil {
				return
			}
			cm, err := Compose(d)
			if err != nil {
				t.Fatal(err)
			}
			back, _ := ParseMessage(cm.Raw)
			if back.InReplyTo != c.inReplyTo || strings.Join(back.References, " ") != c.refs {
				t.Errorf("composed: in-reply-to %q references %q", back.InReplyTo, back.References)
			}
		})
	}
}

func TestReplyQuotes(t *testing.T) {
	t.Parallel()
	d := Reply(original(t, "From: You <you@example.test>\nSubject: q\n"), addr("me@example.test"), nil, false, "my answer\n")
	want := "On Wed, 01 May 2024 12:00 +0200, You <you@example.test> wrote:\n> first line\n>\n> > older quote\n> last line\n\nmy answer\n"
	if d.Text != want {
		t.Errorf("text\n%q, want\n%q", d.Text, want)
	}
}

// TestReplyAttributionOneLine: a sender's name that decodes to a line
// break (an encoded word can carry one) stays on the attribution line;
// it put text of the sender's choosing, unquoted, into the user's reply.
func TestReplyAttributionOneLine(t *testing.T) {
	t.Parallel()
	d := Reply(original(t, "From: =?utf-8?b?TmFzdHkNCkJjYzogeEBldmlsLnRlc3Q=?= <you@example.test>\nSubject: q\n"), addr("me@example.test"), nil, false, "")
	first, _, _ := strings.Cut(d.Text, "\n")
	if !strings.HasSuffix(first, " wrote:") || !strings.Contains(first, "Nasty") {
		t.Errorf("attribution %q", first)
	}
	for _, line := range strings.Split(d.Text, "\n")[1:] {
		if line != "" && !strings.HasPrefix(line, ">") {
			t.Errorf("unquoted line %q in\n%s", line, d.Text)
		}
	}
}

func TestForwardAttachesTheOriginal(t *testing.T) {
	t.Parallel()
	orig := original(t, "From: you@example.test\nSubject: Fwd: ../report\nMessage-ID: <c@x>\n")
	d := Forward(orig, addr("me@example.test"), []*mail.Address{addr("boss@example.test")}, "FYI\n")
	d.Date = time.Now()
	c, err := Compose(d)
	if err != nil {
		t.Fatal(err)
	}
	m, err := ParseMessage(c.Raw)
	if err != nil {
		t.Fatal(err)
	}
	if m.Subject != "Fwd: ../report" || m.Text != "FYI\n" || len(m.Attachments) != 1 {
		t.Fatalf("subject %q text %q attachments %+v", m.Subject, m.Text, m.Attachments)
	}
	a := m.Attachments[0]
	if a.ContentType != "message/rfc822" || a.Filename != "report.eml" ||
		strings.ReplaceAll(string(a.Data), "\r\n", "\n") != strings.ReplaceAll(string(orig.Raw), "\r\n", "\n") {
		t.Errorf("attachment %s %q:\n%s", a.ContentType, a.Filename, a.Data)
	}
	if !strings.Contains(string(c.Raw), "Content-Transfer-Encoding: 7bit") || strings.Contains(string(c.Raw), "base64") {
		t.Errorf("message/rfc822 must not be encoded (RFC 2046 §5.2.1):\n%s", c.Raw)
	}
}

package mua

import (
	"bytes"
	"net/mail"
	"strings"
	"testing"
	"unicode/utf8"
)

func crlf(s string) []byte { return []byte(strings.ReplaceAll(s, "\n", "\r\n")) }

func TestParseDecodesCharsetsAndEncodings(t *testing.T) {
	t.Parallel()
	for _, c := range []struct {
		name, msg, text, subject string
	}{
		{"latin1 qp", "Subject: =?ISO-8859-1?Q?Gr=FC=DFe?=\nContent-Type: text/plain; charset=iso-8859-1\nContent-Transfer-Encoding: quoted-printable\n\nK=F6ln ist sch=F6n, eine lange Zeile mit weichem Umbruch=\n hier\n",
			"Köln ist schön, eine lange Zeile mit weichem Umbruch hier\n", "Grüße"},
		{"windows-1252 base64", "Subject: =?windows-1252?B?k3F1b3Rlc5Q=?=\nContent-Type: text/plain; charset=\"windows-1252\"\nContent-Transfer-Encoding: base64\n\nk3F1b3Rlc5QgYW5kIIAg\nZXVybw==\n",
			"“quotes” and € euro", "“quotes”"},
		{"shift_jis", "Subject: =?ISO-2022-JP?B?GyRCRnxLXDhsGyhC?=\nContent-Type: text/plain; charset=Shift_JIS\nContent-Transfer-Encoding: base64\n\nk/qWe4zq\n",
			"日本語", "日本語"},
		{"no content-type is us-ascii", "Subject: plain\n\njust text\n", "just text\n", "plain"},
		{"utf-8 8bit", "Subject: =?utf-8?q?caf=C3=A9?=\nContent-Type: text/plain; charset=utf-8\nContent-Transfer-Encoding: 8bit\n\ncafé ☕\n", "café ☕\n", "café"},
	} {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			m, err := ParseMessage(crlf("From: a@example.test\n" + c.msg))
			if err != nil {
				t.Fatal(err)
			}
			if m.Text != c.text || m.Subject != c.subject || m.TextType != "text/plain" {
				t.Errorf("text %q subject %q type %q; want %q, %q (notes %v)", m.Text, m.Subject, m.TextType, c.text, c.subject, m.Notes)
			}
		})
	}
}

func TestParseUnknownCharsetIsNotedNotFatal(t *testing.T) {
	t.Parallel()
	m, err := ParseMessage(crlf("Content-Type: text/plain; charset=x-klingon\n\nqapla'\n"))
	if err != nil || m.Text != "qapla'\n" || len(m.Notes) != 1 {
		t.Errorf("text %q notes %v err %v", m.Text, m.Notes, err)
	}
}

func TestParseHTMLOnly(t *testing.T) {
	t.Parallel()
	m, err := ParseMessage(crlf(`Content-Type: text/html; charset=utf-8

<html><head><title>T</title><style>p{color:red}</style></head>
<body><script>alert(1)</script><p>Hello&nbsp;<b>world</b> &amp; friends</p>
<ul><li>one</li><li>two</li></ul>line<br>break</body></html>
`))
	if err != nil {
		t.Fatal(err)
	}
	want := "Hello\u00a0world & friends\n\n* one\n* two\nline\nbreak\n"
	if m.Text != want || m.TextType != "text/html" {
		t.Errorf("text %q (%s), want %q", m.Text, m.TextType, want)
	}
}

func TestParseAlternativePrefersPlainAndListsAttachments(t *testing.T) {
	t.Parallel()
	m, err := ParseMessage(crlf(`From: =?utf-8?q?J=C3=B6rg?= <j@example.test>
To: a@example.test, "B, C" <b@example.test>
Message-ID: <m1@example.test>
References: <r1@x> <r2@x>
In-Reply-To: <r2@x>
Content-Type: multipart/mixed; boundary=outer

--outer
Content-Type: multipart/alternative; boundary=inner

--inner
Content-Type: text/plain; charset=us-ascii

plain version
--inner
Content-Type: text/html

<p>html version</p>
--inner--
--outer
Content-Type: application/pdf
Content-Disposition: attachment; filename*=utf-8''r%C3%A9sum%C3%A9.pdf
Content-Transfer-Encoding: base64

JVBERi0=
--outer
Content-Type: text/plain; name="=?utf-8?q?n=C3=B6tes.txt?="
Content-Disposition: attachment

a text file
--outer
Content-Type: image/png
Content-Transfer-Encoding: base64

iVBORw==
--outer--
`))
	if err != nil {
		t.Fatal(err)
	}
	if m.Text != "plain version" {
		t.Errorf("text %q", m.Text)
	}
	if len(m.From) != 1 || m.From[0].Name != "Jörg" || len(m.To) != 2 || m.To[1].Name != "B, C" {
		t.Errorf("from %v to %v", m.From, m.To)
	}
	if m.MessageID != "<m1@example.test>" || m.InReplyTo != "<r2@x>" || strings.Join(m.References, " ") != "<r1@x> <r2@x>" {
		t.Errorf("ids %q %q %q", m.MessageID, m.InReplyTo, m.References)
	}
	want := []Part{
		{Index: 1, Filename: "résumé.pdf", ContentType: "application/pdf", Size: 5},
		{Index: 2, Filename: "nötes.txt", ContentType: "text/plain", Size: 11},
		{Index: 3, ContentType: "image/png", Size: 4},
	}
	if len(m.Attachments) != len(want) {
		t.Fatalf("attachments %+v", m.Attachments)
	}
	for i, w := range want {
		g := m.Attachments[i]
		if g.Index != w.Index || g.Filename != w.Filename || g.ContentType != w.ContentType || g.Size != w.Size {
			t.Errorf("attachment %d: %+v, want %+v", i, g, w)
		}
	}
	if string(m.Attachments[0].Data) != "%PDF-" {
		t.Errorf("pdf data %q", m.Attachments[0].Data)
	}
}

// TestComposeParseRoundTrip: what we send, we read back the same.
func TestComposeParseRoundTrip(t *testing.T) {
	t.Parallel()
	d := Draft{From: &mail.Address{Name: "Jörg Müller", Address: "j@example.test"}, To: []*mail.Address{addr("you@example.test")},
		Subject: "Grüße 📬", Text: "Zeile eins\nZeile zwei: äöü\n",
		Attachments: []Attachment{{Filename: "../évil/ name.pdf ", Data: []byte("%PDF-1.4\x00\x01")}}}
	c, err := Compose(d)
	if err != nil {
		t.Fatal(err)
	}
	m, err := ParseMessage(c.Raw)
	if err != nil {
		t.Fatal(err)
	}
	if m.Subject != d.Subject || m.Text != d.Text || m.From[0].Name != "Jörg Müller" || m.MessageID != c.MessageID {
		t.Errorf("came back as %+v", m)
	}
	if len(m.Attachments) != 1 || !bytes.Equal(m.Attachments[0].Data, d.Attachments[0].Data) ||
		m.Attachments[0].Filename != "../évil/ name.pdf" || m.Attachments[0].ContentType != "application/pdf" {
		t.Errorf("attachments %+v", m.Attachments)
	}
}

func TestPrintable(t *testing.T) {
	t.Parallel()
	in := "ok\ttab\nline \x1b]0;pwned\x07 \x1b[2J \u202egnp.exe \u009b \xff"
	got := Printable(in)
	if strings.ContainsAny(got, "\x1b\x07\u202e\u009b") || !utf8.ValidString(got) || !strings.HasPrefix(got, "ok\ttab\nline ") {
		t.Errorf("Printable(%q) = %q", in, got)
	}
}

// TestParseBrokenHeaderLine: a header line that is no field (any sender
// can put one there) is left out with a note; the message is still read,
// and so can be answered and forwarded. It failed whole before.
func TestParseBrokenHeaderLine(t *testing.T) {
	raw := "From: a@b.test\r\nbroken header line\r\nSubject: still\r\n here\r\n\r\nthe text\r\n"
	m, err := ParseMessage([]byte(raw))
	if err != nil {
		t.Fatal(err)
	}
	if m.Subject != "still here" || len(m.From) != 1 || !strings.Contains(m.Text, "the text") || len(m.Notes) != 1 {
		t.Errorf("got subject %q, from %v, text %q, notes %q", m.Subject, m.From, m.Text, m.Notes)
	}
	// A header without its empty line, a continuation with nothing
	// before it, a name with a space: read as far as they go.
	for _, raw := range []string{"Subject: only a header", " lone continuation\r\nSubject: s\r\n\r\nb", "Bad Name: x\r\nSubject: s\r\n\r\nb"} {
		if m, err := ParseMessage([]byte(raw)); err != nil || !strings.HasPrefix(m.Subject, "s") && !strings.HasPrefix(m.Subject, "only") {
			t.Errorf("%q: %+v, %v", raw, m, err)
		}
	}
}

package mua

import (
	"mime"
	"net/mail"
	"strings"
	"testing"
	"unicode/utf8"
)

// FuzzParseMessage: any message from a server parses without panic,
// what a terminal gets is free of control characters, and every
// attachment name it carries is made safe.
func FuzzParseMessage(f *testing.F) {
	for _, s := range []string{
		"Subject: hi\r\n\r\nbody\r\n",
		"Content-Type: multipart/mixed; boundary=b\r\n\r\n--b\r\nContent-Type: text/plain; charset=iso-8859-1\r\nContent-Transfer-Encoding: quoted-printable\r\n\r\nK=F6ln\r\n--b\r\nContent-Type: application/pdf; name=\"../x.pdf\"\r\nContent-Transfer-Encoding: base64\r\n\r\nJVBERi0=\r\n--b--\r\n",
		"Content-Type: multipart/alternative; boundary=a\r\n\r\n--a\r\nContent-Type: text/html\r\n\r\n<p>x<script>y</script></p>\r\n--a--\r\n",
		"Content-Type: message/rfc822\r\n\r\nSubject: =?utf-8?b?w6k=?=\r\n\r\ninner\r\n",
		"Subject: =?x-unknown?q?a?=\r\nContent-Type: text/plain; charset=x-unknown\r\nContent-Transfer-Encoding: base64\r\n\r\n!!!\r\n",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, raw []byte) {
		m, err := ParseMessage(raw)
		if err != nil {
			return
		}
		for _, s := range []string{Printable(m.Text), Printable(m.Subject)} {
			if !utf8.ValidString(s) || strings.ContainsAny(s, "\x1b\x07\x00\r") {
				t.Fatalf("Printable left control characters: %q", s)
			}
		}
		for _, a := range m.Attachments {
			checkSafeName(t, SafeFilename(a.Filename))
		}
	})
}

func checkSafeName(t *testing.T, name string) {
	t.Helper()
	if strings.ContainsAny(name, "/\\\x00") || strings.HasPrefix(name, ".") || len(name) > maxName ||
		!utf8.ValidString(name) || name != strings.TrimSpace(name) {
		t.Fatalf("unsafe file name %q", name)
	}
}

func FuzzSafeFilename(f *testing.F) {
	for _, s := range []string{"a.pdf", "../../etc/passwd", `..\x`, ".", "", "\u202etxt.exe", strings.Repeat("é", 300) + ".tar.gz"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) { checkSafeName(t, SafeFilename(s)) })
}

// FuzzHeaderRoundTrip: a subject and a display name, whatever they hold,
// come back from Compose → net/mail as they went in (control characters
// aside), and no line of the header passes 78 characters unless one
// word is longer.
func FuzzHeaderRoundTrip(f *testing.F) {
	for _, s := range [][2]string{{"hello", "Ann"}, {"Grüße, Köln", "Müller, Hans"}, {"=?utf-8?q?x?=", `"q" \ b`}, {"日本語 📬", "山田"}} {
		f.Add(s[0], s[1])
	}
	f.Fuzz(func(t *testing.T, subject, name string) {
		if !utf8.ValidString(subject) || !utf8.ValidString(name) {
			return
		}
		c, err := Compose(Draft{From: &mail.Address{Name: name, Address: "me@example.test"},
			To: []*mail.Address{addr("you@example.test")}, Subject: subject})
		if err != nil {
			t.Fatal(err)
		}
		msg, err := mail.ReadMessage(strings.NewReader(string(c.Raw)))
		if err != nil {
			t.Fatalf("unreadable: %v\n%s", err, c.Raw)
		}
		got, err := new(mime.WordDecoder).DecodeHeader(msg.Header.Get("Subject"))
		if want := strings.TrimSpace(oneLine(subject)); err != nil || strings.TrimSpace(got) != want {
			t.Fatalf("subject %q came back as %q (%v)\n%s", want, got, err, c.Raw)
		}
		from, err := (&mail.AddressParser{}).Parse(msg.Header.Get("From"))
		if want := strings.TrimSpace(oneLine(name)); err != nil || from.Name != want || from.Address != "me@example.test" {
			t.Fatalf("name %q came back as %+v (%v)\n%s", want, from, err, c.Raw)
		}
	})
}

package message

import (
	"bytes"
	"fmt"
	"io"
	"mime"
	"mime/multipart"
	"mime/quotedprintable"
	"net/mail"
	"strings"
	"testing"
)

func downgrade(t testing.TB, in string) string {
	t.Helper()
	var out bytes.Buffer
	if err := Downgrade(&out, strings.NewReader(in), int64(len(in))); err != nil {
		t.Fatal(err)
	}
	return out.String()
}

// check7bit fails if out has an octet over 127 outside its header, or a
// line over 998 octets.
func check7bit(t testing.TB, out string) {
	t.Helper()
	_, body, _ := strings.Cut(out, "\r\n\r\n")
	for i := range len(body) {
		if body[i] >= 0x80 {
			t.Fatalf("8-bit octet left at %d: …%q…", i, body[max(0, i-20):min(len(body), i+20)])
		}
	}
	if n := longest(out); n > MaxLine {
		t.Fatalf("line of %d octets", n)
	}
}

func qpDecode(t testing.TB, s string) string {
	t.Helper()
	b, err := io.ReadAll(quotedprintable.NewReader(strings.NewReader(s)))
	if err != nil {
		t.Fatalf("quoted-printable %q: %v", s, err)
	}
	return string(b)
}

// TestDowngradePlainMessage: a message without MIME fields and an 8-bit
// body gets MIME-Version, a Content-Type naming its charset when it is
// UTF-8 (unknown-8bit otherwise) and a quoted-printable body that decodes
// to the original text.
func TestDowngradePlainMessage(t *testing.T) {
	body := "Grüße aus Köln, ça va?\r\n" + strings.Repeat("é", 100) + "\r\ntrailing space \r\n-- \r\nsig\r\n"
	for _, c := range []struct{ body, charset string }{
		{body, "utf-8"},
		{"caf\xe9\r\n", "unknown-8bit"},
	} {
		in := "From: a@b.test\r\nSubject: hi\r\nContent-Transfer-Encoding: 8bit\r\n\r\n" + c.body
		out := downgrade(t, in)
		check7bit(t, out)
		msg, err := mail.ReadMessage(strings.NewReader(out))
		if err != nil {
			t.Fatal(err)
		}
		if msg.Header.Get("MIME-Version") != "1.0" || msg.Header.Get("Content-Type") != "text/plain; charset="+c.charset ||
			msg.Header.Get("Content-Transfer-Encoding") != "quoted-printable" || len(msg.Header["Content-Transfer-Encoding"]) != 1 {
			t.Errorf("header: %q", msg.Header)
		}
		raw, _ := io.ReadAll(msg.Body)
		if got := qpDecode(t, string(raw)); got != c.body {
			t.Errorf("body decodes to %q, want %q", got, c.body)
		}
	}
	if in := "Subject: ascii\r\n\r\nplain\r\n"; downgrade(t, in) != in {
		t.Error("a 7-bit message changed")
	}
}

const downgradeMultipart = "From: a@b.test\r\n" +
	"MIME-Version: 1.0\r\n" +
	"Content-Type: multipart/mixed; boundary=\"xx\"\r\n" +
	"\r\n" +
	"preamble\r\n" +
	"--xx\r\n" +
	"Content-Type: text/plain; charset=us-ascii\r\n" +
	"\r\n" +
	"seven bit\r\n" +
	"--xx\r\n" +
	"Content-Type: text/plain; charset=utf-8\r\n" +
	"Content-Transfer-Encoding:\r\n" +
	" 8bit\r\n" +
	"X-After: kept\r\n" +
	"\r\n" +
	"eight bit: naïve café\r\n" +
	"--xx\r\n" +
	"Content-Type: application/octet-stream\r\n" +
	"Content-Transfer-Encoding: base64\r\n" +
	"\r\n" +
	"AAEC\r\n" +
	"--xx\r\n" +
	"Content-Type: message/rfc822\r\n" +
	"\r\n" +
	"Subject: inner\r\n" +
	"\r\n" +
	"inner body ü\r\n" +
	"--xx--\r\n" +
	"epilogue\r\n"

// TestDowngradeMultipart: only the 8-bit parts change; boundaries,
// preamble, epilogue, the 7-bit and base64 parts are copied; the message
// inside message/rfc822 is converted, not its container.
func TestDowngradeMultipart(t *testing.T) {
	out := downgrade(t, downgradeMultipart)
	check7bit(t, out)
	for _, keep := range []string{"preamble\r\n--xx\r\n", "seven bit\r\n--xx\r\n", "AAEC\r\n--xx\r\n", "--xx--\r\nepilogue\r\n", "X-After: kept\r\n"} {
		if !strings.Contains(out, keep) {
			t.Errorf("%q is gone: %s", keep, out)
		}
	}
	msg, err := mail.ReadMessage(strings.NewReader(out))
	if err != nil {
		t.Fatal(err)
	}
	_, params, _ := mime.ParseMediaType(msg.Header.Get("Content-Type"))
	mr := multipart.NewReader(msg.Body, params["boundary"])
	var got []string
	for {
		p, err := mr.NextRawPart()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(p)
		text := string(b)
		if p.Header.Get("Content-Transfer-Encoding") == "quoted-printable" {
			text = qpDecode(t, text)
		}
		got = append(got, text)
	}
	want := []string{"seven bit", "eight bit: naïve café", "AAEC", "Subject: inner\r\nMIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: quoted-printable\r\n\r\ninner body =C3=BC"}
	if strings.Join(got, "|") != strings.Join(want, "|") {
		t.Errorf("parts:\n%q\nwant\n%q", got, want)
	}
}

// TestDowngradeComposite: a multipart or message part labelled 8bit is
// labelled 7bit once what it holds is converted; one the parser left
// whole (nested past its depth limit, or without a delimiter) is never
// given an encoding (RFC 2045 §6.4), it goes as it is.
func TestDowngradeComposite(t *testing.T) {
	in := "MIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=b\r\nContent-Transfer-Encoding: 8bit\r\n\r\n" +
		"--b\r\nContent-Type: message/rfc822\r\nContent-Transfer-Encoding: 8bit\r\n\r\nSubject: in\r\n\r\nné\r\n--b--\r\n"
	out := downgrade(t, in)
	if strings.Contains(out, "8bit") || strings.Count(out, "Content-Transfer-Encoding: 7bit\r\n") != 2 || !strings.Contains(out, "n=C3=A9") {
		t.Errorf("composite labels:\n%s", out)
	}
	deep := "Content-Type: text/plain; charset=utf-8\r\n\r\nné\r\n"
	for i := range 101 {
		b := fmt.Sprintf("n%d", i)
		deep = "Content-Type: multipart/mixed; boundary=\"" + b + "\"\r\n\r\n--" + b + "\r\n" + deep + "--" + b + "--\r\n"
	}
	for _, in := range []string{
		"MIME-Version: 1.0\r\n" + deep,
		"MIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=zz\r\n\r\nno delimiter, 8-bit: é\r\n",
	} {
		if out := downgrade(t, in); strings.Contains(out, "quoted-printable") {
			t.Errorf("a composite part was encoded:\n%.300s", out)
		}
	}
}

// TestQPEncode: lines at most 76 octets, no line that starts with "-"
// (a soft line break could otherwise make a boundary), white space at a
// line end encoded, and the text decodes back (bare LFs become CRLF).
func TestQPEncode(t *testing.T) {
	for _, in := range []string{
		strings.Repeat("a", 74) + "--xx--" + strings.Repeat("b", 200),
		"tab\t\r\nspace \r\n",
		strings.Repeat("é", 60) + "\r\n",
		"bare\rCR and = sign\r\n",
		"",
		"-starts with dash\r\n--xx\r\n",
		strings.Repeat(" ", 200) + "\r\n",
	} {
		var b bytes.Buffer
		if err := qpEncode(&b, strings.NewReader(in)); err != nil {
			t.Fatal(err)
		}
		out := b.String()
		for line := range strings.Lines(out) {
			text := strings.TrimSuffix(line, "\r\n")
			if len(text) > 76 || strings.HasPrefix(text, "-") || strings.HasSuffix(text, " ") || strings.HasSuffix(text, "\t") || strings.ContainsAny(text, "\r\n") {
				t.Errorf("%.30q…: bad line %q", in, text)
			}
		}
		if got := qpDecode(t, out); got != in {
			t.Errorf("%.30q… decodes to %.60q…", in, got)
		}
	}
}

// FuzzDowngrade: any message comes out 7-bit in its bodies (or, when its
// structure cannot be read, unchanged), a 7-bit one unchanged, and the
// result has as many parts as the original.
func FuzzDowngrade(f *testing.F) {
	f.Add([]byte(downgradeMultipart))
	f.Add([]byte("Subject: x\r\n\r\nüber\r\n"))
	f.Add([]byte("Content-Type: multipart/alternative; boundary=b\r\n\r\n--b\r\n\r\nä\r\n--b\r\nContent-Type: message/rfc822\r\n\r\nX: y\r\n\r\nö\r\n--b--\r\n"))
	f.Fuzz(func(t *testing.T, in []byte) {
		var out bytes.Buffer
		if err := Downgrade(&out, bytes.NewReader(in), int64(len(in))); err != nil {
			t.Fatal(err)
		}
		before, err := Parse(in, Limits{})
		if err != nil {
			if !bytes.Equal(out.Bytes(), in) {
				t.Fatal("an unreadable message changed")
			}
			return
		}
		if bytes.IndexFunc(in, func(r rune) bool { return r >= 0x80 }) < 0 && !bytes.Equal(out.Bytes(), in) {
			t.Fatalf("a 7-bit message changed:\n%q\n%q", in, out.Bytes())
		}
		after, err := Parse(out.Bytes(), Limits{})
		if err != nil {
			t.Fatalf("result unreadable: %v\n%q", err, out.Bytes())
		}
		if a, b := countParts(before), countParts(after); a != b {
			t.Fatalf("%d parts became %d:\n%q\n%q", a, b, in, out.Bytes())
		}
		checkLeaves7bit(t, out.Bytes(), after)
	})
}

func countParts(p *Part) int {
	n := 1
	for _, c := range p.Parts {
		n += countParts(c)
	}
	if p.Message != nil {
		n += countParts(p.Message)
	}
	return n
}

func checkLeaves7bit(t *testing.T, data []byte, p *Part) {
	t.Helper()
	for _, c := range p.Parts {
		checkLeaves7bit(t, data, c)
	}
	if p.Message != nil {
		checkLeaves7bit(t, data, p.Message)
	}
	if len(p.Parts) > 0 || p.Message != nil {
		return
	}
	if p.Encoding == "base64" || p.Encoding == "quoted-printable" || p.Type == "multipart" || p.Type == "message" {
		return // copied as it was: an 8-bit octet there was the sender's, or no encoding is allowed
	}
	if i := bytes.IndexFunc(data[p.BodyStart:p.End], func(r rune) bool { return r >= 0x80 }); i >= 0 {
		t.Fatalf("8-bit body left in a %s/%s part (%s):\n%q", p.Type, p.Subtype, p.Encoding, data)
	}
}

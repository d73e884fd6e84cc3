package message

import (
	"strings"
	"testing"
	"time"
)

func crlf(s string) string { return strings.ReplaceAll(s, "\n", "\r\n") }

func body(data string, p *Part) string { return data[p.BodyStart:p.End] }

func TestSimpleText(t *testing.T) {
	t.Parallel()
	msg := crlf("Subject: hi\nContent-Type: text/plain; charset=\"UTF-8\"; format=flowed\n\nline1\nline2\n")
	p, err := Parse([]byte(msg), Limits{})
	if err != nil {
		t.Fatal(err)
	}
	if p.Type != "text" || p.Subtype != "plain" || p.Param("charset") != "UTF-8" || body(msg, p) != "line1\r\nline2\r\n" || p.BodyLines != 2 {
		t.Errorf("%+v body %q", p, body(msg, p))
	}
	if p.Get("subject") != "hi" || msg[p.HeaderStart:p.BodyStart] != crlf("Subject: hi\nContent-Type: text/plain; charset=\"UTF-8\"; format=flowed\n\n") {
		t.Error("header bounds")
	}
}

const mixed = `From: a@b.test
Content-Type: multipart/mixed; boundary="outer"

preamble
--outer
Content-Type: multipart/alternative; boundary=outerinner

--outerinner
Content-Type: text/plain

plain text
--outerinner
Content-Type: text/html

<p>html</p>
--outerinner--
--outer
Content-Type: application/pdf; name="x.pdf"
Content-Disposition: attachment; filename="x.pdf"
Content-Transfer-Encoding: base64

SGVsbG8=
--outer
Content-Type: message/rfc822

Subject: inner
Content-Type: multipart/mixed; boundary=b2

--b2

inner body
--b2--
--outer--
epilogue
`

func TestNestedStructure(t *testing.T) {
	t.Parallel()
	msg := crlf(mixed)
	p, err := Parse([]byte(msg), Limits{})
	if err != nil {
		t.Fatal(err)
	}
	if len(p.Parts) != 3 {
		t.Fatalf("%d parts", len(p.Parts))
	}
	alt := p.Parts[0]
	if alt.Subtype != "alternative" || len(alt.Parts) != 2 {
		t.Fatalf("alternative: %+v", alt)
	}
	if got := body(msg, alt.Parts[0]); got != "plain text" {
		t.Errorf("plain %q", got)
	}
	if got := body(msg, alt.Parts[1]); got != "<p>html</p>" {
		t.Errorf("html %q", got)
	}
	pdf := p.Parts[1]
	if pdf.Encoding != "base64" || pdf.Disposition != "attachment" || pdf.DispositionParams[0].Value != "x.pdf" || body(msg, pdf) != "SGVsbG8=" {
		t.Errorf("pdf %+v %q", pdf, body(msg, pdf))
	}
	rfc := p.Parts[2]
	if rfc.Message == nil || rfc.Message.Get("Subject") != "inner" || len(rfc.Message.Parts) != 1 {
		t.Fatalf("rfc822 %+v", rfc)
	}
	if got := body(msg, rfc.Message.Parts[0]); got != "inner body" {
		t.Errorf("inner part %q", got)
	}
	if got := body(msg, rfc); !strings.HasPrefix(got, "Subject: inner") || !strings.HasSuffix(got, "--b2--") {
		t.Errorf("rfc822 body %q", got)
	}
	if p.End != int64(len(msg)) {
		t.Errorf("root end %d of %d", p.End, len(msg))
	}
}

func TestEdgeCases(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name, msg string
		parts     int
		check     func(t *testing.T, msg string, p *Part)
	}{
		{"no close delimiter", "Content-Type: multipart/mixed; boundary=x\n\n--x\n\na\n--x\n\nb\n", 2, func(t *testing.T, msg string, p *Part) {
			if got := body(msg, p.Parts[1]); got != "b\r\n" {
				t.Errorf("last part %q", got)
			}
		}},
		{"no boundary parameter", "Content-Type: multipart/mixed\n\n--x\nstuff\n", 0, nil},
		{"delimiter with trailing spaces", "Content-Type: multipart/mixed; boundary=x\n\n--x  \n\na\n--x--  \n", 1, nil},
		{"digest default", "Content-Type: multipart/digest; boundary=d\n\n--d\n\nSubject: one\n\nbody\n--d--\n", 1, func(t *testing.T, msg string, p *Part) {
			c := p.Parts[0]
			if c.Type != "message" || c.Message == nil || c.Message.Get("Subject") != "one" {
				t.Errorf("digest child %+v", c)
			}
		}},
		{"header only", "Subject: x", 0, func(t *testing.T, msg string, p *Part) {
			if p.BodyStart != p.End || p.Get("Subject") != "x" {
				t.Errorf("%+v", p)
			}
		}},
		{"empty header", "\nbody", 0, func(t *testing.T, msg string, p *Part) {
			if len(p.Header) != 0 || body(msg, p) != "body" {
				t.Errorf("%+v", p)
			}
		}},
		{"epilogue delimiter ignored", "Content-Type: multipart/mixed; boundary=x\n\n--x\n\na\n--x--\n--x\n\nnot a part\n", 1, nil},
	} {
		msg := crlf(tc.msg)
		p, err := Parse([]byte(msg), Limits{})
		if err != nil {
			t.Fatalf("%s: %v", tc.name, err)
		}
		if len(p.Parts) != tc.parts {
			t.Errorf("%s: %d parts, want %d", tc.name, len(p.Parts), tc.parts)
			continue
		}
		if tc.check != nil {
			tc.check(t, msg, p)
		}
	}
}

func TestLFOnly(t *testing.T) {
	t.Parallel()
	msg := "Content-Type: multipart/mixed; boundary=x\n\n--x\n\nlf body\n--x--\n"
	p, _ := Parse([]byte(msg), Limits{})
	if len(p.Parts) != 1 || body(msg, p.Parts[0]) != "lf body" {
		t.Errorf("%+v", p.Parts)
	}
}

func TestBombsAreBounded(t *testing.T) {
	t.Parallel()
	var b strings.Builder
	for i := 0; i < 1000; i++ {
		b.WriteString("Content-Type: multipart/mixed; boundary=b" + itoa3(i) + "\r\n\r\n--b" + itoa3(i) + "\r\n")
	}
	start := time.Now()
	p, err := Parse([]byte(b.String()), Limits{})
	if err != nil || time.Since(start) > time.Second {
		t.Fatalf("deep: %v in %v", err, time.Since(start))
	}
	depth := 0
	for q := p; len(q.Parts) > 0; q = q.Parts[0] {
		depth++
	}
	if depth > 100 {
		t.Errorf("depth %d over the limit", depth)
	}
	b.Reset()
	b.WriteString("Content-Type: multipart/mixed; boundary=x\r\n\r\n")
	for i := 0; i < 50000; i++ {
		b.WriteString("--x\r\n\r\na\r\n")
	}
	start = time.Now()
	p, err = Parse([]byte(b.String()), Limits{})
	if err != nil || time.Since(start) > time.Second || len(p.Parts) > 10000 {
		t.Fatalf("wide: %v, %d parts in %v", err, len(p.Parts), time.Since(start))
	}
	big := "X: " + strings.Repeat("a", 2<<20) + "\r\n\r\n"
	if _, err := Parse([]byte(big), Limits{}); err != ErrHeaderTooLarge {
		t.Errorf("huge header: %v", err)
	}
}

func itoa3(i int) string {
	return strings.TrimLeft(strings.Repeat("0", 0)+string(rune('0'+i/100%10))+string(rune('0'+i/10%10))+string(rune('0'+i%10)), "")
}

func TestEnvelope(t *testing.T) {
	t.Parallel()
	msg := crlf("Date: Mon, 1 Jan 2024 00:00:00 +0000\nSubject: =?utf-8?q?caf=C3=A9?=\nFrom: \"Alice A.\" <alice@a.test>\nTo: undisclosed-recipients:;\nCc: Team: b@b.test, \"C, Jr\" <c@c.test>;, d@d.test (Dee)\nBcc: broken\nMessage-ID: <m@a.test>\n\nx")
	p, _ := Parse([]byte(msg), Limits{})
	e := p.Envelope()
	if e.Subject != "=?utf-8?q?caf=C3=A9?=" || e.MessageID != "<m@a.test>" {
		t.Errorf("raw fields: %+v", e)
	}
	if len(e.From) != 1 || e.From[0].Name != "Alice A." || e.From[0].Mailbox != "alice" || e.From[0].Host != "a.test" {
		t.Errorf("from %+v", e.From)
	}
	if len(e.Sender) != 1 || len(e.ReplyTo) != 1 {
		t.Error("sender/reply-to defaults")
	}
	if len(e.To) != 2 || !e.To[0].Group || e.To[0].Mailbox != "undisclosed-recipients" || !e.To[1].GroupEnd {
		t.Errorf("to %+v", e.To)
	}
	if len(e.Cc) != 5 || !e.Cc[0].Group || e.Cc[2].Name != "C, Jr" || !e.Cc[3].GroupEnd || e.Cc[4].Name != "Dee" {
		t.Errorf("cc %+v", e.Cc)
	}
	if len(e.Bcc) != 1 || e.Bcc[0].Host != "MISSING_DOMAIN" {
		t.Errorf("bcc %+v", e.Bcc)
	}
}

func TestFilterHeader(t *testing.T) {
	t.Parallel()
	h := []byte(crlf("Subject: a\n folded\nFrom: x\nTo: y\n\n"))
	if got := string(FilterHeader(h, []string{"SUBJECT", "to"}, false)); got != crlf("Subject: a\n folded\nTo: y\n\n") {
		t.Errorf("fields %q", got)
	}
	if got := string(FilterHeader(h, []string{"subject"}, true)); got != crlf("From: x\nTo: y\n\n") {
		t.Errorf("not %q", got)
	}
}

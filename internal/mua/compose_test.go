package mua

import (
	"bytes"
	"encoding/base64"
	"fmt"
	"io"
	"mime"
	"mime/multipart"
	"mime/quotedprintable"
	"net/mail"
	"strings"
	"testing"
	"time"
)

func addr(s string) *mail.Address {
	a, err := mail.ParseAddress(s)
	if err != nil {
		panic(err)
	}
	return a
}

// parsed is a composed message read back with the standard library.
type parsed struct {
	header mail.Header
	body   []byte
}

func parseBack(t *testing.T, raw []byte) parsed {
	t.Helper()
	checkWire(t, raw)
	m, err := mail.ReadMessage(bytes.NewReader(raw))
	if err != nil {
		t.Fatalf("net/mail cannot read it: %v\n%s", err, raw)
	}
	b, _ := io.ReadAll(m.Body)
	return parsed{m.Header, b}
}

// checkWire: CRLF everywhere, no line over 998 octets, header lines
// within 78 where they can be, 7-bit clean.
func checkWire(t *testing.T, raw []byte) {
	t.Helper()
	s := string(raw)
	if strings.Contains(strings.ReplaceAll(s, "\r\n", ""), "\n") || strings.Contains(strings.ReplaceAll(s, "\r\n", ""), "\r") {
		t.Errorf("bare CR or LF in the message:\n%q", s)
	}
	head, _, _ := strings.Cut(s, "\r\n\r\n")
	for _, line := range strings.Split(s, "\r\n") {
		if len(line) > 998 {
			t.Errorf("line of %d octets", len(line))
		}
	}
	for _, line := range strings.Split(head, "\r\n") {
		if len(line) > maxLine {
			t.Errorf("header line of %d characters: %q", len(line), line)
		}
	}
	if !isASCII(s) {
		t.Errorf("8-bit octets in a composed message:\n%s", s)
	}
}

func TestComposePlainText(t *testing.T) {
	t.Parallel()
	c, err := Compose(Draft{From: addr("Me <me@example.test>"), To: []*mail.Address{addr("you@example.test")},
		Bcc: []*mail.Address{addr("secret@example.test")}, Subject: "hello", Text: "line one\nline two"})
	if err != nil {
		t.Fatal(err)
	}
	p := parseBack(t, c.Raw)
	for k, want := range map[string]string{
		"From": "Me <me@example.test>", "To": "you@example.test", "Subject": "hello", "Mime-Version": "1.0",
		"Content-Type": "text/plain; charset=us-ascii", "Content-Transfer-Encoding": "7bit", "Message-Id": c.MessageID,
	} {
		if got := p.header.Get(k); got != want {
			t.Errorf("%s = %q, want %q", k, got, want)
		}
	}
	if _, err := p.header.Date(); err != nil {
		t.Errorf("Date: %v", err)
	}
	if p.header.Get("Bcc") != "" || strings.Contains(string(c.Raw), "secret@") {
		t.Errorf("Bcc in the message sent:\n%s", c.Raw)
	}
	if cp := parseBack(t, c.Copy); cp.header.Get("Bcc") != "secret@example.test" {
		t.Errorf("the Sent copy has Bcc %q", cp.header.Get("Bcc"))
	}
	if string(p.body) != "line one\r\nline two\r\n" {
		t.Errorf("body = %q", p.body)
	}
	if strings.Join(c.Rcpts, " ") != "you@example.test secret@example.test" || c.From != "me@example.test" {
		t.Errorf("envelope %s → %v", c.From, c.Rcpts)
	}
	if !strings.HasPrefix(c.MessageID, "<") || !strings.HasSuffix(c.MessageID, "@example.test>") {
		t.Errorf("Message-ID %q", c.MessageID)
	}
	if c.Body8 || c.UTF8 {
		t.Errorf("Body8 %v UTF8 %v for an ASCII message", c.Body8, c.UTF8)
	}
}

func TestComposeQuotedPrintableWhenNeeded(t *testing.T) {
	t.Parallel()
	long := strings.Repeat("x", 1200)
	for _, c := range []struct {
		name, text, charset, cte string
	}{
		{"ascii", "plain\n", "us-ascii", "7bit"},
		{"998 octets", strings.Repeat("y", 998) + "\n", "us-ascii", "7bit"},
		{"8bit", "Grüße aus Köln\n", "utf-8", "quoted-printable"},
		{"long line", long + "\n", "us-ascii", "quoted-printable"},
		{"control", "bell\a\n", "us-ascii", "quoted-printable"},
	} {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			m, err := Compose(Draft{From: addr("me@example.test"), To: []*mail.Address{addr("you@example.test")}, Text: c.text})
			if err != nil {
				t.Fatal(err)
			}
			p := parseBack(t, m.Raw)
			mt, params, _ := mime.ParseMediaType(p.header.Get("Content-Type"))
			if mt != "text/plain" || params["charset"] != c.charset || p.header.Get("Content-Transfer-Encoding") != c.cte {
				t.Fatalf("Content-Type %q, CTE %q; want charset %s, %s", p.header.Get("Content-Type"), p.header.Get("Content-Transfer-Encoding"), c.charset, c.cte)
			}
			body := p.body
			if c.cte == "quoted-printable" {
				body, _ = io.ReadAll(quotedprintable.NewReader(bytes.NewReader(body)))
			}
			if got := strings.ReplaceAll(string(body), "\r\n", "\n"); got != c.text {
				t.Errorf("decoded body %q, want %q", got, c.text)
			}
		})
	}
}

func TestComposeRejectsNonUTF8Text(t *testing.T) {
	t.Parallel()
	if _, err := Compose(Draft{From: addr("me@example.test"), To: []*mail.Address{addr("you@example.test")}, Text: "caf\xe9"}); err == nil {
		t.Error("Latin-1 text was labelled UTF-8")
	}
}

// RFC 2047 round trips: what we encode, the standard decoder gives back.
func TestEncodedWordsRoundTrip(t *testing.T) {
	t.Parallel()
	subjects := []string{
		"plain ascii",
		"looks =?like?= an encoded word",
		"Grüße, mit Anhang",
		"日本語の件名です",
		"emoji 📬 and more",
		"a long subject with ümlauts that goes on and on beyond the seventy-five characters of one encoded word, and further",
		"tab\tand newline\r\ninjected: header",
	}
	names := []string{"Jörg Müller", "Müller, Hans (the boss)", `"quoted" name`, "山田 太郎", "plain name"}
	for i, s := range subjects {
		n := names[i%len(names)]
		c, err := Compose(Draft{From: &mail.Address{Name: n, Address: "me@example.test"},
			To: []*mail.Address{{Name: names[(i+1)%len(names)], Address: "you@example.test"}}, Subject: s})
		if err != nil {
			t.Fatal(err)
		}
		p := parseBack(t, c.Raw)
		got, err := new(mime.WordDecoder).DecodeHeader(p.header.Get("Subject"))
		if want := oneLine(s); err != nil || got != want {
			t.Errorf("subject %q came back as %q (%v); header %q", want, got, err, p.header.Get("Subject"))
		}
		from, err := (&mail.AddressParser{}).Parse(p.header.Get("From"))
		if err != nil || from.Name != n || from.Address != "me@example.test" {
			t.Errorf("From %q came back as %+v (%v) from %q", n, from, err, p.header.Get("From"))
		}
		if strings.Contains(string(c.Raw), "\r\ninjected:") {
			t.Errorf("a line break in the subject started a header field:\n%s", c.Raw)
		}
	}
}

func TestComposeFoldsLongAddressLists(t *testing.T) {
	t.Parallel()
	var to []*mail.Address
	for i, n := range []string{"Ann", "Bob Builder", "Zoë Ärger", "Dee, Dee", "Eve", "Fay", "Gus", "Hal", "Ivy", "Jo"} {
		to = append(to, &mail.Address{Name: n, Address: fmt.Sprintf("person%d@example.test", i)})
	}
	c, err := Compose(Draft{From: addr("me@example.test"), To: to, Subject: "many"})
	if err != nil {
		t.Fatal(err)
	}
	p := parseBack(t, c.Raw) // checks the 78-character lines
	list, err := (&mail.AddressParser{}).ParseList(p.header.Get("To"))
	if err != nil || len(list) != len(to) {
		t.Fatalf("To came back as %v (%v)", list, err)
	}
	for i := range to {
		if list[i].Name != to[i].Name || list[i].Address != to[i].Address {
			t.Errorf("address %d: %v, want %v", i, list[i], to[i])
		}
	}
}

// TestComposeAttachments checks the golden structure: multipart/mixed of
// the text and each attachment, types from the extension or the content,
// RFC 2231 file names, base64 that decodes to the bytes.
func TestComposeAttachments(t *testing.T) {
	t.Parallel()
	pdf := []byte("%PDF-1.4\x00\xff binary")
	png := append([]byte("\x89PNG\r\n\x1a\n"), bytes.Repeat([]byte{0xab}, 300)...)
	d := Draft{From: addr("me@example.test"), To: []*mail.Address{addr("you@example.test")}, Subject: "files",
		Text: "see attached: Grüße\n",
		Attachments: []Attachment{
			{Filename: "report.pdf", Data: pdf},
			{Filename: "résumé €.png", Data: png},
			{Filename: "noext", Data: png},                          // sniffed
			{Filename: "data.unknownext", Data: []byte{0, 1, 2, 3}}, // nothing known
		}}
	c, err := Compose(d)
	if err != nil {
		t.Fatal(err)
	}
	p := parseBack(t, c.Raw)
	mt, params, err := mime.ParseMediaType(p.header.Get("Content-Type"))
	if err != nil || mt != "multipart/mixed" {
		t.Fatalf("Content-Type %q", p.header.Get("Content-Type"))
	}
	type got struct{ ctype, disp, filename, cte string }
	want := []got{
		{"text/plain", "", "", "quoted-printable"},
		{"application/pdf", "attachment", "report.pdf", "base64"},
		{"image/png", "attachment", "résumé €.png", "base64"},
		{"image/png", "attachment", "noext", "base64"},
		{"application/octet-stream", "attachment", "data.unknownext", "base64"},
	}
	datas := [][]byte{nil, pdf, png, png, {0, 1, 2, 3}}
	r := multipart.NewReader(bytes.NewReader(p.body), params["boundary"])
	for i := 0; ; i++ {
		part, err := r.NextRawPart()
		if err == io.EOF {
			if i != len(want) {
				t.Errorf("%d parts, want %d", i, len(want))
			}
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		if i >= len(want) {
			t.Fatalf("extra part %v", part.Header)
		}
		ct, _, _ := mime.ParseMediaType(part.Header.Get("Content-Type"))
		disp, dp, _ := mime.ParseMediaType(part.Header.Get("Content-Disposition"))
		g := got{ct, disp, dp["filename"], part.Header.Get("Content-Transfer-Encoding")}
		if g != want[i] {
			t.Errorf("part %d: %+v, want %+v", i, g, want[i])
		}
		b, _ := io.ReadAll(part)
		if g.cte == "base64" {
			for _, l := range strings.Split(strings.TrimSuffix(string(b), "\r\n"), "\r\n") {
				if len(l) > 76 {
					t.Errorf("part %d: base64 line of %d", i, len(l))
				}
			}
			dec, err := base64.StdEncoding.DecodeString(strings.ReplaceAll(string(b), "\r\n", ""))
			if err != nil || !bytes.Equal(dec, datas[i]) {
				t.Errorf("part %d: data does not come back (%v)", i, err)
			}
		}
	}
	if !strings.Contains(string(c.Raw), "filename*=utf-8''r%C3%A9sum%C3%A9%20%E2%82%AC.png") {
		t.Errorf("no RFC 2231 filename for the non-ASCII name:\n%s", c.Raw)
	}
}

func TestComposeNoMultipartWithoutAttachments(t *testing.T) {
	t.Parallel()
	c, _ := Compose(Draft{From: addr("me@example.test"), To: []*mail.Address{addr("you@example.test")}, Text: "x"})
	if strings.Contains(string(c.Raw), "multipart") {
		t.Errorf("multipart without attachments:\n%s", c.Raw)
	}
	// With an attachment and no text: no empty text part.
	c, _ = Compose(Draft{From: addr("me@example.test"), To: []*mail.Address{addr("you@example.test")},
		Attachments: []Attachment{{Filename: "a.txt", Data: []byte("hi\n")}}})
	if n := strings.Count(string(c.Raw), "Content-Disposition: attachment"); n != 1 || strings.Contains(string(c.Raw), "charset=us-ascii\r\nContent-Transfer-Encoding: 7bit") {
		t.Errorf("want one attachment part only:\n%s", c.Raw)
	}
}

func TestComposeThreadingFields(t *testing.T) {
	t.Parallel()
	date := time.Date(2024, 5, 1, 12, 0, 0, 0, time.FixedZone("", 2*3600))
	c, err := Compose(Draft{From: addr("me@example.test"), To: []*mail.Address{addr("you@example.test")},
		InReplyTo: "<b@x>", References: []string{"<a@x>", "<b@x>"}, Date: date, MessageID: "<c@x>"})
	if err != nil {
		t.Fatal(err)
	}
	p := parseBack(t, c.Raw)
	if p.header.Get("In-Reply-To") != "<b@x>" || p.header.Get("References") != "<a@x> <b@x>" ||
		p.header.Get("Message-Id") != "<c@x>" || p.header.Get("Date") != "Wed, 01 May 2024 12:00:00 +0200" {
		t.Errorf("header %v", p.header)
	}
}

func TestDetectType(t *testing.T) {
	t.Parallel()
	for _, c := range []struct{ name, data, want string }{
		{"a.pdf", "x", "application/pdf"},
		{"A.PDF", "x", "application/pdf"},
		{"notes", "just some text\n", "text/plain; charset=utf-8"},
		{"blob", "\x00\x01\x02\x03", "application/octet-stream"},
	} {
		if got := DetectType(c.name, []byte(c.data)); got != c.want {
			t.Errorf("DetectType(%q) = %q, want %q", c.name, got, c.want)
		}
	}
}

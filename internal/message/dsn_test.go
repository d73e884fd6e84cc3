package message

import (
	"bytes"
	"fmt"
	"io"
	"mime"
	"mime/multipart"
	"net/mail"
	"strings"
	"testing"
	"time"
)

func TestDSNStructure(t *testing.T) {
	t.Parallel()
	orig := "From: a@b.test\r\nSubject: original\r\n\r\nbody text\r\n"
	for _, headersOnly := range []bool{false, true} {
		d := DSN{
			ReportingMTA: "mx.example.test", To: "a@b.test", EnvID: "env-1", Arrival: time.Now(),
			Recipients: []DSNRecipient{{Final: "x@remote.test", Original: "rfc822;X@remote.test", Action: ActionFailed,
				Status: "5.1.1", RemoteMTA: "mx.remote.test", Diagnostic: "550 5.1.1 No such user\r\nsecond line"}},
			HeadersOnly: headersOnly, Original: strings.NewReader(orig),
		}
		raw, err := d.Build(time.Now())
		if err != nil {
			t.Fatal(err)
		}
		msg, err := mail.ReadMessage(bytes.NewReader(raw))
		if err != nil {
			t.Fatal(err)
		}
		mt, params, _ := mime.ParseMediaType(msg.Header.Get("Content-Type"))
		if mt != "multipart/report" || params["report-type"] != "delivery-status" {
			t.Fatalf("content type %q %v", mt, params)
		}
		if msg.Header.Get("Auto-Submitted") != "auto-replied" {
			t.Error("no Auto-Submitted")
		}
		mr := multipart.NewReader(msg.Body, params["boundary"])
		var types []string
		var status, third string
		for {
			p, err := mr.NextPart()
			if err == io.EOF {
				break
			}
			if err != nil {
				t.Fatal(err)
			}
			body, _ := io.ReadAll(p)
			types = append(types, p.Header.Get("Content-Type"))
			if len(types) == 2 {
				status = string(body)
			}
			if len(types) == 3 {
				third = string(body)
			}
		}
		want3 := "message/rfc822"
		if headersOnly {
			want3 = "text/rfc822-headers"
		}
		if len(types) != 3 || types[1] != "message/delivery-status" || types[2] != want3 {
			t.Fatalf("parts %q", types)
		}
		for _, f := range []string{"Reporting-MTA: dns; mx.example.test", "Original-Envelope-Id: env-1",
			"Final-Recipient: rfc822; x@remote.test", "Action: failed", "Status: 5.1.1",
			"Diagnostic-Code: smtp; 550 5.1.1 No such user second line", "Original-Recipient: rfc822;X@remote.test"} {
			if !strings.Contains(status, f) {
				t.Errorf("status part lacks %q:\n%s", f, status)
			}
		}
		if headersOnly == strings.Contains(third, "body text") {
			t.Errorf("headersOnly=%v, returned part %q", headersOnly, third)
		}
	}
}

// TestDSNHostileDiagnostic: a remote reply of 100 lines of 2,000
// characters with control octets, DEL and invalid UTF-8 makes a report
// whose lines stay within RFC 5322's 998 octets and hold no control
// octets but CRLF and the header fold's tab.
func TestDSNHostileDiagnostic(t *testing.T) {
	t.Parallel()
	var diag strings.Builder
	for i := range 100 {
		fmt.Fprintf(&diag, "550-5.1.1 line %d %s\x0b\x0c\x1b[2J\x7f\xff\xfe\r\n", i, strings.Repeat("z", 2000))
	}
	d := DSN{ReportingMTA: "mx.example.test", To: "a@b.test", EnvID: "env\x01" + strings.Repeat("e", 2000), Arrival: time.Now(),
		Recipients: []DSNRecipient{{Final: "x@remote.test", Action: ActionFailed, Status: "5.1.1", RemoteMTA: "mx.remote.test", Diagnostic: diag.String()}},
		Original:   strings.NewReader("Subject: x\r\n\r\nbody\r\n")}
	raw, err := d.Build(time.Now())
	if err != nil {
		t.Fatal(err)
	}
	for i, line := range strings.Split(string(raw), "\r\n") {
		if len(line) > 998 {
			t.Errorf("line %d has %d octets", i, len(line))
		}
		for _, c := range []byte(line) {
			if c < 0x20 && c != '\t' || c == 0x7f {
				t.Errorf("line %d holds the control octet %#x", i, c)
				break
			}
		}
	}
	if !strings.Contains(string(raw), "Diagnostic-Code: smtp; 550-5.1.1 line 0 zzz") {
		t.Error("the diagnostic's start is not kept")
	}
}

// TestDSNOriginalRecipientUTF8: an ORCPT of type utf-8 goes into the
// message/delivery-status encoded (RFC 6533 §3), never as raw UTF-8.
func TestDSNOriginalRecipientUTF8(t *testing.T) {
	d := DSN{ReportingMTA: "mx.test", To: "a@x.test", Recipients: []DSNRecipient{{
		Final: "me@mx.test", Original: "utf-8;jörg@bücher.example", Action: ActionFailed, Status: "5.1.1"}}}
	raw, err := d.Build(time.Unix(0, 0))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(raw), `Original-Recipient: utf-8;j\x{F6}rg@b\x{FC}cher.example`) {
		t.Errorf("DSN:\n%s", raw)
	}
}

// TestDSNHeadersLongLine: a header field longer than the reader's buffer
// (smtp.max_line_length allows such lines) is returned whole, with the
// fields after it; a piece of it that is only a line end is not taken
// for the blank line that ends the header section.
func TestDSNHeadersLongLine(t *testing.T) {
	t.Parallel()
	for _, n := range []int{4094, 4095, 4096, 9000} {
		long := "X-Long: " + strings.Repeat("v", n-8)
		orig := "From: a@b.test\r\n" + long + "\r\nSubject: after\r\n\r\nbody\r\n"
		var b bytes.Buffer
		if err := (DSN{HeadersOnly: true, Original: strings.NewReader(orig)}).writeOriginal(&b); err != nil {
			t.Fatal(err)
		}
		if want := "Content-Type: text/rfc822-headers\r\n\r\nFrom: a@b.test\r\n" + long + "\r\nSubject: after\r\n"; b.String() != want {
			t.Errorf("line of %d: header section cut: …%q", n, b.String()[max(0, b.Len()-40):])
		}
	}
}

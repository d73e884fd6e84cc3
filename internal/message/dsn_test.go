package message

import (
	"bytes"
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

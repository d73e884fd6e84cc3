package e2e_test

import (
	"strings"
	"testing"
	"time"
)

// smtplibSession uses Python's smtplib as a client would: EHLO, the
// extensions it looks for, a plain send, STARTTLS with an unverified
// context, a send over TLS and an internationalised (SMTPUTF8) send.
const smtplibSession = `
import email.policy
from email.message import EmailMessage
out = {}
s = connect()
out["ehlo"] = rep((s.ehlo_resp and 250 or 0, s.ehlo_resp or b""))
out["ext"] = {k: s.has_extn(k) for k in ["pipelining", "8bitmime", "smtputf8", "size", "enhancedstatuscodes", "chunking", "starttls"]}
out["size"] = s.esmtp_features.get("size", "")
out["plain"] = s.sendmail("py@client.example.net", ["me@example.test"],
    b"From: py@client.example.net\r\nTo: me@example.test\r\nSubject: smtplib plain\r\nMessage-ID: <plain@client.example.net>\r\n\r\nplain body\r\n")
out["starttls"] = rep(s.starttls(context=unverified()))
out["tls_version"] = s.sock.version()
s.ehlo("client.example.net")
out["ext_tls"] = {k: s.has_extn(k) for k in ["starttls", "smtputf8"]}
out["tls"] = s.sendmail("py@client.example.net", ["me@example.test"],
    b"From: py@client.example.net\r\nTo: me@example.test\r\nSubject: smtplib tls\r\nMessage-ID: <tls@client.example.net>\r\n\r\ntls body\r\n")
m = EmailMessage(policy=email.policy.SMTPUTF8)
m["From"] = "Jörg <jörg@bücher.example>"
m["To"] = "me@example.test"
m["Subject"] = "Grüße aus Köln ✉"
m["Message-ID"] = "<utf8@bücher.example>"
m.set_content("Überweisung erhalten – danke.\n", cte="8bit")
out["utf8"] = s.sendmail("jörg@bücher.example", ["me@example.test"], m.as_bytes(),
    mail_options=["SMTPUTF8", "BODY=8BITMIME"])
out["quit"] = rep(s.quit())
print(json.dumps(out))
`

func TestSmtplib(t *testing.T) {
	t.Parallel()
	s := newServer(t, opts{})
	var got struct {
		Ext        map[string]bool   `json:"ext"`
		Size       string            `json:"size"`
		Plain      map[string]any    `json:"plain"`
		StartTLS   reply             `json:"starttls"`
		TLSVersion string            `json:"tls_version"`
		ExtTLS     map[string]bool   `json:"ext_tls"`
		TLS        map[string]any    `json:"tls"`
		UTF8       map[string]any    `json:"utf8"`
		Quit       reply             `json:"quit"`
		Extra      map[string]string `json:"-"`
	}
	pythonJSON(t, s, 30*time.Second, &got, smtplibSession)
	for _, k := range []string{"pipelining", "8bitmime", "smtputf8", "size", "enhancedstatuscodes", "chunking", "starttls"} {
		if !got.Ext[k] {
			t.Errorf("smtplib: has_extn(%q) is false", k)
		}
	}
	if got.Size != "52428800" {
		t.Errorf("SIZE = %q, want 52428800 (the 50MiB default)", got.Size)
	}
	if got.StartTLS.code() != 220 {
		t.Errorf("STARTTLS reply = %v, want 220", got.StartTLS)
	}
	if got.TLSVersion != "TLSv1.3" && got.TLSVersion != "TLSv1.2" {
		t.Errorf("TLS version %q", got.TLSVersion)
	}
	if got.ExtTLS["starttls"] || !got.ExtTLS["smtputf8"] {
		t.Errorf("EHLO after STARTTLS: %v, want no STARTTLS and SMTPUTF8", got.ExtTLS)
	}
	for name, refused := range map[string]map[string]any{"plain": got.Plain, "tls": got.TLS, "utf8": got.UTF8} {
		if len(refused) != 0 {
			t.Errorf("%s send: refused recipients %v", name, refused)
		}
	}
	if got.Quit.code() != 221 {
		t.Errorf("QUIT reply = %v", got.Quit)
	}

	st := s.mail()
	if n := len(st.inbox("me@example.test")); n != 3 {
		t.Errorf("me@example.test has %d messages, want 3", n)
	}
	plain := wantOne(t, st, "me@example.test", "smtplib plain")
	checkTrace(t, plain, "<py@client.example.net>", "me@example.test")
	if !strings.Contains(plain.Received[0], "with ESMTP id") {
		t.Errorf("plain Received: %q", plain.Received[0])
	}
	tls := wantOne(t, st, "me@example.test", "smtplib tls")
	if !strings.Contains(tls.Received[0], "with ESMTPS") || !strings.Contains(tls.Received[0], "TLS1.") {
		t.Errorf("TLS Received: %q", tls.Received[0])
	}
	utf := wantOne(t, st, "me@example.test", "Grüße aus Köln ✉")
	checkTrace(t, utf, "<jörg@bücher.example>", "me@example.test")
	if !strings.Contains(utf.Received[0], "with UTF8SMTPS") {
		t.Errorf("SMTPUTF8 Received: %q", utf.Received[0])
	}
	for _, want := range []string{"Subject: Grüße aus Köln ✉\n", "From: Jörg <jörg@bücher.example>\n", "Überweisung erhalten – danke.\n"} {
		if !strings.Contains(utf.Raw, want) {
			t.Errorf("stored UTF-8 message lacks %q (raw UTF-8 expected):\n%s", want, utf.Raw)
		}
	}
}

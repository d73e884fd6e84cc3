package smtp

import (
	"strings"
	"testing"
)

func TestLMTPPerRecipientReplies(t *testing.T) {
	t.Parallel()
	b := &fakeBackend{}
	_, addr := testServer(t, b, func(o *Options) { o.LMTP = true })
	c := dial(t, addr)
	c.cmd("EHLO x.test", "500 5.5.1") // RFC 2033 §4.1: LHLO only
	if r := c.cmd("LHLO", "501 5.5.4"); !strings.Contains(r, "LHLO domain") {
		t.Errorf("LHLO without a name: %q, want it to name LHLO", r)
	}
	c.cmd("LHLO x.test", "250")
	c.cmd("MAIL FROM:<a@x.test>", "250")
	c.cmd("RCPT TO:<ok@mx.test>", "250")
	c.cmd("RCPT TO:<fail@mx.test>", "250")
	c.cmd("DATA", "354")
	c.send("Subject: l\r\n\r\nx\r\n.\r\n")
	c.expect("250 2.0.0")
	c.expect("452 4.2.2")
	// A broken message is refused once per recipient.
	c.cmd("MAIL FROM:<a@x.test>", "250")
	c.cmd("RCPT TO:<one@mx.test>", "250")
	c.cmd("RCPT TO:<two@mx.test>", "250")
	c.cmd("DATA", "354")
	c.send("bare\nLF\r\n.\r\n")
	c.expect("550 5.6.0")
	c.expect("550 5.6.0")
	c.cmd("NOOP", "250")
}

package fetch

import (
	"errors"
	"testing"
)

// FuzzPOP3Client feeds arbitrary server output to the POP3 client's
// parsing of the greeting, UIDL, LIST and RETR: it must fail cleanly,
// never panic, and never return more than the limit.
func FuzzPOP3Client(f *testing.F) {
	f.Add("+OK hi\r\n+OK\r\n1 a\r\n.\r\n+OK\r\n1 10\r\n.\r\n+OK\r\nSubject: x\r\n\r\n..a\r\n.\r\n")
	f.Add("+OK\n+OK\n1 a\n2 b\n.\n+OK\n1 1\n2 2\n.\n+OK\n.\n")
	f.Add("-ERR no\r\n")
	f.Add("+OK\r\n+OK\r\n.\r\n+OK\r\n.\r\n-ERR gone\r\n")
	f.Fuzz(func(t *testing.T, server string) {
		c := newPOP3Client(scriptConn(server))
		if c.greeting() != nil {
			return
		}
		es, err := c.list()
		if err != nil {
			return
		}
		for _, e := range es {
			if e.n < 1 || len(e.uidl) == 0 || len(e.uidl) > 70 {
				t.Fatalf("bad entry %+v", e)
			}
		}
		msg, err := c.retr(1, 64)
		if err == nil && len(msg) > 64 {
			t.Fatalf("retr returned %d octets, limit 64", len(msg))
		}
		if err != nil && errors.Is(err, errTooBig) && msg != nil {
			t.Fatal("message returned with errTooBig")
		}
	})
}

// FuzzHeader checks the header scan that fetch ids, Return-Path and
// fingerprints come from.
func FuzzHeader(f *testing.F) {
	f.Add([]byte("X-Posthorn-Fetch: a/b/1/2\r\nReturn-Path: <a@b>\r\n\r\nbody"))
	f.Add([]byte("Subject: x\r\n folded\r\n\r\n"))
	f.Add([]byte("no header at all"))
	f.Fuzz(func(t *testing.T, msg []byte) {
		h := header(msg)
		_ = envelopeFrom(h)
		_ = looped(h, "src")
		_ = fingerprint(int64(len(msg)), h)
		_ = IDOf(msg)
	})
}

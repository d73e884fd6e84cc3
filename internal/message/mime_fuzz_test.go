package message

import (
	"bytes"
	"errors"
	"reflect"
	"strings"
	"testing"
)

// deepSeeds builds nesting bombs: 200 levels of multiparts and of
// messages, each past the limits the fuzz targets use.
func deepSeeds() [][]byte {
	var mp, msg strings.Builder
	for i := range 200 {
		b := strings.Repeat("b", i%7+1) + string(rune('0'+i%10))
		mp.WriteString("Content-Type: multipart/mixed; boundary=" + b + "\r\n\r\n--" + b + "\r\n")
		msg.WriteString("Content-Type: message/rfc822\r\nSubject: level\r\n\r\n")
	}
	return [][]byte{[]byte(mp.String() + "\r\nleaf\r\n"), []byte(msg.String() + "leaf")}
}

// FuzzParseStream: parseStream never panics, keeps every invariant of
// checkStructure, and gives the same answer whatever its buffer size.
// Seeds: testdata/fuzz/FuzzParseStream (the same as FuzzParseStructure).
func FuzzParseStream(f *testing.F) {
	for _, s := range deepSeeds() {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		if len(data) > 64<<10 {
			return
		}
		for _, lim := range []Limits{{MaxDepth: 8, MaxParts: 64, MaxHeaderBytes: 4096}, {}} {
			p, err := parseStream(bytes.NewReader(data), lim)
			q, qerr := newStream(bytes.NewReader(data), lim, 16).run()
			if !reflect.DeepEqual(p, q) || !errors.Is(qerr, err) {
				t.Fatalf("buffer sizes disagree: %v / %v", err, qerr)
			}
			if err != nil {
				if !errors.Is(err, ErrHeaderTooLarge) {
					t.Fatalf("unexpected error %v", err)
				}
				continue
			}
			if err := checkStructure(data, p, lim); err != nil {
				t.Fatal(err)
			}
			_ = p.Envelope()
		}
	})
}

// FuzzEnvelope: the envelope of any header, and any address list, comes
// out without a panic, bounded, with Sender and Reply-To defaulted.
func FuzzEnvelope(f *testing.F) {
	f.Add([]byte("From: " + strings.Repeat("a@b, ", 3000) + "\r\n\r\n"))
	f.Add([]byte("To: " + strings.Repeat("g: ", 500) + strings.Repeat(";", 500) + "\r\n\r\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		if len(data) > 64<<10 {
			return
		}
		p, err := parseStream(bytes.NewReader(data), Limits{MaxDepth: 2, MaxParts: 4})
		if err != nil {
			return
		}
		e := p.Envelope()
		if len(e.Sender) == 0 && len(e.From) > 0 || len(e.ReplyTo) == 0 && len(e.From) > 0 {
			t.Fatalf("Sender/Reply-To not defaulted: %+v", e)
		}
		for _, list := range [][]Address{e.From, e.To, e.Cc, e.Bcc, ParseAddressList(string(data))} {
			if len(list) > maxAddresses {
				t.Fatalf("%d addresses", len(list))
			}
		}
	})
}

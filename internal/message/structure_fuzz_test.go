package message

import "testing"

func FuzzParseStructure(f *testing.F) {
	f.Add([]byte(crlf(mixed)))
	f.Add([]byte("Content-Type: multipart/digest; boundary=d\r\n\r\n--d\r\n\r\nSubject: x\r\n\r\n--d--"))
	f.Add([]byte("Content-Type: message/rfc822\r\n\r\nContent-Type: message/rfc822\r\n\r\nx"))
	f.Add([]byte("Content-Type: multipart/mixed; boundary=a\r\n\r\n--a\r\nContent-Type: multipart/mixed; boundary=a\r\n\r\n--a--\r\n--a\r\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		p, err := Parse(data, Limits{MaxDepth: 20, MaxParts: 200})
		if err != nil {
			return
		}
		n := 0
		var walk func(q *Part, lo, hi int64, depth int)
		walk = func(q *Part, lo, hi int64, depth int) {
			n++
			if q.HeaderStart < lo || q.HeaderStart > q.BodyStart || q.BodyStart > q.End || q.End > hi {
				t.Fatalf("bad offsets %d %d %d within [%d,%d]", q.HeaderStart, q.BodyStart, q.End, lo, hi)
			}
			if depth > 21 {
				t.Fatalf("depth %d", depth)
			}
			for _, c := range q.Parts {
				walk(c, q.BodyStart, q.End, depth+1)
			}
			if q.Message != nil {
				walk(q.Message, q.BodyStart, q.End, depth+1)
			}
			_ = q.Envelope()
		}
		walk(p, 0, int64(len(data)), 0)
		if n > 402 {
			t.Fatalf("%d parts", n)
		}
	})
}

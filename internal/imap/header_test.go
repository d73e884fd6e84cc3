package imap

import (
	"errors"
	"strings"
	"testing"

	"posthorn/internal/message"
)

func TestReadHeader(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"Subject: a\r\nFrom: b\r\n\r\nbody\r\n", "Subject: a\r\nFrom: b\r\n\r\n"},
		{"Subject: a\r\n folded\r\n\r\n\r\nbody", "Subject: a\r\n folded\r\n\r\n"},
		{"\r\nbody only\r\n", "\r\n"},
		{"Subject: no body\r\n", "Subject: no body\r\n"},
		{"Subject: no line end", "Subject: no line end"},
		{"X: " + strings.Repeat("y", 10000) + "\r\n\r\nb", "X: " + strings.Repeat("y", 10000) + "\r\n\r\n"},
	} {
		got, err := readHeader(strings.NewReader(tc.in), 1<<20)
		if err != nil || string(got) != tc.want {
			t.Errorf("readHeader(%.30q) = %.40q, %v; want %.40q", tc.in, got, err, tc.want)
		}
	}
	if _, err := readHeader(strings.NewReader("X: "+strings.Repeat("y", 5000)+"\r\n\r\n"), 4096); !errors.Is(err, errLongHeader) {
		t.Errorf("over the limit: err %v, want errLongHeader", err)
	}
}

func TestHeaderCacheEvicts(t *testing.T) {
	hc := newHeaderCache(64 << 10)
	root, _ := message.Parse([]byte("Subject: x\r\n\r\n"), message.Limits{})
	data := []byte(strings.Repeat("h", 1000))
	for uid := uint32(1); uid <= 100; uid++ {
		hc.put(headerKey{"u", 1, uid}, cachedHeader{data: data, root: root})
		if hc.used > hc.max {
			t.Fatalf("used %d over max %d", hc.used, hc.max)
		}
	}
	if _, ok := hc.get(headerKey{"u", 1, 1}); ok {
		t.Error("the oldest entry survived")
	}
	if h, ok := hc.get(headerKey{"u", 1, 100}); !ok || string(h.data) != string(data) {
		t.Error("the newest entry is missing")
	}
	if _, ok := hc.get(headerKey{"u", 2, 100}); ok {
		t.Error("another UIDVALIDITY hit the cache")
	}
	hc.put(headerKey{"u", 1, 500}, cachedHeader{data: make([]byte, 8<<10), root: root})
	if _, ok := hc.get(headerKey{"u", 1, 500}); ok {
		t.Error("an entry over a sixteenth of the cache was kept")
	}
}

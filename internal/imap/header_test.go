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
		// The buffer (4096) ends right before the LF or the CRLF of a
		// long line: that piece is not the empty line.
		{"X: " + strings.Repeat("y", 4093) + "\r\nSubject: s\r\n\r\nb", "X: " + strings.Repeat("y", 4093) + "\r\nSubject: s\r\n\r\n"},
		{"X: " + strings.Repeat("y", 4093) + "\nSubject: s\n\nb", "X: " + strings.Repeat("y", 4093) + "\nSubject: s\n\n"},
		{"X: " + strings.Repeat("y", 4092) + "\r\nSubject: s\r\n\r\nb", "X: " + strings.Repeat("y", 4092) + "\r\nSubject: s\r\n\r\n"},
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
	hc.admit = func() bool { return true }
	root, _ := message.Parse([]byte("Subject: x\r\n\r\n"), message.Limits{})
	data := []byte(strings.Repeat("h", 1000))
	for uid := uint32(1); uid <= 100; uid++ {
		hc.put(headerKey{7, 1, uid}, cachedHeader{data: data, root: root})
		if hc.used > hc.max {
			t.Fatalf("used %d over max %d", hc.used, hc.max)
		}
	}
	if _, ok := hc.get(headerKey{7, 1, 1}); ok {
		t.Error("the oldest entry survived")
	}
	for uid := uint32(91); uid <= 100; uid++ { // about 20 fit
		if _, ok := hc.get(headerKey{7, 1, uid}); !ok {
			t.Errorf("entry %d of the last ten inserted was evicted", uid)
		}
	}
	if h, ok := hc.get(headerKey{7, 1, 100}); !ok || string(h.data) != string(data) {
		t.Error("the newest entry is missing")
	}
	if _, ok := hc.get(headerKey{7, 2, 100}); ok {
		t.Error("another UIDVALIDITY hit the cache")
	}
	if hc.userID("a@example.test") == hc.userID("b@example.test") || hc.userID("a@example.test") != hc.userID("a@example.test") {
		t.Error("user numbers are not one per name")
	}
	hc.put(headerKey{7, 1, 500}, cachedHeader{data: make([]byte, 8<<10), root: root})
	if _, ok := hc.get(headerKey{7, 1, 500}); ok {
		t.Error("an entry over a sixteenth of the cache was kept")
	}
}

// An entry read since the hand last passed gets a second chance: a header
// in use survives a stream of new ones that are read once.
func TestHeaderCacheKeepsUsedEntries(t *testing.T) {
	hc := newHeaderCache(64 << 10)
	hc.admit = func() bool { return true }
	root, _ := message.Parse([]byte("Subject: x\r\n\r\n"), message.Limits{})
	data := []byte(strings.Repeat("h", 1000))
	hot := headerKey{1, 1, 1}
	hc.put(hot, cachedHeader{data: data, root: root})
	for uid := uint32(2); uid <= 400; uid++ {
		if _, ok := hc.get(hot); !ok {
			t.Fatalf("the entry in use was evicted after %d others", uid-2)
		}
		hc.put(headerKey{1, 1, uid}, cachedHeader{data: data, root: root})
	}
	if len(hc.items) != len(hc.ring) || hc.used > hc.max {
		t.Errorf("%d items, %d in the ring, %d bytes of %d", len(hc.items), len(hc.ring), hc.used, hc.max)
	}
}

func TestHasFold(t *testing.T) {
	for _, c := range []struct {
		s, needle string
		want      bool
	}{
		{"Hello World", "world", true},
		{"Hello World", "o w", true},
		{"Hello", "hello!", false},
		{"", "", true},
		{"abc", "", true},
		{"GRÜSSE aus Köln", "köln", true}, // non-ASCII needle: Unicode lower-casing
		{"Grüße AUS Köln", "aus", true},   // ASCII needle in UTF-8 text
		{"ÄBC", "äbc", true},
		{"aaab", "aab", true},
	} {
		if got := hasFold(c.s, c.needle); got != c.want {
			t.Errorf("hasFold(%q, %q) = %v", c.s, c.needle, got)
		}
	}
}

// Passes over more headers than the cache holds (a SEARCH of a mailbox
// larger than the cache) must not evict exactly what the next pass needs:
// after a few passes, a good share of each pass hits.
func TestHeaderCacheScanResistance(t *testing.T) {
	hc := newHeaderCache(64 << 10) // about 20 entries of this size
	root, _ := message.Parse([]byte("Subject: x\r\n\r\n"), message.Limits{})
	data := []byte(strings.Repeat("h", 1000))
	const keys = 40
	hits := 0
	for pass := range 20 {
		for uid := uint32(1); uid <= keys; uid++ {
			k := headerKey{1, 1, uid}
			if _, ok := hc.get(k); ok {
				if pass >= 10 {
					hits++
				}
				continue
			}
			hc.put(k, cachedHeader{data: data, root: root})
		}
	}
	// Least recently used (or CLOCK without admission) hits nothing here.
	if rate := float64(hits) / (10 * keys); rate < 0.25 {
		t.Errorf("hit rate over the last ten passes %.2f, want at least 0.25 (the cache holds about half the keys)", rate)
	}
}

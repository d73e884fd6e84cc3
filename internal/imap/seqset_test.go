package imap

import (
	"math/rand/v2"
	"strconv"
	"strings"
	"testing"
	"time"
)

// naiveContains is RFC 9051's definition read literally: n is in the set
// if some range, with "*" as max and its ends in either order, holds it.
func naiveContains(s string, n, max uint32) bool {
	for part := range strings.SplitSeq(s, ",") {
		lo, hi, isRange := strings.Cut(part, ":")
		num := func(x string) uint32 {
			if x == "*" {
				return max
			}
			v, _ := strconv.ParseUint(x, 10, 32)
			return uint32(v)
		}
		a, b := num(lo), num(lo)
		if isRange {
			b = num(hi)
		}
		if a > b {
			a, b = b, a
		}
		if n >= a && n <= b {
			return true
		}
	}
	return false
}

// TestSeqSetAgainstDefinition compares the merged set with the literal
// definition on random sets, "*" in every position, and maxima below,
// inside and above the numbers written.
func TestSeqSetAgainstDefinition(t *testing.T) {
	t.Parallel()
	r := rand.New(rand.NewPCG(1, 2))
	tok := func() string {
		if r.IntN(5) == 0 {
			return "*"
		}
		return strconv.Itoa(1 + r.IntN(40))
	}
	for range 3000 {
		var parts []string
		for range 1 + r.IntN(6) {
			p := tok()
			if r.IntN(2) == 0 {
				p += ":" + tok()
			}
			parts = append(parts, p)
		}
		text := strings.Join(parts, ",")
		set, ok := parseSeqSet(text)
		if !ok {
			t.Fatalf("%q refused", text)
		}
		for _, max := range []uint32{1, 7, 20, 45} {
			valid := true
			for n := uint32(1); n <= 50; n++ {
				if got, want := set.contains(n, max), naiveContains(text, n, max); got != want {
					t.Fatalf("%q contains(%d) with * = %d: %v, want %v", text, n, max, got, want)
				}
				if naiveContains(text, n, max) && n > max {
					valid = false
				}
			}
			if got := set.highest(max) <= max; got != valid {
				t.Fatalf("%q with * = %d: within %v, want %v", text, max, got, valid)
			}
		}
	}
	for _, bad := range []string{"", "0", "1:0", "01", "1,,2", "1:2:3", "-1", "4294967296", "1:", ":1", "*1"} {
		if _, ok := parseSeqSet(bad); ok {
			t.Errorf("%q accepted", bad)
		}
	}
}

// TestSeqSetRepeatedNumbers: a set of 30,000 repeated or scattered
// numbers resolves against 10,000 messages in milliseconds, not in
// ranges × messages steps.
func TestSeqSetRepeatedNumbers(t *testing.T) {
	t.Parallel()
	m := &selected{}
	for i := range 10000 {
		m.msgs = append(m.msgs, Meta{UID: uint32(i + 1)})
	}
	for _, text := range []string{strings.Repeat("1,", 30000) + "1", strings.Repeat("5:*,", 30000) + "*", strings.Repeat("9999,2,", 15000) + "3"} {
		set, ok := parseSeqSet(text)
		if !ok {
			t.Fatal("refused")
		}
		start := time.Now()
		for range 10 {
			m.resolve(set, true)
			m.resolve(set, false)
		}
		if d := time.Since(start); d > time.Second {
			t.Errorf("%.20q…: 20 resolutions took %v", text, d)
		}
	}
}

package imap

import (
	"strconv"
	"strings"
)

// seqRange is one range of a sequence set; 0 stands for "*".
type seqRange struct{ lo, hi uint32 }

// seqSet is a sequence set (RFC 9051 §9 sequence-set), of message numbers
// or UIDs.
type seqSet []seqRange

// parseSeqSet parses "1,3:5,7:*".
func parseSeqSet(s string) (seqSet, bool) {
	if s == "" {
		return nil, false
	}
	var set seqSet
	for _, part := range strings.Split(s, ",") {
		lo, hi, isRange := strings.Cut(part, ":")
		a, ok1 := seqNumber(lo)
		b := a
		ok2 := true
		if isRange {
			b, ok2 = seqNumber(hi)
		}
		if !ok1 || !ok2 {
			return nil, false
		}
		set = append(set, seqRange{a, b})
	}
	return set, true
}

func seqNumber(s string) (uint32, bool) {
	if s == "*" {
		return 0, true
	}
	n, err := strconv.ParseUint(s, 10, 32)
	if err != nil || n == 0 || s[0] == '0' {
		return 0, false // nz-number
	}
	return uint32(n), true
}

// bounds resolves "*" to max and orders the range.
func (r seqRange) bounds(max uint32) (uint32, uint32) {
	lo, hi := r.lo, r.hi
	if lo == 0 {
		lo = max
	}
	if hi == 0 {
		hi = max
	}
	if lo > hi {
		lo, hi = hi, lo
	}
	return lo, hi
}

// contains reports whether n is in the set, with "*" meaning max.
func (s seqSet) contains(n, max uint32) bool {
	for _, r := range s {
		lo, hi := r.bounds(max)
		if n >= lo && n <= hi {
			return true
		}
	}
	return false
}

// formatUIDs writes sorted UIDs compactly: "1:3,7".
func formatUIDs(uids []uint32) string {
	var b strings.Builder
	for i := 0; i < len(uids); {
		j := i
		for j+1 < len(uids) && uids[j+1] == uids[j]+1 {
			j++
		}
		if b.Len() > 0 {
			b.WriteByte(',')
		}
		b.WriteString(strconv.FormatUint(uint64(uids[i]), 10))
		if j > i {
			b.WriteByte(':')
			b.WriteString(strconv.FormatUint(uint64(uids[j]), 10))
		}
		i = j + 1
	}
	return b.String()
}

package imap

import "strings"

// baseSubject extracts the base subject of RFC 5256 §2.1, which SORT
// (SUBJECT) and THREAD compare: "Re: [list] Fwd: Hi (fwd)" and "hi" have
// the same one, up to case.
func baseSubject(subject string) string {
	s, _ := baseSubjectReply(subject)
	return s
}

// baseSubjectReply is baseSubject, and whether a reply or forward marker
// (subj-refwd, "(fwd)", "[fwd: …]") was removed on the way: THREAD's
// step 5 prefers the thread that is not a reply.
func baseSubjectReply(subject string) (string, bool) {
	s := collapseSpace(decodeWords(subject)) // step 1
	reply := false
	for {
		t := trimTrailers(s) // step 2
		reply = reply || t != strings.TrimRight(s, " ")
		s = t
		for { // steps 3 to 5
			t, r := trimLeaders(s)
			reply = reply || r
			t = trimBlobs(t)
			if t == s {
				break
			}
			s = t
		}
		// Step 6: "[fwd: …]" is unwrapped and the rest examined again.
		if len(s) >= 6 && strings.EqualFold(s[:5], "[fwd:") && s[len(s)-1] == ']' {
			s, reply = s[5:len(s)-1], true
			continue
		}
		return s, reply
	}
}

// collapseSpace turns tabs and line breaks into spaces and runs of spaces
// into one.
func collapseSpace(s string) string {
	var b strings.Builder
	space := false
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c == ' ' || c == '\t' || c == '\r' || c == '\n' {
			space = true
			continue
		}
		if space && b.Len() > 0 {
			b.WriteByte(' ')
		}
		space = false
		b.WriteByte(c)
	}
	if space && b.Len() > 0 {
		b.WriteByte(' ')
	}
	return b.String()
}

// trimTrailers removes subj-trailer ("(fwd)" / WSP) from the end, again
// and again.
func trimTrailers(s string) string {
	for {
		t := strings.TrimRight(s, " ")
		if len(t) >= 5 && strings.EqualFold(t[len(t)-5:], "(fwd)") {
			t = t[:len(t)-5]
		}
		if t == s {
			return s
		}
		s = t
	}
}

// trimLeaders removes subj-leader ((*subj-blob subj-refwd) / WSP) from the
// start, again and again; reply tells whether a subj-refwd went.
func trimLeaders(s string) (string, bool) {
	reply := false
	for {
		if strings.HasPrefix(s, " ") {
			s = s[1:]
			continue
		}
		n := refwdLen(s)
		if n == 0 {
			return s, reply
		}
		s, reply = s[n:], true
	}
}

// refwdLen is the length of *subj-blob subj-refwd at the start of s, or 0:
//
//	subj-refwd = ("re" / ("fw" ["d"])) *WSP [subj-blob] ":"
func refwdLen(s string) int {
	p := 0
	for {
		n := blobLen(s[p:])
		if n == 0 {
			break
		}
		p += n
	}
	switch {
	case len(s) >= p+2 && strings.EqualFold(s[p:p+2], "re"):
		p += 2
	case len(s) >= p+2 && strings.EqualFold(s[p:p+2], "fw"):
		p += 2
		if len(s) > p && (s[p] == 'd' || s[p] == 'D') {
			p++
		}
	default:
		return 0
	}
	for len(s) > p && s[p] == ' ' {
		p++
	}
	p += blobLen(s[p:])
	if len(s) > p && s[p] == ':' {
		return p + 1
	}
	return 0
}

// blobLen is the length of subj-blob ("[" *BLOBCHAR "]" *WSP, BLOBCHAR
// being anything but brackets) at the start of s, or 0.
func blobLen(s string) int {
	if !strings.HasPrefix(s, "[") {
		return 0
	}
	end := strings.IndexAny(s[1:], "[]")
	if end < 0 || s[1+end] != ']' {
		return 0
	}
	p := end + 2
	for len(s) > p && s[p] == ' ' {
		p++
	}
	return p
}

// trimBlobs removes leading subj-blobs (step 4) as long as something is
// left after them, in one pass: removing them one at a time, with step 3
// looking past all of them each time for a "Re:", took quadratic time,
// and a subject of 50,000 "[x]" held a core for 15 s per SORT. When a
// subj-refwd follows the blobs, step 3 removes blobs and all together
// (trimLeaders), so the blobs are left for it.
func trimBlobs(s string) string {
	last, p := -1, 0
	for {
		n := blobLen(s[p:])
		if n == 0 {
			break
		}
		last, p = p, p+n
	}
	switch {
	case last < 0:
		return s
	case p < len(s):
		if refwdAt(s[p:]) {
			return s[last:] // the last blob leads a "Re:": step 3 takes them
		}
		return s[p:]
	default:
		return s[last:] // nothing after the last blob: it stays
	}
}

// refwdAt reports whether s begins with a subj-refwd (no blobs before).
func refwdAt(s string) bool {
	return blobLen(s) == 0 && refwdLen(s) > 0
}

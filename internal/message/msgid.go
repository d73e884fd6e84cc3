package message

import "strings"

// MessageIDs extracts the <id> tokens of a Message-ID, In-Reply-To or
// References field (RFC 5322 §3.6.4), brackets included. Text outside
// brackets (comments, phrases some old clients put there) is dropped.
func MessageIDs(s string) []string {
	var out []string
	for {
		i := strings.IndexByte(s, '<')
		if i < 0 {
			return out
		}
		j := strings.IndexByte(s[i:], '>')
		if j < 0 {
			return out
		}
		id := s[i : i+j+1]
		if len(id) > 2 && !strings.ContainsFunc(id, isNotIDChar) {
			out = append(out, id)
		}
		s = s[i+j+1:]
	}
}

// isNotIDChar: white space and control characters, which no msg-id holds
// (RFC 5322 §3.6.4: printable ASCII, RFC 6532 adds UTF-8) and which,
// copied into a reply's References, would put them in its header.
func isNotIDChar(r rune) bool { return r <= ' ' || r == 0x7f || r >= 0x80 && r < 0xa0 }

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
		if !strings.ContainsAny(id, " \t\r\n") && len(id) > 2 {
			out = append(out, id)
		}
		s = s[i+j+1:]
	}
}

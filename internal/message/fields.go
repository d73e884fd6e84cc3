package message

import (
	"bytes"
	"strings"
)

// FilterHeader selects header fields for BODY[HEADER.FIELDS (…)] and
// HEADER.FIELDS.NOT (RFC 9051 §6.4.5): the fields named (or, with
// exclude, the others), raw with their folding, then the blank line.
func FilterHeader(header []byte, names []string, exclude bool) []byte {
	var out bytes.Buffer
	keep := false
	for len(header) > 0 {
		i := bytes.IndexByte(header, '\n')
		line := header
		if i >= 0 {
			line = header[:i+1]
		}
		header = header[len(line):]
		content := bytes.TrimRight(line, "\r\n")
		if len(content) == 0 {
			break
		}
		if content[0] != ' ' && content[0] != '\t' {
			name, _, _ := bytes.Cut(content, []byte{':'})
			keep = nameIn(strings.TrimSpace(string(name)), names) != exclude
		}
		if keep {
			out.Write(content)
			out.WriteString("\r\n")
		}
	}
	out.WriteString("\r\n")
	return out.Bytes()
}

func nameIn(name string, names []string) bool {
	for _, n := range names {
		if strings.EqualFold(n, name) {
			return true
		}
	}
	return false
}

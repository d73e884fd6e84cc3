package config

import (
	"strconv"
	"strings"

	"github.com/BurntSushi/toml"
)

// The decoder does not tell where an undecoded key or a key that fails
// validation was written, so keyLines reads the document again, line by
// line, with just enough TOML to find table headers and "key =" lines.

// keyLines maps each key defined in doc, as [toml.Key.String] spells it, to
// the 1-based line that first defines it. A table header or dotted key also
// defines its parent keys. Lines inside multi-line strings are skipped.
func keyLines(doc string) map[string]int {
	lines := make(map[string]int)
	var table toml.Key
	closing := "" // delimiter ending the multi-line string we are in
	for i, line := range strings.Split(strings.TrimPrefix(doc, "\ufeff"), "\n") {
		if closing != "" {
			if strings.Contains(line, closing) {
				closing = ""
			}
			continue
		}
		line = strings.TrimSpace(line)
		if strings.HasPrefix(line, "[") {
			if k, ok := parseHeader(line); ok {
				table = k
				record(lines, k, i+1)
			}
			continue
		}
		k, rest, ok := parseKey(line)
		if value, isKV := strings.CutPrefix(rest, "="); ok && isKV {
			record(lines, append(table[:len(table):len(table)], k...), i+1)
			closing = openString(strings.TrimSpace(value))
		}
	}
	return lines
}

// record notes line n for k and each of its parents not seen before.
func record(lines map[string]int, k toml.Key, n int) {
	for i := 1; i <= len(k); i++ {
		s := k[:i].String()
		if _, ok := lines[s]; !ok {
			lines[s] = n
		}
	}
}

// lineOf returns the line defining k or, failing that, its nearest defined
// parent (a key set in an inline table is found at the table); 0 if none.
func lineOf(lines map[string]int, k toml.Key) int {
	for i := len(k); i > 0; i-- {
		if n, ok := lines[k[:i].String()]; ok {
			return n
		}
	}
	return 0
}

// parseHeader parses a table header, "[a.b]" or "[[a.b]]", that fills the
// whole line apart from a comment.
func parseHeader(line string) (toml.Key, bool) {
	open, end := "[", "]"
	if strings.HasPrefix(line, "[[") {
		open, end = "[[", "]]"
	}
	k, rest, ok := parseKey(line[len(open):])
	rest, closed := strings.CutPrefix(rest, end)
	rest = strings.TrimSpace(rest)
	return k, ok && closed && (rest == "" || rest[0] == '#')
}

// parseKey parses a possibly dotted key at the start of s and returns it with
// the rest of s after any blanks that follow it.
func parseKey(s string) (k toml.Key, rest string, ok bool) {
	rest = s
	for {
		piece, tail, ok := parsePiece(strings.TrimLeft(rest, " \t"))
		if !ok {
			return nil, s, false
		}
		k = append(k, piece)
		rest = strings.TrimLeft(tail, " \t")
		if !strings.HasPrefix(rest, ".") {
			return k, rest, true
		}
		rest = rest[1:]
	}
}

// parsePiece parses one bare, "basic" or 'literal' key at the start of s.
func parsePiece(s string) (piece, rest string, ok bool) {
	switch {
	case strings.HasPrefix(s, `"`):
		q, err := strconv.QuotedPrefix(s)
		if err != nil {
			return "", s, false
		}
		piece, err = strconv.Unquote(q)
		if err != nil {
			piece = q[1 : len(q)-1] // a TOML escape Go lacks; close enough
		}
		return piece, s[len(q):], true
	case strings.HasPrefix(s, "'"):
		end := strings.IndexByte(s[1:], '\'')
		if end < 0 {
			return "", s, false
		}
		return s[1 : end+1], s[end+2:], true
	}
	n := 0
	for n < len(s) && isBare(s[n]) {
		n++
	}
	return s[:n], s[n:], n > 0
}

// isBare reports whether c may appear in a bare key.
func isBare(c byte) bool {
	return 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '_' || c == '-'
}

// openString returns the delimiter of a multi-line string that value opens
// and leaves open at the end of its line, or "".
func openString(value string) string {
	for _, delim := range []string{`"""`, `'''`} {
		if rest, ok := strings.CutPrefix(value, delim); ok && !strings.Contains(rest, delim) {
			return delim
		}
	}
	return ""
}

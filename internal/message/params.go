package message

import "strings"

// interpret reads the MIME fields of a part (RFC 2045 §5, §6, RFC 2183).
func interpret(part *Part) {
	if ct := part.Get("Content-Type"); ct != "" {
		typ, params := parseParams(ct)
		if t, st, ok := strings.Cut(typ, "/"); ok && t != "" && st != "" && validToken(t) && validToken(st) {
			part.Type, part.Subtype = t, st
		}
		part.Params = params
	}
	if part.Type == "" {
		part.Type, part.Subtype = "text", "plain" // RFC 2045 §5.2
	}
	if part.Type == "text" && part.Param("charset") == "" {
		part.Params = append(part.Params, Param{"charset", "us-ascii"}) // RFC 2046 §4.1.2
	}
	part.Encoding = strings.ToLower(strings.TrimSpace(part.Get("Content-Transfer-Encoding")))
	if part.Encoding == "" {
		part.Encoding = "7bit"
	}
	part.ID, part.Description = part.Get("Content-ID"), part.Get("Content-Description")
	part.MD5, part.Location = part.Get("Content-MD5"), part.Get("Content-Location")
	if d := part.Get("Content-Disposition"); d != "" {
		part.Disposition, part.DispositionParams = parseParams(d)
	}
	for _, l := range strings.Split(part.Get("Content-Language"), ",") {
		if l = strings.TrimSpace(l); l != "" {
			part.Language = append(part.Language, l)
		}
	}
}

func validToken(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c <= ' ' || c >= 0x7f || strings.IndexByte(`()<>@,;:\"/[]?=`, c) >= 0 {
			return false
		}
	}
	return true
}

// maxParams bounds the parameters of one field (CVE-2026-27859 class).
const maxParams = 100

// parseParams splits `value; k=v; k2="v 2"` (RFC 2045 §5.1). The value is
// lower-cased; keys too; quoted values are unquoted. RFC 2231 parameters
// (k*0, k*) are kept as written.
func parseParams(s string) (string, []Param) {
	parts := splitParams(s)
	value := strings.ToLower(strings.TrimSpace(parts[0]))
	var ps []Param
	for _, kv := range parts[1:] {
		k, v, ok := strings.Cut(kv, "=")
		k = strings.ToLower(strings.TrimSpace(k))
		if !ok || k == "" || len(ps) >= maxParams {
			continue
		}
		ps = append(ps, Param{Key: k, Value: unquote(strings.TrimSpace(v))})
	}
	return value, ps
}

// splitParams splits on ";" outside quoted strings, and drops comments.
func splitParams(s string) []string {
	var out []string
	var cur strings.Builder
	inQuote, esc, comment := false, false, 0
	for _, r := range s {
		switch {
		case esc:
			esc = false
		case inQuote && r == '\\':
			esc = true
		case r == '"' && comment == 0:
			inQuote = !inQuote
		case !inQuote && r == '(':
			comment++
			continue
		case !inQuote && r == ')' && comment > 0:
			comment--
			continue
		case comment > 0:
			continue
		case !inQuote && r == ';':
			out = append(out, cur.String())
			cur.Reset()
			continue
		}
		cur.WriteRune(r)
	}
	return append(out, cur.String())
}

func unquote(v string) string {
	if len(v) < 2 || v[0] != '"' || v[len(v)-1] != '"' {
		return v
	}
	v = v[1 : len(v)-1]
	var b strings.Builder
	for i := 0; i < len(v); i++ {
		if v[i] == '\\' && i+1 < len(v) {
			i++
		}
		b.WriteByte(v[i])
	}
	return b.String()
}

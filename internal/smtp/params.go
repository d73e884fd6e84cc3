package smtp

import (
	"errors"
	"fmt"
	"strings"
	"unicode/utf8"
)

// ErrParamSyntax is returned, wrapped with detail, by ParseParams.
var ErrParamSyntax = errors.New("parameter syntax error")

// Param is one ESMTP parameter of MAIL or RCPT (RFC 5321 §4.1.2).
type Param struct {
	Key      string // esmtp-keyword, upper-cased
	Value    string // esmtp-value as sent; xtext is not decoded here
	HasValue bool   // written as "KEY=VALUE", not "KEY"
}

// ParseParams splits "KEY=VALUE KEY2", the rest after the path
// (RFC 5321 §4.1.2 Mail-parameters / Rcpt-parameters). Parameters are
// separated by one or more SP; leading and trailing SP are ignored. A key
// given twice (in any case), an empty value after "=" and any control
// character are errors. With utf8, values may hold UTF-8 (RFC 6531 §3.3).
func ParseParams(s string, utf8 bool) ([]Param, error) {
	var params []Param
	seen := make(map[string]bool)
	for _, tok := range strings.Split(s, " ") {
		if tok == "" {
			continue
		}
		p, err := parseParam(tok, utf8)
		if err != nil {
			return nil, err
		}
		if seen[p.Key] {
			return nil, paramErr("duplicate parameter %q", p.Key)
		}
		seen[p.Key] = true
		params = append(params, p)
	}
	return params, nil
}

func paramErr(format string, args ...any) error {
	return fmt.Errorf("%w: %s", ErrParamSyntax, fmt.Sprintf(format, args...))
}

// parseParam parses esmtp-param = esmtp-keyword ["=" esmtp-value]
// (RFC 5321 §4.1.2).
func parseParam(tok string, allowUTF8 bool) (Param, error) {
	key, value, hasValue := strings.Cut(tok, "=")
	if !isKeyword(key) {
		return Param{}, paramErr("bad keyword %q", key)
	}
	key = strings.ToUpper(key)
	if hasValue {
		if err := checkParamValue(value, allowUTF8); err != nil {
			return Param{}, fmt.Errorf("%w in %s", err, key)
		}
	}
	return Param{Key: key, Value: value, HasValue: hasValue}, nil
}

// isKeyword reports esmtp-keyword = (ALPHA / DIGIT) *(ALPHA / DIGIT / "-")
// (RFC 5321 §4.1.2).
func isKeyword(s string) bool {
	if s == "" || !isLetDig(s[0]) {
		return false
	}
	for i := 1; i < len(s); i++ {
		if !isLetDig(s[i]) && s[i] != '-' {
			return false
		}
	}
	return true
}

// checkParamValue checks esmtp-value = 1*(%d33-60 / %d62-126)
// (RFC 5321 §4.1.2), plus UTF8-non-ascii when allowUTF8 (RFC 6531 §3.3).
func checkParamValue(v string, allowUTF8 bool) error {
	if v == "" {
		return paramErr("empty value")
	}
	for i := 0; i < len(v); {
		c := v[i]
		switch {
		case 33 <= c && c <= 60 || 62 <= c && c <= 126:
			i++
		case c >= utf8.RuneSelf && allowUTF8:
			r, n := utf8.DecodeRuneInString(v[i:])
			if checkRune(r, n) != nil {
				return paramErr("bad UTF-8 or control character in value")
			}
			i += n
		default:
			return paramErr("bad character %q in value", c)
		}
	}
	return nil
}

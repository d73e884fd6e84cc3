package sieve

import (
	"encoding/hex"
	"fmt"
	"regexp"
	"strconv"
	"strings"

	"github.com/migadu/go-sieve/parser"
)

// Encoded characters (RFC 5228 §2.4.2.4) are decoded here, before the
// library loads the script, so that checkLimits sees every string as it
// will run: "${hex:24 7B 31 7D}" is a variable reference once decoded.
// The library is then not told about the extension, so it decodes
// nothing a second time.

// encodedRE is encoded-arb-octets or encoded-unicode-char, hex-pair or
// unicode-hex sequences separated by blank (WSP / CRLF).
var encodedRE = regexp.MustCompile(`(?i)\$\{(hex|unicode):[ \t\r\n]*([0-9a-f]+(?:[ \t\r\n]+[0-9a-f]+)*)[ \t\r\n]*\}`)

// decodeEncoded replaces the encoded characters of s. A sequence that
// does not follow the grammar stays as it is; a Unicode value outside
// 0–D7FF and E000–10FFFF is an error (RFC 5228 §2.4.2.4).
func decodeEncoded(s string) (string, error) {
	if !strings.Contains(s, "${") {
		return s, nil
	}
	var bad error
	out := encodedRE.ReplaceAllStringFunc(s, func(m string) string {
		sub := encodedRE.FindStringSubmatch(m)
		parts := strings.Fields(sub[2])
		if strings.EqualFold(sub[1], "hex") {
			return decodeHex(m, parts)
		}
		r, err := decodeUnicode(parts)
		if err != nil {
			bad = err
		}
		return r
	})
	return out, bad
}

// decodeHex decodes hex-pairs (1*2HEXDIG); a longer group is no
// hex-pair, so the whole sequence m stays literal.
func decodeHex(m string, parts []string) string {
	var b []byte
	for _, p := range parts {
		if len(p) > 2 {
			return m
		}
		d, err := hex.DecodeString(strings.Repeat("0", len(p)%2) + p)
		if err != nil {
			return m
		}
		b = append(b, d...)
	}
	return string(b)
}

func decodeUnicode(parts []string) (string, error) {
	var b strings.Builder
	for _, p := range parts {
		v, err := strconv.ParseUint(p, 16, 32)
		if err != nil || v > 0x10FFFF || (v >= 0xD800 && v <= 0xDFFF) {
			return "", fmt.Errorf("encoded character ${unicode:%s} is not a Unicode scalar value", p)
		}
		b.WriteRune(rune(v))
	}
	return b.String(), nil
}

// decodeBlock returns a copy of cmds with every string argument of every
// command and test decoded, require's names aside.
func decodeBlock(cmds []parser.Cmd) ([]parser.Cmd, error) {
	if cmds == nil {
		return nil, nil // the library tells "no block" from an empty one
	}
	out := make([]parser.Cmd, len(cmds))
	for i, c := range cmds {
		var err error
		if !strings.EqualFold(c.Id, "require") {
			if c.Args, err = decodeArgs(c.Args); err != nil {
				return nil, err
			}
		}
		if c.Tests, err = decodeTests(c.Tests); err != nil {
			return nil, err
		}
		if c.Block, err = decodeBlock(c.Block); err != nil {
			return nil, err
		}
		out[i] = c
	}
	return out, nil
}

func decodeTests(ts []parser.Test) ([]parser.Test, error) {
	if ts == nil {
		return nil, nil
	}
	out := make([]parser.Test, len(ts))
	for i, t := range ts {
		var err error
		if t.Args, err = decodeArgs(t.Args); err != nil {
			return nil, err
		}
		if t.Tests, err = decodeTests(t.Tests); err != nil {
			return nil, err
		}
		out[i] = t
	}
	return out, nil
}

func decodeArgs(args []parser.Arg) ([]parser.Arg, error) {
	if args == nil {
		return nil, nil
	}
	out := make([]parser.Arg, len(args))
	for i, a := range args {
		switch a := a.(type) {
		case parser.StringArg:
			v, err := decodeEncoded(a.Value)
			if err != nil {
				return nil, errAt(a.Position, "%v", err)
			}
			a.Value = v
			out[i] = a
		case parser.StringListArg:
			vals := make([]string, len(a.Value))
			for j, s := range a.Value {
				v, err := decodeEncoded(s)
				if err != nil {
					return nil, errAt(a.Position, "%v", err)
				}
				vals[j] = v
			}
			a.Value = vals
			out[i] = a
		default:
			out[i] = a
		}
	}
	return out, nil
}

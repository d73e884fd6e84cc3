package config

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/BurntSushi/toml"
)

// Load reads the TOML file at path over [Default], makes its relative paths
// absolute against the file's directory and validates the result.
//
// Decoding is strict: every unknown key, and every key that matches a known
// one only by ignoring case, is reported. Each error names the file and,
// where it can be found, the line: `posthorn.toml:12: unknown key "x"`.
// Several problems are joined into one error.
func Load(path string) (*Config, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read config: %w", err)
	}
	doc := string(data)
	c := Default()
	if err := decode(path, doc, &c); err != nil {
		return nil, err
	}
	if err := c.resolvePaths(filepath.Dir(path)); err != nil {
		return nil, err
	}
	if err := c.Validate(); err != nil {
		return nil, atKeyLines(path, doc, err)
	}
	return &c, nil
}

// decode decodes doc, the text of the file at path, into c.
func decode(path, doc string, c *Config) error {
	md, err := toml.Decode(doc, c)
	if err != nil {
		return decodeError(path, doc, err)
	}
	keys := unknownKeys(md)
	if len(keys) == 0 {
		return nil
	}
	lines := keyLines(doc)
	errs := make([]error, len(keys))
	for i, k := range keys {
		msg := fmt.Sprintf("unknown key %q", k.String())
		if s := suggest(k); s != "" {
			msg += fmt.Sprintf(" (did you mean %q?)", s)
		}
		errs[i] = &lineError{file: path, line: lineOf(lines, k), msg: msg}
	}
	return errors.Join(errs...)
}

// unknownKeys returns the keys of md that name no field of [Config], in
// document order. A key already returned, or under one, is left out: a
// misspelt table is one mistake, not one per key in it.
func unknownKeys(md toml.MetaData) []toml.Key {
	undecoded := make(map[string]bool)
	for _, k := range md.Undecoded() {
		undecoded[k.String()] = true
	}
	var keys []toml.Key
	reported := make(map[string]bool)
	for _, k := range md.Keys() {
		unknown := undecoded[k.String()] || folded(k)
		if unknown && !covered(reported, k) {
			reported[k.String()] = true
			keys = append(keys, k)
		}
	}
	return keys
}

// covered reports whether k or one of its parents is in keys.
func covered(keys map[string]bool, k toml.Key) bool {
	for i := 1; i <= len(k); i++ {
		if keys[k[:i].String()] {
			return true
		}
	}
	return false
}

// decodeError gives a decoder error the file name and line.
func decodeError(path, doc string, err error) error {
	if pe, ok := errors.AsType[toml.ParseError](err); ok {
		msg := pe.Message
		if pe.LastKey != "" {
			msg = pe.LastKey + ": " + msg
		}
		return &lineError{file: path, line: pe.Position.Line, msg: msg, err: err}
	}
	line, key, msg, ok := splitDecoderError(err.Error())
	if !ok {
		return &lineError{file: path, msg: strings.TrimPrefix(err.Error(), "toml: "), err: err}
	}
	if line == 0 {
		line = keyLines(doc)[key]
	}
	return &lineError{file: path, line: line, msg: key + ": " + msg, err: err}
}

// splitDecoderError takes apart the text of a type error from the decoder,
// which is not a [toml.ParseError] but a plain error of the form
// `toml: line 7 (last key "smtp.max_errors"): incompatible types: ...`
// (the line part is optional).
func splitDecoderError(text string) (line int, key, msg string, ok bool) {
	rest, ok := strings.CutPrefix(text, "toml: ")
	if !ok {
		return 0, "", "", false
	}
	if after, isLine := strings.CutPrefix(rest, "line "); isLine {
		num, tail, _ := strings.Cut(after, " ")
		n, err := strconv.Atoi(num)
		if err != nil {
			return 0, "", "", false
		}
		line, rest = n, tail
	}
	rest, ok = strings.CutPrefix(rest, "(last key ")
	quoted, err := strconv.QuotedPrefix(rest)
	if !ok || err != nil {
		return 0, "", "", false
	}
	key, _ = strconv.Unquote(quoted)
	msg, ok = strings.CutPrefix(rest[len(quoted):], "): ")
	return line, key, msg, ok
}

// atKeyLines prefixes each of the joined errors err with the file name and
// the line of the key it is about.
func atKeyLines(path, doc string, err error) error {
	lines := keyLines(doc)
	errs := []error{err}
	if joined, ok := err.(interface{ Unwrap() []error }); ok {
		errs = joined.Unwrap()
	}
	out := make([]error, len(errs))
	for i, e := range errs {
		le := &lineError{file: path, msg: e.Error(), err: e}
		if ke, ok := errors.AsType[*keyError](e); ok {
			le.line = lineOf(lines, strings.Split(ke.key, "."))
		}
		out[i] = le
	}
	return errors.Join(out...)
}

// resolvePaths makes the relative file paths in c absolute against dir.
func (c *Config) resolvePaths(dir string) error {
	dir, err := filepath.Abs(dir)
	if err != nil {
		return fmt.Errorf("resolve paths: %w", err)
	}
	abs := func(p string) string {
		switch {
		case p == "":
			return ""
		case filepath.IsAbs(p):
			return filepath.Clean(p)
		}
		return filepath.Join(dir, p)
	}
	c.DataDir = abs(c.DataDir)
	c.TLS.CertFile = abs(c.TLS.CertFile)
	c.TLS.KeyFile = abs(c.TLS.KeyFile)
	c.Unix.PasswdFile, c.Unix.SpoolDir = abs(c.Unix.PasswdFile), abs(c.Unix.SpoolDir)
	for i, a := range c.Unix.Aliases {
		c.Unix.Aliases[i] = abs(a)
	}
	for i, a := range c.Listen.LMTP {
		if isSocketPath(a) {
			c.Listen.LMTP[i] = abs(a)
		}
	}
	return nil
}

// isSocketPath reports whether a listen entry names a unix socket, not a
// host:port: it has a slash ("./lmtp.sock" is a socket, "lmtp.sock" is not).
func isSocketPath(addr string) bool {
	return strings.Contains(addr, "/")
}

// lineError is a problem at a line of a config file; line 0 means unknown.
type lineError struct {
	file string
	line int
	msg  string
	err  error // the cause, or nil
}

// Error renders e as "file:line: msg", the form editors jump to.
func (e *lineError) Error() string {
	if e.line > 0 {
		return fmt.Sprintf("%s:%d: %s", e.file, e.line, e.msg)
	}
	return e.file + ": " + e.msg
}

// Unwrap returns the cause.
func (e *lineError) Unwrap() error {
	return e.err
}

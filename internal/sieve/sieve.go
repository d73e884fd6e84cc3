// Package sieve compiles and runs users' Sieve filters (RFC 5228). It is
// policy only: it never touches the store or the network. It takes a
// message's envelope, header and body and returns what should happen to
// it (Result); package delivery carries that out.
//
// The language itself is github.com/migadu/go-sieve. Two actions the
// library lacks, reject and ereject (RFC 5429), are added here by
// rewriting the parsed script before the library loads it: each becomes a
// fileinto to a mailbox name no real mailbox can have (it begins with a
// NUL), which has exactly the effects RFC 5429 §2 asks of the script's
// state (it cancels the implicit keep and its reason string expands
// variables); Run turns that name back into Result.Reject.
//
// Encoded characters (RFC 5228 §2.4.2.4) are decoded by the rewrite too,
// so that the limits of limits.go see every string as it will run.
//
// Files: sieve.go compiles, limits.go bounds what a script may hold and
// see, encoded.go decodes encoded characters, run.go executes,
// header.go reads a message header, mailbox.go checks fileinto names,
// vacation.go decides on and writes vacation replies (RFC 5230).
package sieve

import (
	"errors"
	"fmt"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/migadu/go-sieve/interp"
	"github.com/migadu/go-sieve/lexer"
	"github.com/migadu/go-sieve/parser"
)

// MaxScriptSize bounds a script's text.
const MaxScriptSize = 1 << 20

// Extensions are the capabilities a script may require, as ManageSieve
// advertises them (RFC 5804 §1.7).
var Extensions = []string{
	"fileinto", "reject", "ereject", "envelope", "encoded-character",
	"comparator-i;octet", "comparator-i;ascii-casemap", "comparator-i;ascii-numeric", "comparator-i;unicode-casemap",
	"imap4flags", "variables", "relational", "vacation", "copy", "mailbox", "subaddress", "body", "date", "index",
}

// ours are the extensions the rewrite handles: go-sieve does not know
// reject and ereject, and it is not told about encoded-character.
var ours = []string{"reject", "ereject", "encoded-character"}

// Marker prefixes of the fileinto names that carry reject and ereject.
const (
	rejectMark  = "\x00reject\x00"
	erejectMark = "\x00ereject\x00"
)

// CheckError is a script that does not compile: where and why.
type CheckError struct {
	Line, Col int // 1-based; 0 when the library gave no position
	Msg       string
}

func (e *CheckError) Error() string {
	if e.Line == 0 {
		return e.Msg
	}
	return fmt.Sprintf("line %d: %s", e.Line, e.Msg)
}

// Script is a compiled script, safe for concurrent use.
type Script struct {
	full         *interp.Script
	withoutVacat *interp.Script // for the null sender: vacation never answers it (RFC 5230 §4.6)
}

func libOptions() (lexer.Options, parser.Options, interp.Options) {
	return lexer.Options{MaxTokens: 50000},
		parser.Options{MaxBlockNesting: 15, MaxTestNesting: 15},
		interp.Options{MaxRedirects: 5, MaxVariableCount: 128, MaxVariableNameLen: 32, MaxVariableLen: maxVariableLen,
			RegexLimits: interp.RegexLimits{MaxInputLength: MaxMatchLen}}
}

// Compile checks a script and prepares it to run. A script that does not
// compile gets a *CheckError naming the line.
func Compile(src string) (*Script, error) {
	if len(src) > MaxScriptSize {
		return nil, &CheckError{Msg: fmt.Sprintf("script too large: %d octets, at most %d", len(src), MaxScriptSize)}
	}
	if !utf8.ValidString(src) {
		// A script is UTF-8 text (RFC 5228's strings are UTF-8, and so
		// is its application/sieve type). One that is not could not be
		// stored as it came (the directory's JSON copy replaces such
		// octets), so it came back altered on a restore.
		return nil, &CheckError{Line: firstInvalidLine(src), Msg: "script is not valid UTF-8"}
	}
	lo, po, io := libOptions()
	toks, err := lexer.Lex(strings.NewReader(src), &lo)
	if err != nil {
		return nil, checkError(err)
	}
	cmds, err := parser.Parse(lexer.NewStream(toks), &po)
	if err != nil {
		return nil, checkError(err)
	}
	cmds, err = rewrite(cmds)
	if err != nil {
		return nil, err
	}
	full, err := interp.LoadScript(cmds, &io, libExtensions())
	if err != nil {
		return nil, checkError(err)
	}
	quiet, err := interp.LoadScript(withoutCmd(cmds, "vacation"), &io, libExtensions())
	if err != nil {
		return nil, checkError(err)
	}
	return &Script{full: full, withoutVacat: quiet}, nil
}

// libExtensions are Extensions as the library names them: fileinto
// stands in for ours.
func libExtensions() []string {
	var out []string
	for _, e := range Extensions {
		if !slices.Contains(ours, e) {
			out = append(out, e)
		}
	}
	return out
}

var posRE = regexp.MustCompile(`^(?:[^:]*:)?(\d+):(\d+): (.*)$`)

// checkError turns a library error ("LINE:COL: text") into a CheckError.
func checkError(err error) error {
	m := posRE.FindStringSubmatch(err.Error())
	if m == nil {
		return &CheckError{Msg: err.Error()}
	}
	line, _ := strconv.Atoi(m[1])
	col, _ := strconv.Atoi(m[2])
	return &CheckError{Line: line, Col: col, Msg: m[3]}
}

func errAt(pos lexer.Position, format string, args ...any) error {
	return &CheckError{Line: pos.Line, Col: pos.Col, Msg: fmt.Sprintf(format, args...)}
}

// rewrite checks the require commands against Extensions, decodes
// encoded characters, replaces reject and ereject by marked fileinto
// commands (see the package doc) and checks the limits of limits.go.
// Command names compare without case, as the library's do.
func rewrite(cmds []parser.Cmd) ([]parser.Cmd, error) {
	req, err := requires(cmds)
	if err != nil {
		return nil, err
	}
	if req["encoded-character"] {
		if cmds, err = decodeBlock(cmds); err != nil {
			return nil, err
		}
	}
	usesFileinto := false
	out, err := rewriteBlock(cmds, req, &usesFileinto)
	if err != nil {
		return nil, err
	}
	if (req["reject"] || req["ereject"]) && !req["fileinto"] {
		if usesFileinto {
			return nil, &CheckError{Msg: `fileinto used without require "fileinto"`}
		}
		out = append([]parser.Cmd{{Id: "require", Args: []parser.Arg{parser.StringArg{Value: "fileinto"}}}}, out...)
	}
	if err := checkLimits(out, req["variables"]); err != nil {
		return nil, err
	}
	return out, nil
}

// requires checks the require commands and rewrites them, in place, to
// name only the library's extensions; it returns every name required.
func requires(cmds []parser.Cmd) (map[string]bool, error) {
	req := map[string]bool{}
	for i, c := range cmds {
		if !strings.EqualFold(c.Id, "require") {
			continue
		}
		names, pos, err := requireNames(c)
		if err != nil {
			return nil, err
		}
		var keep []string
		for _, n := range names {
			if !slices.Contains(Extensions, n) {
				return nil, errAt(pos, "unsupported extension %q", n)
			}
			req[n] = true
			if !slices.Contains(ours, n) {
				keep = append(keep, n)
			}
		}
		cmds[i].Args = []parser.Arg{parser.StringListArg{Value: keep, Position: pos}}
		if len(keep) == 0 {
			cmds[i].Args = []parser.Arg{parser.StringListArg{Value: []string{"comparator-i;octet"}, Position: pos}}
		}
	}
	return req, nil
}

func requireNames(c parser.Cmd) ([]string, lexer.Position, error) {
	if len(c.Args) != 1 {
		return nil, c.Position, errAt(c.Position, "require takes one string or string list")
	}
	switch a := c.Args[0].(type) {
	case parser.StringArg:
		return []string{a.Value}, c.Position, nil
	case parser.StringListArg:
		return a.Value, c.Position, nil
	}
	return nil, c.Position, errAt(c.Position, "require takes one string or string list")
}

func rewriteBlock(cmds []parser.Cmd, req map[string]bool, usesFileinto *bool) ([]parser.Cmd, error) {
	out := make([]parser.Cmd, 0, len(cmds))
	for _, c := range cmds {
		id := strings.ToLower(c.Id)
		switch id {
		case "fileinto":
			*usesFileinto = true
		case "reject", "ereject":
			c.Id = id
			if !req[c.Id] {
				return nil, errAt(c.Position, "%s used without require %q", c.Id, c.Id)
			}
			if len(c.Args) != 1 || len(c.Block) > 0 || len(c.Tests) > 0 {
				return nil, errAt(c.Position, "%s takes one string, the reason", c.Id)
			}
			reason, ok := c.Args[0].(parser.StringArg)
			if !ok {
				return nil, errAt(c.Position, "%s takes one string, the reason", c.Id)
			}
			mark := rejectMark
			if c.Id == "ereject" {
				mark = erejectMark
			}
			c = parser.Cmd{Position: c.Position, Id: "fileinto",
				Args: []parser.Arg{parser.StringArg{Value: mark + reason.Value, Position: reason.Position}}}
		}
		if len(c.Block) > 0 {
			b, err := rewriteBlock(c.Block, req, usesFileinto)
			if err != nil {
				return nil, err
			}
			c.Block = b
		}
		out = append(out, c)
	}
	return out, nil
}

// withoutCmd returns a copy of cmds with every command id removed, at any
// depth.
func withoutCmd(cmds []parser.Cmd, id string) []parser.Cmd {
	out := make([]parser.Cmd, 0, len(cmds))
	for _, c := range cmds {
		if strings.EqualFold(c.Id, id) {
			continue
		}
		if len(c.Block) > 0 {
			c.Block = withoutCmd(c.Block, id)
		}
		out = append(out, c)
	}
	return out
}

// MaxNameLength bounds a script name, in characters.
const MaxNameLength = 128

// ValidName checks a script name (RFC 5804 §1.6): not empty, at most
// MaxNameLength characters of valid UTF-8, none of them a control
// character or a line or paragraph separator.
func ValidName(name string) error {
	if name == "" {
		return errors.New("empty script name")
	}
	if !utf8.ValidString(name) || utf8.RuneCountInString(name) > MaxNameLength {
		return fmt.Errorf("script name must be UTF-8, at most %d characters", MaxNameLength)
	}
	for _, r := range name {
		if r < 0x20 || (r >= 0x7f && r <= 0x9f) || r == 0x2028 || r == 0x2029 {
			return fmt.Errorf("script name contains control character %U", r)
		}
	}
	return nil
}

// firstInvalidLine is the 1-based line of the first octet that is not
// part of valid UTF-8 in src.
func firstInvalidLine(src string) int {
	line := 1
	for i := 0; i < len(src); {
		r, n := utf8.DecodeRuneInString(src[i:])
		if r == utf8.RuneError && n == 1 {
			return line
		}
		if r == '\n' {
			line++
		}
		i += n
	}
	return line
}

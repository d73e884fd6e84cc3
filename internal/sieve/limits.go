package sieve

import (
	"fmt"
	"net/mail"
	"regexp"
	"strings"
	"unicode/utf8"

	"github.com/migadu/go-sieve/parser"
)

// Limits on what a script may hold and what it sees of a message. They
// defend the server against the interpreter, which builds a variable's
// whole expansion before it cuts it to MaxVariableLen and runs :matches
// as a regular expression whose goroutine outlives the run's timeout.
// docs/operations.md lists them for users.
const (
	// MaxValueLen bounds each header value and envelope address given to
	// the interpreter; longer ones are cut (at a character boundary).
	MaxValueLen = 8 << 10
	// MaxMatchLen bounds the text :matches looks at: a longer value is
	// matched on its first MaxMatchLen octets. A match variable (${1})
	// is thus never longer than a variable (MaxVariableLen).
	MaxMatchLen = maxVariableLen
	// MaxRefsPerString bounds the variable references (RFC 5229 §3) in
	// one string: an expansion then holds at most 32 × 4000 octets.
	MaxRefsPerString = 32
	// MaxRefsPerKey bounds them in a test's key: the interpreter expands
	// a key twice, so references inside a variable's value expand too
	// (up to 1000 of them, each 4000 octets): 2 keep that pass under 8 MB.
	MaxRefsPerKey = 2
	// MaxRefsPerScript bounds the references of the whole script.
	MaxRefsPerScript = 256
	// MaxWildcards bounds the '*' and '?' of one :matches key (RFC 5228
	// §2.7.1): each costs the regular expression a capture group run
	// over the whole value.
	MaxWildcards = 16
	// MaxActions bounds what one run may do, as Pigeonhole's
	// sieve_max_actions: stored copies, redirects, vacation and reject.
	MaxActions = 32
)

// maxVariableLen is the longest value of a variable (interp.Options).
const maxVariableLen = 4000

// varRefRE is a variable reference exactly as the interpreter finds it
// (RFC 5229 §3 variable-ref; go-sieve interp/variables.go).
var varRefRE = regexp.MustCompile(`\${(?:[a-zA-Z_][a-zA-Z0-9_]*\.(?:(?:[a-zA-Z_][a-zA-Z0-9_]*|[0-9]+)\.)*)?(?:[a-zA-Z_][a-zA-Z0-9_]*|[0-9]+)}`)

// budget checks a script's strings against the limits above.
type budget struct {
	vars  bool // the script requires "variables": references expand
	total int
}

// checkLimits walks the commands (encoded characters already decoded)
// and refuses a script that passes a limit, naming the line.
func checkLimits(cmds []parser.Cmd, vars bool) error {
	b := &budget{vars: vars}
	return b.block(cmds)
}

func (b *budget) block(cmds []parser.Cmd) error {
	for _, c := range cmds {
		if strings.EqualFold(c.Id, "require") {
			continue // names, never expanded
		}
		for _, a := range c.Args {
			if err := b.arg(a, MaxRefsPerString, "string"); err != nil {
				return err
			}
		}
		if strings.EqualFold(c.Id, "redirect") {
			if err := b.redirect(c); err != nil {
				return err
			}
		}
		if err := b.tests(c.Tests); err != nil {
			return err
		}
		if err := b.block(c.Block); err != nil {
			return err
		}
	}
	return nil
}

// tests checks test arguments. The last string argument of a test is
// its key list (RFC 5228 §2.7), which the interpreter expands twice.
func (b *budget) tests(ts []parser.Test) error {
	for _, t := range ts {
		key := lastString(t.Args)
		for i, a := range t.Args {
			limit, what := MaxRefsPerString, "string"
			if i == key {
				limit, what = MaxRefsPerKey, "key"
			}
			if err := b.arg(a, limit, what); err != nil {
				return err
			}
		}
		if key >= 0 && hasTag(t.Args, "matches") {
			if err := wildcards(t.Args[key]); err != nil {
				return err
			}
		}
		if err := b.tests(t.Tests); err != nil {
			return err
		}
	}
	return nil
}

// arg counts the variable references of one string or string list.
func (b *budget) arg(a parser.Arg, limit int, what string) error {
	if !b.vars {
		return nil
	}
	vals, ok := argStrings(a)
	if !ok {
		return nil
	}
	line, col := a.LineCol()
	for _, s := range vals {
		n := len(varRefRE.FindAllStringIndex(s, -1))
		if n > limit {
			return &CheckError{Line: line, Col: col, Msg: fmt.Sprintf("%s has %d variable references, at most %d", what, n, limit)}
		}
		if b.total += n; b.total > MaxRefsPerScript {
			return &CheckError{Line: line, Col: col, Msg: fmt.Sprintf("script has more than %d variable references", MaxRefsPerScript)}
		}
	}
	return nil
}

// redirect refuses a constant target that is no address. The package may
// not import smtp (internal/deps), so this asks net/mail for a bare
// RFC 5322 addr-spec; delivery parses every target again with the SMTP
// parser (RFC 5321 §4.1.2) before it queues anything.
func (b *budget) redirect(c parser.Cmd) error {
	i := lastString(c.Args)
	if i < 0 {
		return nil // the library reports the missing argument
	}
	vals, _ := argStrings(c.Args[i])
	for _, s := range vals {
		if b.vars && varRefRE.MatchString(s) {
			continue // known only when the script runs
		}
		if !plainAddress(s) {
			line, col := c.Args[i].LineCol()
			return &CheckError{Line: line, Col: col, Msg: fmt.Sprintf("redirect: %q is not an address (local@domain)", s)}
		}
	}
	return nil
}

// plainAddress tells whether s is a bare local@domain: no display name,
// no angle brackets, no comments, no spaces around.
func plainAddress(s string) bool {
	a, err := mail.ParseAddress(s)
	return err == nil && a.Name == "" && strings.TrimSpace(s) == s && !strings.ContainsAny(s, "<>()")
}

// wildcards refuses a :matches key with more than MaxWildcards '*' or
// '?'; a backslash quotes the next character (RFC 5228 §2.7.1).
func wildcards(a parser.Arg) error {
	vals, _ := argStrings(a)
	for _, s := range vals {
		n := 0
		for i := 0; i < len(s); i++ {
			switch s[i] {
			case '\\':
				i++
			case '*', '?':
				n++
			}
		}
		if n > MaxWildcards {
			line, col := a.LineCol()
			return &CheckError{Line: line, Col: col, Msg: fmt.Sprintf(":matches key has %d wildcards, at most %d", n, MaxWildcards)}
		}
	}
	return nil
}

func argStrings(a parser.Arg) ([]string, bool) {
	switch a := a.(type) {
	case parser.StringArg:
		return []string{a.Value}, true
	case parser.StringListArg:
		return a.Value, true
	}
	return nil, false
}

// lastString is the index of the last string or string list in args,
// or -1. A tag's value (":comparator" "i;octet") is never last.
func lastString(args []parser.Arg) int {
	for i := len(args) - 1; i >= 0; i-- {
		if _, ok := argStrings(args[i]); ok {
			return i
		}
	}
	return -1
}

func hasTag(args []parser.Arg, tag string) bool {
	for _, a := range args {
		if t, ok := a.(parser.TagArg); ok && strings.EqualFold(t.Value, tag) {
			return true
		}
	}
	return false
}

// clip cuts s to at most n octets without splitting a UTF-8 sequence.
func clip(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n]
}

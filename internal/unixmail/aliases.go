package unixmail

import (
	"bufio"
	"fmt"
	"io"
	"os"
	"strings"
	"sync"
	"time"
)

// maxAliasFile bounds an alias, include or .forward file.
const maxAliasFile = 4 << 20

// parseTargets splits a target list at commas outside double quotes and
// removes the quotes: `a, "|cmd x, y", /f` → [a, |cmd x, y, /f].
func parseTargets(s string) ([]string, error) {
	var out []string
	var cur strings.Builder
	quoted := false
	flush := func() {
		if t := strings.TrimSpace(cur.String()); t != "" {
			out = append(out, t)
		}
		cur.Reset()
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c == '\\' && quoted && i+1 < len(s):
			i++
			cur.WriteByte(s[i])
		case c == '"':
			quoted = !quoted
		case c == ',' && !quoted:
			flush()
		default:
			cur.WriteByte(c)
		}
	}
	if quoted {
		return nil, fmt.Errorf("unterminated quote")
	}
	flush()
	return out, nil
}

// logicalLines joins continuation lines (those starting with a space or
// tab) and drops comments and blank lines; each line keeps the number of
// its first physical line.
func logicalLines(r io.Reader, fn func(n int, line string) error) error {
	sc := bufio.NewScanner(io.LimitReader(r, maxAliasFile))
	sc.Buffer(make([]byte, 64<<10), maxAliasFile)
	var cur string
	start := 0
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimRight(sc.Text(), "\r")
		switch {
		case strings.HasPrefix(strings.TrimSpace(line), "#"), strings.TrimSpace(line) == "":
			continue
		case line[0] == ' ' || line[0] == '\t':
			if cur == "" {
				return fmt.Errorf("line %d: continuation line without an entry", n)
			}
			cur += " " + strings.TrimSpace(line)
			continue
		}
		if cur != "" {
			if err := fn(start, cur); err != nil {
				return err
			}
		}
		cur, start = line, n
	}
	if err := sc.Err(); err != nil {
		return err
	}
	if cur != "" {
		return fn(start, cur)
	}
	return nil
}

// ParseAliases reads an aliases(5) file: `name: target, target`. Names
// are case-insensitive; a later entry for the same name is an error, as
// newaliases reports it.
func ParseAliases(r io.Reader) (map[string][]string, error) {
	out := map[string][]string{}
	err := logicalLines(r, func(n int, line string) error {
		name, rest, ok := strings.Cut(line, ":")
		name = strings.ToLower(strings.Trim(strings.TrimSpace(name), `"`))
		if !ok || name == "" || strings.ContainsAny(name, " \t,") {
			return fmt.Errorf("line %d: want \"name: target, ...\"", n)
		}
		if _, dup := out[name]; dup {
			return fmt.Errorf("line %d: duplicate entry for %q", n, name)
		}
		ts, err := parseTargets(rest)
		if err != nil {
			return fmt.Errorf("line %d: %v", n, err)
		}
		if len(ts) == 0 {
			return fmt.Errorf("line %d: %q has no targets", n, name)
		}
		out[name] = ts
		return nil
	})
	return out, err
}

// ParseTargetFile reads a .forward or :include: file: targets separated by
// commas or lines.
func ParseTargetFile(r io.Reader) ([]string, error) {
	var out []string
	err := logicalLines(r, func(n int, line string) error {
		ts, err := parseTargets(line)
		if err != nil {
			return fmt.Errorf("line %d: %v", n, err)
		}
		out = append(out, ts...)
		return nil
	})
	return out, err
}

// aliasFiles holds the parsed alias files, read again when one changes.
type aliasFiles struct {
	paths []string

	mu     sync.Mutex
	stamps []time.Time
	table  map[string][]string
	err    error
}

// lookup returns the targets of name, if any alias file has it (the first
// file that does wins).
func (a *aliasFiles) lookup(name string) ([]string, bool, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if err := a.refreshLocked(); err != nil {
		return nil, false, err
	}
	ts, ok := a.table[strings.ToLower(name)]
	return ts, ok, nil
}

func (a *aliasFiles) refreshLocked() error {
	stamps := make([]time.Time, len(a.paths))
	for i, p := range a.paths {
		if fi, err := os.Stat(p); err == nil {
			stamps[i] = fi.ModTime()
		}
	}
	if a.table != nil && equalTimes(stamps, a.stamps) {
		return a.err
	}
	table, err := LoadAliases(a.paths)
	a.stamps = stamps
	if err != nil {
		// Keep serving the last good table; report the error once per change.
		a.err = err
		if a.table == nil {
			a.table = map[string][]string{}
		}
		return nil
	}
	a.table, a.err = table, nil
	return nil
}

// LoadAliases parses every alias file into one table; a missing file is
// skipped (Debian hosts often have none).
func LoadAliases(paths []string) (map[string][]string, error) {
	table := map[string][]string{}
	for _, p := range paths {
		f, err := os.Open(p)
		if os.IsNotExist(err) {
			continue
		}
		if err != nil {
			return nil, err
		}
		t, err := ParseAliases(f)
		f.Close()
		if err != nil {
			return nil, fmt.Errorf("%s: %w", p, err)
		}
		for k, v := range t {
			if _, ok := table[k]; !ok {
				table[k] = v
			}
		}
	}
	return table, nil
}

func equalTimes(a, b []time.Time) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if !a[i].Equal(b[i]) {
			return false
		}
	}
	return true
}

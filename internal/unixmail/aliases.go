package unixmail

import (
	"bufio"
	"fmt"
	"io"
	"log/slog"
	"os"
	"slices"
	"strings"
	"sync"
	"syscall"
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
// are case-insensitive. A later entry for a name already seen is an
// error here, for `posthorn newaliases` to show; the daemon reads the
// files with parseAliases, which keeps the first and warns.
func ParseAliases(r io.Reader) (map[string][]string, error) {
	return parseAliases(r, func(n int, name string, first int) error {
		return fmt.Errorf("line %d: duplicate entry for %q (first on line %d)", n, name, first)
	})
}

// parseAliases reads an aliases(5) file; dup decides about a name seen
// again on line n (first: where it was first), the entry being dropped
// when it returns nil.
func parseAliases(r io.Reader, dup func(n int, name string, first int) error) (map[string][]string, error) {
	out := map[string][]string{}
	lines := map[string]int{}
	err := logicalLines(r, func(n int, line string) error {
		name, rest, ok := strings.Cut(line, ":")
		name = strings.ToLower(strings.Trim(strings.TrimSpace(name), `"`))
		if !ok || name == "" || strings.ContainsAny(name, " \t,") {
			return fmt.Errorf("line %d: want \"name: target, ...\"", n)
		}
		ts, err := parseTargets(rest)
		if err != nil {
			return fmt.Errorf("line %d: %v", n, err)
		}
		if len(ts) == 0 {
			return fmt.Errorf("line %d: %q has no targets", n, name)
		}
		if first, seen := lines[name]; seen {
			return dup(n, name, first)
		}
		out[name], lines[name] = ts, n
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
//
// A file that does not parse does not take the table away: the last good
// table is kept (as the alias database of sendmail and Postfix stays as
// it was until newaliases succeeds), and the error is logged once per
// change. Names that appear in the broken files but not in that table
// (all of them, at startup, when there is none) get a temporary failure:
// they may be aliases, so neither a 550 nor delivery to an account of
// that name would be right, while every other name is served as usual.
// A duplicate name is no error: the first entry is used and the others
// are logged, as postalias(1) does.
type aliasFiles struct {
	paths []string
	log   *slog.Logger

	mu         sync.Mutex
	loaded     bool // stamps are those of the last attempt
	stamps     []fileStamp
	table      map[string][]string // the last good table; nil before one
	err        error               // why the last attempt failed; nil if it did not
	pending    map[string]bool     // names in the files that failed to load
	pendingAll bool                // a file could not be read through: any name may be in it
}

// fileStamp tells whether a file changed: an editor's rewrite within one
// tick of a coarse clock changes its size or inode if not its time.
type fileStamp struct {
	mtime time.Time
	size  int64
	ino   uint64
}

// lookup returns the targets of name, if any alias file has it (the first
// file that does wins). The error wraps ErrConfig when the files are
// broken and name may be in them.
func (a *aliasFiles) lookup(name string) ([]string, bool, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.refreshLocked()
	name = strings.ToLower(name)
	if ts, ok := a.table[name]; ok {
		return ts, true, nil
	}
	if a.err != nil && (a.pendingAll || a.pending[name]) {
		return nil, false, fmt.Errorf("%w: %q may be an alias in a file that does not load: %v", ErrConfig, name, a.err)
	}
	return nil, false, nil
}

func (a *aliasFiles) refreshLocked() {
	stamps := make([]fileStamp, len(a.paths))
	for i, p := range a.paths {
		if fi, err := os.Stat(p); err == nil {
			stamps[i] = fileStamp{mtime: fi.ModTime(), size: fi.Size()}
			if st, ok := fi.Sys().(*syscall.Stat_t); ok {
				stamps[i].ino = uint64(st.Ino)
			}
		}
	}
	if a.loaded && slices.Equal(stamps, a.stamps) {
		return
	}
	a.loaded, a.stamps = true, stamps
	table, err := loadAliases(a.paths, a.warnDup)
	if err == nil {
		a.table, a.err, a.pending, a.pendingAll = table, nil, nil, false
		return
	}
	a.err = err
	a.pending, a.pendingAll = aliasNames(a.paths)
	if a.table == nil {
		a.log.Error("unix mail: alias files do not load and no earlier table was; mail to the names in them is deferred until they are fixed", "err", err)
		return
	}
	a.log.Error("unix mail: alias files do not load; the last good table is used until they are fixed", "err", err)
}

func (a *aliasFiles) warnDup(path string, n int, name string, first int) error {
	a.log.Warn("unix mail: duplicate alias ignored; the first entry is used", "file", path, "line", n, "name", name, "first_line", first)
	return nil
}

// LoadAliases parses every alias file into one table; a missing file is
// skipped (Debian hosts often have none). A duplicate name is an error
// (see ParseAliases).
func LoadAliases(paths []string) (map[string][]string, error) {
	return loadAliases(paths, func(path string, n int, name string, first int) error {
		return fmt.Errorf("%s: line %d: duplicate entry for %q (first on line %d)", path, n, name, first)
	})
}

func loadAliases(paths []string, dup func(path string, n int, name string, first int) error) (map[string][]string, error) {
	table := map[string][]string{}
	for _, p := range paths {
		f, err := os.Open(p)
		if os.IsNotExist(err) {
			continue
		}
		if err != nil {
			return nil, err
		}
		t, err := parseAliases(f, func(n int, name string, first int) error { return dup(p, n, name, first) })
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

// aliasNames lists, leniently, the names the alias files seem to define:
// on every line, what comes before the first colon, or the first word
// of an entry line without one ("name target": a colon forgotten). all
// is true when a file could not be read through.
func aliasNames(paths []string) (names map[string]bool, all bool) {
	names = map[string]bool{}
	for _, p := range paths {
		f, err := os.Open(p)
		if os.IsNotExist(err) {
			continue
		}
		if err != nil {
			return names, true
		}
		sc := bufio.NewScanner(io.LimitReader(f, maxAliasFile))
		sc.Buffer(make([]byte, 64<<10), maxAliasFile)
		for sc.Scan() {
			if name := lineName(sc.Text()); name != "" {
				names[name] = true
			}
		}
		err = sc.Err()
		f.Close()
		if err != nil {
			return names, true
		}
	}
	return names, false
}

// lineName is the name a line of an alias file may define, or "".
func lineName(line string) string {
	trimmed := strings.TrimSpace(line)
	if trimmed == "" || trimmed[0] == '#' {
		return ""
	}
	name, _, ok := strings.Cut(trimmed, ":")
	if !ok {
		if line[0] == ' ' || line[0] == '\t' {
			return "" // a continuation: targets only
		}
		name, _, _ = strings.Cut(trimmed, " ")
		name, _, _ = strings.Cut(name, "\t")
	}
	name = strings.ToLower(strings.Trim(strings.TrimSpace(name), `"`))
	if strings.ContainsAny(name, " \t,\"") {
		return ""
	}
	return name
}

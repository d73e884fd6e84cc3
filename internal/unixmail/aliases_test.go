package unixmail

import (
	"bytes"
	"errors"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

// editAliases rewrites the alias file of a host and moves its time on,
// as an edit a while later would.
func editAliases(t *testing.T, dir, text string) {
	t.Helper()
	p := filepath.Join(dir, "aliases")
	write(t, p, text, 0o644)
	later := time.Now().Add(time.Duration(len(text)) * time.Second)
	os.Chtimes(p, later, later)
}

// logTo makes the host log into buf.
func logTo(buf *bytes.Buffer) func(*Options) {
	return func(o *Options) { o.Logger = slog.New(slog.NewTextHandler(buf, nil)) }
}

// resolveTwice resolves in twice (the first and a later message, which
// once differed) and checks both give want, or an error matching
// wantErr.
func resolveTwice(t *testing.T, s *System, in string, want []string, wantErr error) {
	t.Helper()
	for i := range 2 {
		got, err := s.Resolve(in)
		switch {
		case wantErr != nil && !errors.Is(err, wantErr):
			t.Errorf("%s (%d): %v %v, want %v", in, i+1, names(got), err, wantErr)
		case wantErr == nil && (err != nil || !slices.Equal(names(got), want)):
			t.Errorf("%s (%d): %v %v, want %v", in, i+1, names(got), err, want)
		}
	}
}

// TestAliasDuplicateIsAWarning: a name given twice keeps its first entry
// and is logged, as postalias(1) does; it deferred every later message
// to any local user (451 4.3.0).
func TestAliasDuplicateIsAWarning(t *testing.T) {
	var log bytes.Buffer
	s, dir := host(t, "x: alice\n", logTo(&log))
	resolveTwice(t, s, "x", []string{"mbox:alice"}, nil)
	editAliases(t, dir, "x: alice\ny: carol\nX: bob\n")
	resolveTwice(t, s, "x", []string{"mbox:alice"}, nil)
	resolveTwice(t, s, "y", []string{"mbox:carol"}, nil)
	resolveTwice(t, s, "bob", []string{"mbox:bob"}, nil)
	if !strings.Contains(log.String(), "duplicate alias") || !strings.Contains(log.String(), "line=3") {
		t.Errorf("no warning naming the line logged:\n%s", log.String())
	}
	// At startup too: the first message to the alias got 550 5.1.1.
	s, _ = host(t, "rtalias: alice\nrtalias: bob\n", nil)
	resolveTwice(t, s, "rtalias", []string{"mbox:alice"}, nil)
}

// TestAliasSyntaxErrorKeepsLastGoodTable: an alias file that does not
// parse leaves the last good table in use, for every message, not only
// the first; a name new in the broken file is deferred, not bounced.
func TestAliasSyntaxErrorKeepsLastGoodTable(t *testing.T) {
	var log bytes.Buffer
	s, dir := host(t, "x: alice\n", logTo(&log))
	resolveTwice(t, s, "x", []string{"mbox:alice"}, nil)
	editAliases(t, dir, "x: bob\nnew: carol\noops no colon\n")
	resolveTwice(t, s, "x", []string{"mbox:alice"}, nil)
	resolveTwice(t, s, "bob", []string{"mbox:bob"}, nil)
	resolveTwice(t, s, "new", nil, ErrConfig)
	resolveTwice(t, s, "oops", nil, ErrConfig)
	resolveTwice(t, s, "nosuch", nil, ErrNoSuchUser)
	if !strings.Contains(log.String(), "last good table") {
		t.Errorf("the error was not logged:\n%s", log.String())
	}
	editAliases(t, dir, "x: bob\nnew: carol\n")
	resolveTwice(t, s, "x", []string{"mbox:bob"}, nil)
	resolveTwice(t, s, "new", []string{"mbox:carol"}, nil)
}

// TestAliasSyntaxErrorAtStartup: with no good table yet, names in the
// broken file get a temporary failure (an alias got 550 5.1.1 from an
// empty table), and every other name is served as usual.
func TestAliasSyntaxErrorAtStartup(t *testing.T) {
	var log bytes.Buffer
	s, _ := host(t, "rtalias: alice\nbob: carol\n  carol: x\nmissing colon\n", logTo(&log))
	resolveTwice(t, s, "rtalias", nil, ErrConfig)
	resolveTwice(t, s, "bob", nil, ErrConfig) // an account, but the file may alias it
	resolveTwice(t, s, "carol", nil, ErrConfig)
	resolveTwice(t, s, "missing", nil, ErrConfig)
	resolveTwice(t, s, "alice", []string{"mbox:alice"}, nil)
	resolveTwice(t, s, "alice+tag", []string{"mbox:alice"}, nil)
	resolveTwice(t, s, "nosuch", nil, ErrNoSuchUser)
	if !strings.Contains(log.String(), "deferred") {
		t.Errorf("the error was not logged:\n%s", log.String())
	}
	// A file that cannot be read through may hold any name.
	s, dir := host(t, "", nil)
	p := filepath.Join(dir, "aliases")
	os.Remove(p)
	os.Mkdir(p, 0o755)
	resolveTwice(t, s, "nosuch", nil, ErrConfig)
}

// Package deps holds only this test: it keeps the package map of
// DESIGN.md true. Arrows point down: cli → daemon → policy (delivery,
// outbound, fetch) → wire packages and storage → leaves; only daemon and
// cli read config; wire packages never touch storage or policy.
package deps

import (
	"go/build"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

const module = "posthorn/internal/"

// forbidden lists, for each package (relative to internal/), the internal
// packages it must never import, directly.
var forbidden = map[string][]string{
	// Wire packages: protocol only.
	"smtp":        {"store", "store/local", "delivery", "queue", "users", "daemon", "cli", "config", "imap", "pop3"},
	"imap":        {"store", "store/local", "delivery", "queue", "users", "daemon", "cli", "config", "smtp", "pop3"},
	"pop3":        {"store", "store/local", "delivery", "queue", "users", "daemon", "cli", "config", "smtp", "imap"},
	"managesieve": {"store", "store/local", "delivery", "queue", "users", "daemon", "cli", "config", "sieve"},
	// Leaves.
	"sasl":      {"store", "users", "smtp", "imap", "pop3", "daemon", "cli", "config"},
	"message":   {"store", "users", "smtp", "imap", "pop3", "daemon", "cli", "config"},
	"sieve":     {"store", "users", "smtp", "imap", "delivery", "daemon", "cli", "config"},
	"connlimit": {"store", "users", "smtp", "imap", "daemon", "cli", "config"},
	"metrics":   {"store", "users", "smtp", "imap", "daemon", "cli", "config"},
	"dns":       {"store", "users", "smtp", "daemon", "cli", "config"},
	"users":     {"store", "store/local", "smtp", "imap", "pop3", "delivery", "daemon", "cli", "config"},
	// Storage never speaks a protocol or decides policy.
	"store":       {"smtp", "imap", "pop3", "delivery", "queue", "daemon", "cli", "config"},
	"store/local": {"smtp", "imap", "pop3", "delivery", "queue", "daemon", "cli", "config"},
	"unixmail":    {"store", "smtp", "imap", "delivery", "daemon", "cli", "config"},
	// Policy.
	"delivery": {"daemon", "cli", "config", "imap", "pop3", "store/local"},
	"queue":    {"daemon", "cli", "config", "delivery", "outbound", "store/local"},
	"outbound": {"daemon", "cli", "config", "delivery", "store/local"},
}

// onlyFrom lists packages that may be imported only by the named ones.
var onlyFrom = map[string][]string{
	"config":      {"daemon", "cli"},
	"daemon":      {"cli"},
	"cli":         {},
	"store/local": {"daemon", "cli"},
}

func TestPackageMap(t *testing.T) {
	root, err := filepath.Abs("..")
	if err != nil {
		t.Fatal(err)
	}
	imports := map[string][]string{}
	err = filepath.WalkDir(root, func(path string, d os.DirEntry, err error) error {
		if err != nil || !d.IsDir() || strings.Contains(path, "testdata") {
			return err
		}
		pkg, err := build.ImportDir(path, 0)
		if err != nil {
			return nil // no Go files, or only tests
		}
		rel, _ := filepath.Rel(root, path)
		for _, imp := range pkg.Imports {
			if strings.HasPrefix(imp, module) {
				imports[filepath.ToSlash(rel)] = append(imports[filepath.ToSlash(rel)], strings.TrimPrefix(imp, module))
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(imports) < 10 {
		t.Fatalf("found only %d packages with internal imports: is the walk broken?", len(imports))
	}
	for pkg, deps := range imports {
		for _, dep := range deps {
			if slices.Contains(forbidden[pkg], dep) {
				t.Errorf("%s imports %s: against the package map", pkg, dep)
			}
			if allowed, ok := onlyFrom[dep]; ok && !slices.Contains(allowed, pkg) {
				t.Errorf("%s imports %s, which only %v may import", pkg, dep, allowed)
			}
		}
	}
}

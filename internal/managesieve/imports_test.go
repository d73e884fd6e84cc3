package managesieve

import (
	"go/parser"
	"go/token"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// TestImports keeps managesieve a wire package: no disk, no storage, no other
// protocol's internals. The daemon wires it to those.
func TestImports(t *testing.T) {
	t.Parallel()
	forbidden := []string{"os", "io/fs", "path/filepath", "database/sql", "posthorn/internal/store", "posthorn/internal/smtp",
		"posthorn/internal/users", "posthorn/internal/daemon", "posthorn/internal/config", "posthorn/internal/sieve",
		"posthorn/internal/pop3", "posthorn/internal/imap"}
	files, err := filepath.Glob("*.go")
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range files {
		if strings.HasSuffix(f, "_test.go") {
			continue
		}
		af, err := parser.ParseFile(token.NewFileSet(), f, nil, parser.ImportsOnly)
		if err != nil {
			t.Fatal(err)
		}
		for _, imp := range af.Imports {
			path, _ := strconv.Unquote(imp.Path.Value)
			for _, bad := range forbidden {
				if path == bad || strings.HasPrefix(path, bad+"/") {
					t.Errorf("%s imports %s", f, path)
				}
			}
		}
	}
}

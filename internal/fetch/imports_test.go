package fetch

import (
	"go/parser"
	"go/token"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// TestImports keeps fetch independent of the configuration and of how
// mail is stored: the daemon and the command line wire it to both through
// Source and Deliverer.
func TestImports(t *testing.T) {
	t.Parallel()
	forbidden := []string{"posthorn/internal/config", "posthorn/internal/daemon", "posthorn/internal/cli",
		"posthorn/internal/store", "posthorn/internal/delivery", "posthorn/internal/users", "database/sql"}
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

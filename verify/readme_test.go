package verify

import (
	"go/ast"
	"go/parser"
	"go/token"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// Check ids are stable names users filter on: every Check* constant of the format and
// verification packages must appear in the README's table of check ids.
func TestREADMEListsEveryCheckID(t *testing.T) {
	readme, err := os.ReadFile("../README.md")
	if err != nil {
		t.Fatal(err)
	}
	ids := map[string]string{}
	for _, dir := range []string{"../tarcheck", "../zstdchunked", "../estargz", "../nydus", "../verify", "../check"} {
		files, _ := filepath.Glob(filepath.Join(dir, "*.go"))
		for _, path := range files {
			if strings.HasSuffix(path, "_test.go") {
				continue
			}
			f, err := parser.ParseFile(token.NewFileSet(), path, nil, 0)
			if err != nil {
				t.Fatal(err)
			}
			ast.Inspect(f, func(n ast.Node) bool {
				vs, ok := n.(*ast.ValueSpec)
				if !ok {
					return true
				}
				for i, name := range vs.Names {
					if !strings.HasPrefix(name.Name, "Check") || i >= len(vs.Values) {
						continue
					}
					if lit, ok := vs.Values[i].(*ast.BasicLit); ok && lit.Kind == token.STRING {
						if id, _ := strconv.Unquote(lit.Value); strings.Contains(id, ".") {
							ids[id] = path
						}
					}
				}
				return true
			})
		}
	}
	if len(ids) < 40 {
		t.Fatalf("found only %d check ids", len(ids))
	}
	for id, path := range ids {
		if !strings.Contains(string(readme), "`"+id+"`") {
			t.Errorf("README does not list check id %s (%s)", id, path)
		}
	}
}

package store

import (
	"go/ast"
	"go/parser"
	"go/token"
	"io/fs"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"testing"
)

// TestBackendKnowledgeStaysInBackends reads the source tree (non-test Go
// files of cmd/ and internal/) and checks the promise of the package doc:
// no file outside internal/store/filestore builds a shard file name (a
// ".db" suffix or a temporary file's), none outside
// internal/store/redisstore builds a Redis key (its ":metric:", ":meta:"
// or ":promstore:" parts, or the prefix joined with ":"), and no type
// assertion or type switch names a backend's store type. The one way to
// reach a backend's own type is As, in open.go; cleanup's NewTarget is its
// only user (compaction drives each backend's own API).
func TestBackendKnowledgeStaysInBackends(t *testing.T) {
	_, self, _, _ := runtime.Caller(0)
	root := filepath.Clean(filepath.Join(filepath.Dir(self), "..", ".."))
	backendType := func(e ast.Expr) string {
		if st, ok := e.(*ast.StarExpr); ok {
			if sel, ok := st.X.(*ast.SelectorExpr); ok {
				if id, ok := sel.X.(*ast.Ident); ok && (id.Name == "filestore" || id.Name == "redisstore") {
					return id.Name + "." + sel.Sel.Name
				}
			}
		}
		return ""
	}
	var bad []string
	asUses := map[string]int{}
	fset := token.NewFileSet()
	for _, top := range []string{"cmd", "internal"} {
		err := filepath.WalkDir(filepath.Join(root, top), func(path string, d fs.DirEntry, err error) error {
			if err != nil || d.IsDir() || !strings.HasSuffix(path, ".go") || strings.HasSuffix(path, "_test.go") {
				return err
			}
			rel, _ := filepath.Rel(root, path)
			rel = filepath.ToSlash(rel)
			inFiles := strings.HasPrefix(rel, "internal/store/filestore/")
			inRedis := strings.HasPrefix(rel, "internal/store/redisstore/")
			f, err := parser.ParseFile(fset, path, nil, 0)
			if err != nil {
				return err
			}
			report := func(n ast.Node, what string) {
				bad = append(bad, fset.Position(n.Pos()).String()+": "+what)
			}
			ast.Inspect(f, func(n ast.Node) bool {
				switch n := n.(type) {
				case *ast.BasicLit:
					if n.Kind != token.STRING {
						break
					}
					s, err := strconv.Unquote(n.Value)
					if err != nil {
						break
					}
					if !inFiles && (s == ".db" || strings.HasSuffix(s, "%s.db") || strings.HasSuffix(s, "%v.db") || strings.Contains(s, ".db.tmp")) {
						report(n, "builds a shard file name: "+n.Value)
					}
					if !inRedis && (s == ":metric:" || s == ":meta:" || strings.HasPrefix(s, ":promstore:") || s == ":promstore") {
						report(n, "builds a Redis key: "+n.Value)
					}
				case *ast.BinaryExpr:
					if sel, ok := n.X.(*ast.SelectorExpr); ok && !inRedis && n.Op == token.ADD && sel.Sel.Name == "Prefix" {
						if lit, ok := n.Y.(*ast.BasicLit); ok && strings.HasPrefix(lit.Value, `":`) {
							report(n, "builds a Redis key from the prefix")
						}
					}
				case *ast.TypeAssertExpr:
					if bt := backendType(n.Type); bt != "" {
						report(n, "type assertion on "+bt)
					}
				case *ast.CaseClause:
					for _, e := range n.List {
						if bt := backendType(e); bt != "" {
							report(e, "type switch on "+bt)
						}
					}
				case *ast.IndexExpr:
					if bt := backendType(n.Index); bt != "" {
						asUses[rel]++
					}
				}
				return true
			})
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	for _, b := range bad {
		t.Error(b)
	}
	for file, n := range asUses {
		t.Errorf("%s: %d generic uses of a backend's store type (store.As[*filestore.Store]); ask a capability instead", file, n)
	}
}

package registry

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"go/ast"
	"go/importer"
	"go/parser"
	"go/token"
	"go/types"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"testing"
)

// forbiddenImports are packages whose results differ between endorsing
// peers (clocks, randomness, the host) or that invite concurrency.
var forbiddenImports = []string{"time", "math/rand", "math/rand/v2", "crypto/rand", "os", "net", "io/ioutil", "sync"}

// mapOrderFuncs are the functions that visit a map's entries in the
// map's (random) iteration order and let the caller see that order: the
// iterators of package maps, the functions of package maps that call back
// in that order, and reflect's map iteration. Keyed by types.Func.FullName.
var mapOrderFuncs = map[string]bool{
	"maps.All":                 true,
	"maps.Keys":                true,
	"maps.Values":              true,
	"maps.DeleteFunc":          true,
	"maps.EqualFunc":           true,
	"(reflect.Value).MapKeys":  true,
	"(reflect.Value).MapRange": true,
	"(reflect.Value).Seq":      true, // on a map value: its keys in map order
	"(reflect.Value).Seq2":     true,
	"(*reflect.MapIter).Reset": true,
}

func isForbiddenImport(path string) bool {
	for _, f := range forbiddenImports {
		if path == f || strings.HasPrefix(path, f+"/") {
			return true
		}
	}
	return false
}

// determinismFindings checks type-checked files against the determinism
// rules of the contract: no forbidden imports, no go statements, no
// package-level variables and no iteration over a map (whose order is
// random): no range over a map, and no use (call, function value or method
// expression) of a function of mapOrderFuncs. info must record Types and
// Uses.
func determinismFindings(fset *token.FileSet, files []*ast.File, info *types.Info) []string {
	type finding struct {
		pos token.Position
		msg string
	}
	var found []finding
	report := func(pos token.Pos, format string, args ...any) {
		found = append(found, finding{fset.Position(pos), fmt.Sprintf(format, args...)})
	}
	for _, file := range files {
		for _, imp := range file.Imports {
			if path := strings.Trim(imp.Path.Value, `"`); isForbiddenImport(path) {
				report(imp.Pos(), "imports %q", path)
			}
		}
		for _, decl := range file.Decls {
			if gen, ok := decl.(*ast.GenDecl); ok && gen.Tok == token.VAR {
				report(gen.Pos(), "declares a package-level variable")
			}
		}
		ast.Inspect(file, func(n ast.Node) bool {
			switch n := n.(type) {
			case *ast.GoStmt:
				report(n.Pos(), "starts a goroutine")
			case *ast.RangeStmt:
				if tv, ok := info.Types[n.X]; ok && tv.Type != nil {
					if _, isMap := tv.Type.Underlying().(*types.Map); isMap {
						report(n.Pos(), "ranges over a map (%s)", tv.Type)
					}
				}
			case *ast.Ident:
				if fn, ok := info.Uses[n].(*types.Func); ok && mapOrderFuncs[fn.Origin().FullName()] {
					report(n.Pos(), "uses %s, which visits a map in its random order", fn.Origin().FullName())
				}
			}
			return true
		})
	}
	sort.Slice(found, func(i, j int) bool {
		a, b := found[i].pos, found[j].pos
		if a.Filename != b.Filename {
			return a.Filename < b.Filename
		}
		return a.Offset < b.Offset
	})
	findings := make([]string, len(found))
	for i, f := range found {
		findings[i] = fmt.Sprintf("%s:%d: %s", filepath.Base(f.pos.Filename), f.pos.Line, f.msg)
	}
	return findings
}

// loadPackage parses and type-checks the non-test files of dir. Imports are
// resolved from compiled export data that `go list -export` reports.
func loadPackage(t *testing.T, dir string) (*token.FileSet, []*ast.File, *types.Info) {
	t.Helper()
	fset := token.NewFileSet()
	names, err := filepath.Glob(filepath.Join(dir, "*.go"))
	if err != nil {
		t.Fatal(err)
	}
	var files []*ast.File
	for _, name := range names {
		if strings.HasSuffix(name, "_test.go") {
			continue
		}
		f, err := parser.ParseFile(fset, name, nil, parser.SkipObjectResolution)
		if err != nil {
			t.Fatal(err)
		}
		files = append(files, f)
	}
	if len(files) == 0 {
		t.Fatalf("no Go files in %s", dir)
	}
	exports := exportFiles(t, dir)
	imp := importer.ForCompiler(fset, "gc", func(path string) (io.ReadCloser, error) {
		file, ok := exports[path]
		if !ok {
			return nil, errors.New("no export data for " + path)
		}
		return os.Open(file)
	})
	info := &types.Info{Types: map[ast.Expr]types.TypeAndValue{}, Uses: map[*ast.Ident]types.Object{}}
	conf := types.Config{Importer: imp}
	if _, err := conf.Check(files[0].Name.Name, fset, files, info); err != nil {
		t.Fatalf("type-checking %s: %v", dir, err)
	}
	return fset, files, info
}

// exportFiles maps the import paths of the dependencies of the package in
// dir to their export data files.
func exportFiles(t *testing.T, dir string) map[string]string {
	t.Helper()
	cmd := exec.Command("go", "list", "-export", "-deps", "-json=ImportPath,Export", ".")
	cmd.Dir = dir
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("go list: %v: %s", err, stderr.String())
	}
	exports := map[string]string{}
	dec := json.NewDecoder(bytes.NewReader(out))
	for dec.More() {
		var p struct{ ImportPath, Export string }
		if err := dec.Decode(&p); err != nil {
			t.Fatal(err)
		}
		exports[p.ImportPath] = p.Export
	}
	return exports
}

// TestContractIsDeterministic applies the rules to this package.
func TestContractIsDeterministic(t *testing.T) {
	fset, files, info := loadPackage(t, ".")
	for _, f := range determinismFindings(fset, files, info) {
		t.Error(f)
	}
}

// TestDeterminismCheckFindsViolations proves the check on a package that
// breaks every rule.
func TestDeterminismCheckFindsViolations(t *testing.T) {
	dir := t.TempDir()
	src := `package bad

import (
	"math/rand"
	"sync"
	"time"
)

var counter int

type index map[string]int

func f(m map[string]int, idx index, s []int) int {
	var mu sync.Mutex
	mu.Lock()
	go func() {}()
	for k := range m {
		_ = k
	}
	for range idx {
	}
	for range s {
	}
	return rand.Int() + int(time.Now().Unix())
}
`
	for name, content := range map[string]string{"bad.go": src, "go.mod": "module bad\n\ngo 1.24\n"} {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	fset, files, info := loadPackage(t, dir)
	got := strings.Join(determinismFindings(fset, files, info), "\n")
	want := strings.Join([]string{
		`bad.go:4: imports "math/rand"`,
		`bad.go:5: imports "sync"`,
		`bad.go:6: imports "time"`,
		`bad.go:9: declares a package-level variable`,
		`bad.go:16: starts a goroutine`,
		`bad.go:17: ranges over a map (map[string]int)`,
		`bad.go:20: ranges over a map (bad.index)`,
	}, "\n")
	if got != want {
		t.Errorf("findings:\n%s\nwant:\n%s", got, want)
	}
}

// TestDeterminismCheckFindsMapIterationByFunctions proves the check on map
// iteration that no range statement shows: the iterators and callbacks of
// package maps and reflect's map iteration, however they are referred to;
// and that it leaves alone the functions that do not reveal a map's order
// and namesakes of other packages.
func TestDeterminismCheckFindsMapIterationByFunctions(t *testing.T) {
	dir := t.TempDir()
	src := `package bad

import (
	"maps"
	mp "maps"
	"reflect"
	"slices"
)

type own struct{}

func (own) MapRange() {}

func Keys(m map[string]int) []string { return nil }

func f(m map[string]int, v reflect.Value) {
	_ = slices.Collect(maps.Keys(m))
	_ = slices.Sorted(maps.Keys(m))
	for range maps.Values(m) {
	}
	for k, x := range mp.All(m) {
		_, _ = k, x
	}
	keys := maps.Keys[map[string]int]
	_ = keys
	maps.DeleteFunc(m, func(string, int) bool { return false })
	_ = maps.EqualFunc(m, m, func(a, b int) bool { return a == b })
	it := v.MapRange()
	_ = it
	_ = v.MapKeys()
	_ = reflect.Value.MapKeys(v)
	for range v.Seq() {
	}
	var iter reflect.MapIter
	iter.Reset(v)
	_ = maps.Clone(m)
	maps.Copy(m, m)
	_ = maps.Equal(m, m)
	own{}.MapRange()
	_ = Keys(m)
	_ = v.Len()
}
`
	for name, content := range map[string]string{"bad.go": src, "go.mod": "module bad\n\ngo 1.24\n"} {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	fset, files, info := loadPackage(t, dir)
	got := strings.Join(determinismFindings(fset, files, info), "\n")
	want := strings.Join([]string{
		`bad.go:17: uses maps.Keys, which visits a map in its random order`,
		`bad.go:18: uses maps.Keys, which visits a map in its random order`,
		`bad.go:19: uses maps.Values, which visits a map in its random order`,
		`bad.go:21: uses maps.All, which visits a map in its random order`,
		`bad.go:24: uses maps.Keys, which visits a map in its random order`,
		`bad.go:26: uses maps.DeleteFunc, which visits a map in its random order`,
		`bad.go:27: uses maps.EqualFunc, which visits a map in its random order`,
		`bad.go:28: uses (reflect.Value).MapRange, which visits a map in its random order`,
		`bad.go:30: uses (reflect.Value).MapKeys, which visits a map in its random order`,
		`bad.go:31: uses (reflect.Value).MapKeys, which visits a map in its random order`,
		`bad.go:32: uses (reflect.Value).Seq, which visits a map in its random order`,
		`bad.go:35: uses (*reflect.MapIter).Reset, which visits a map in its random order`,
	}, "\n")
	if got != want {
		t.Errorf("findings:\n%s\nwant:\n%s", got, want)
	}
}

// TestEndorsementsAreRepeatable endorses calls of every function, the
// evaluation gate's among them, many times on the same committed state, as
// the endorsing peers of one transaction do: each endorsement must give the
// same write set, event, result and error, byte for byte. It complements
// the static rules above, which cannot see every source of disorder (a map
// reached through another package, say).
func TestEndorsementsAreRepeatable(t *testing.T) {
	h := newHarness(t)
	h.evaluationSetup()
	h.registerHoldOut(org1Scientist)
	h.ok(org1Admin, "SetModelPolicy", "fraud", policyJSON(1, true, maxThreshold("loss", 0.5),
		rangeThreshold("f1", 0.6, 1), minThreshold("auc", 0.9), minThreshold("recall", 0)))
	h.evaluateFraud3("run-1", Metric{"auc", 0.95}, Metric{"loss", 0.1}, Metric{"f1", 0.7}, Metric{"recall", 0.5})
	h.ok(org1Approver, "ApproveModelVersion", "fraud", "3", "")
	h.register("fraud", "4")

	type call struct {
		who      *fakeIdentity
		function string
		args     []any
		succeeds bool
	}
	metrics := []Metric{{"z", 1}, {"auc", 0.95}, {"loss", 0.7}, {"f1", 0.5}, {"b", 2}, {"a", 3}}
	calls := []call{
		{org1Admin, "SetModelPolicy", []any{"fraud", policyJSON(2, false, maxThreshold("loss", 0.4),
			rangeThreshold("f1", 0.6, 1), minThreshold("auc", 0.9), minThreshold("recall", 0))}, true},
		{org2Evaluator, "RecordEvaluation", []any{"fraud", "3", evaluationJSON(holdOut, "run-2", metrics...)}, true},
		{org2Evaluator, "RecordEvaluation", []any{"fraud", "4", evaluationJSON(holdOut, "run-2", metrics...)}, true},
		{org1Evaluator, "RecordEvaluation", []any{"fraud", "3", evaluationJSON(holdOut, "run-3", metrics...)}, false},
		{org2Approver, "ApproveModelVersion", []any{"fraud", "3", ""}, true},
		{org2Approver, "ApproveModelVersion", []any{"fraud", "4", ""}, false},
		{org3Auditor, "ListEvaluations", []any{"fraud", "3"}, true},
		{org3Auditor, "GetModel", []any{"fraud"}, true},
		{org3Auditor, "GetHistory", []any{"fraud", "3"}, true},
	}
	allowed, all := allowedRoles(t), functionCalls(t)
	for _, function := range sortedNames(all) {
		calls = append(calls, call{identity("Org1MSP", allowed[function][0]), function, all[function], false})
	}
	covered := map[string]bool{}
	for _, c := range calls {
		covered[c.function] = true
		var first string
		for i := 0; i < 20; i++ {
			h.ledger.txCount-- // the same transaction id and time each time
			stub, result, err := h.endorse(c.who, c.function, c.args...)
			if c.succeeds && err != nil {
				t.Fatalf("%s: %v", c.function, err)
			}
			errText := ""
			if err != nil {
				errText = err.Error()
			}
			deletes := make([]string, 0, len(stub.deletes))
			for key := range stub.deletes {
				deletes = append(deletes, key)
			}
			sort.Strings(deletes)
			got := toJSON(t, map[string]any{"writes": stub.writes, "deletes": deletes, "events": stub.events,
				"result": result, "error": errText})
			if i == 0 {
				first = got
			} else if got != first {
				t.Fatalf("%s: endorsement %d differs:\n%s\nfirst:\n%s", c.function, i, got, first)
			}
		}
	}
	for function := range all {
		if !covered[function] {
			t.Errorf("%s is not endorsed", function)
		}
	}
}

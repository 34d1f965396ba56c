package registry

import (
	"encoding/json"
	"go/ast"
	"go/parser"
	"go/token"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"testing"
)

// limitsFile is the chaincode's limits for the Python side: package data of
// modelledger.sdk.registry, loaded by sdk/registry/limits.py, through which
// every Python copy of a limit reads it (the bridge's provenance caps and
// webhook checks, the name class, the store's path limit). The constants of
// this package are the source; TestLimitsFile fails when the file differs.
// Regenerate it with MODELLEDGER_UPDATE_LIMITS=1 go test ./registry -run TestLimitsFile.
const limitsFile = "../../sdk/registry/limits.json"

// limit is one entry of limitsFile: its JSON key, the constant it comes
// from, and the constant's value.
type limit struct {
	key, constant string
	value         int64
}

// chaincodeLimits lists every max* constant of the package
// (TestEveryLimitIsInTheLimitsFile checks that none is missing).
func chaincodeLimits() []limit {
	return []limit{
		{"modelNameChars", "maxModelNameChars", maxModelNameChars},
		{"versionDigits", "maxVersionDigits", maxVersionDigits},
		{"environmentChars", "maxEnvironmentChars", maxEnvironmentChars},
		{"manifestFiles", "maxManifestFiles", maxManifestFiles},
		{"params", "maxParams", maxParams},
		{"metrics", "maxMetrics", maxMetrics},
		{"libraries", "maxLibraries", maxLibraries},
		{"datasets", "maxDatasetRefs", maxDatasetRefs},
		{"manifestPathChars", "maxManifestPathChars", maxManifestPathChars},
		{"fileSize", "maxFileSize", maxFileSize},
		{"mlflowKeyChars", "maxMLflowKeyChars", maxMLflowKeyChars},
		{"paramValueChars", "maxParamValueChars", maxParamValueChars},
		{"labelChars", "maxLabelChars", maxLabelChars},
		{"uriChars", "maxURIChars", maxURIChars},
		{"storageKeyChars", "maxStorageKeyChars", maxStorageKeyChars},
		{"schemaSummaryChars", "maxSchemaSummaryChars", maxSchemaSummaryChars},
		{"noteChars", "maxNoteChars", maxNoteChars},
		{"mspIdChars", "maxMSPIDChars", maxMSPIDChars},
		{"approvalOrgs", "maxApprovalOrgs", maxApprovalOrgs},
		{"pageSize", "maxPageSize", maxPageSize},
		{"deploymentEnvironments", "maxDeploymentEnvironments", maxDeploymentEnvironments},
		{"argumentBytes", "maxArgumentBytes", maxArgumentBytes},
		{"numberChars", "maxNumberChars", maxNumberChars},
		{"thresholds", "maxThresholds", maxThresholds},
		{"requiredPasses", "maxRequiredPasses", maxRequiredPasses},
		{"evaluations", "maxEvaluations", maxEvaluations},
		{"orgEvaluations", "maxOrgEvaluations", maxOrgEvaluations},
		{"evaluationMetrics", "maxEvaluationMetrics", maxEvaluationMetrics},
	}
}

type limitsDescription struct {
	Comment string           `json:"comment"`
	Limits  map[string]int64 `json:"limits"`
}

// TestLimitsFile: limitsFile holds exactly the package's limits.
func TestLimitsFile(t *testing.T) {
	d := limitsDescription{
		Comment: "The registry chaincode's limits (chaincode/registry, CONTRACT.md \"Limits\"), written from its Go constants by " +
			"chaincode/registry/limits_test.go (MODELLEDGER_UPDATE_LIMITS=1 go test ./registry -run TestLimitsFile), which fails " +
			"when this file differs. Read by sdk/registry/limits.py: every Python copy of a limit reads it from there.",
		Limits: map[string]int64{},
	}
	for _, l := range chaincodeLimits() {
		if _, dup := d.Limits[l.key]; dup {
			t.Fatalf("key %s listed twice", l.key)
		}
		d.Limits[l.key] = l.value
	}
	want, err := json.MarshalIndent(d, "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	want = append(want, '\n')
	if os.Getenv("MODELLEDGER_UPDATE_LIMITS") == "1" {
		if err := os.WriteFile(limitsFile, want, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	got, err := os.ReadFile(limitsFile)
	if err != nil {
		t.Fatal(err)
	}
	if string(got) != string(want) {
		t.Errorf("%s is out of date with the chaincode's limits; regenerate it (see limitsFile)", limitsFile)
	}
}

// TestEveryLimitIsInTheLimitsFile: chaincodeLimits names every max*
// constant declared in the package's non-test files.
func TestEveryLimitIsInTheLimitsFile(t *testing.T) {
	sources, err := filepath.Glob("*.go")
	if err != nil {
		t.Fatal(err)
	}
	var declared []string
	for _, name := range sources {
		if strings.HasSuffix(name, "_test.go") {
			continue
		}
		file, err := parser.ParseFile(token.NewFileSet(), name, nil, 0)
		if err != nil {
			t.Fatal(err)
		}
		for _, decl := range file.Decls {
			if gen, ok := decl.(*ast.GenDecl); ok && gen.Tok == token.CONST {
				for _, spec := range gen.Specs {
					for _, id := range spec.(*ast.ValueSpec).Names {
						if strings.HasPrefix(id.Name, "max") {
							declared = append(declared, id.Name)
						}
					}
				}
			}
		}
	}
	var listed []string
	for _, l := range chaincodeLimits() {
		listed = append(listed, l.constant)
	}
	sort.Strings(declared)
	sort.Strings(listed)
	if len(declared) == 0 || strings.Join(declared, ",") != strings.Join(listed, ",") {
		t.Errorf("the package declares %v, chaincodeLimits lists %v", declared, listed)
	}
}

// TestListLimitRulesStateTheirLimit: the rule a too long list breaks says
// the limit the decoder applies, so a changed constant cannot leave its
// message behind.
func TestListLimitRulesStateTheirLimit(t *testing.T) {
	for _, path := range []string{"manifest.files", "params", "metrics", "libraries", "datasets"} {
		max, rule := modelVersionListLimit(path)
		if max == 0 || !strings.Contains(rule, " "+strconv.Itoa(max)+" ") {
			t.Errorf("%s: limit %d, rule %q", path, max, rule)
		}
	}
	for path, limit := range map[string]listLimit{"thresholds": policyListLimit, "metrics": evaluationListLimit} {
		max, rule := limit(path)
		if max == 0 || !strings.Contains(rule, " "+strconv.Itoa(max)+" ") {
			t.Errorf("%s: limit %d, rule %q", path, max, rule)
		}
	}
}

package registry

import (
	"encoding/json"
	"os"
	"reflect"
	"strings"
	"testing"
)

// recordFieldsFile lists the JSON field names of every record the Python SDK
// reads (sdk/registry/records.py); tests/unit/test_sdk_records.py checks
// the Python dataclasses against the same file. Regenerate it with
// MODELLEDGER_UPDATE_RECORD_FIELDS=1 go test ./registry -run TestRecordFieldsFile.
const recordFieldsFile = "testdata/records.json"

// sdkRecordTypes are the records the contract returns, by the names the
// file gives them (Go type names).
func sdkRecordTypes() []any {
	return []any{
		Actor{}, Change{}, Framework{}, Library{}, ManifestFile{}, Manifest{}, Param{}, Metric{}, MLflow{}, Storage{},
		DatasetRef{}, Approval{}, Deployment{}, Revocation{}, ModelVersion{}, Model{}, Dataset{}, DeployedVersion{},
		Settings{}, ModelRef{}, ModelVersionPage{}, HistoryEntry{}, AccessLogEntry{}, AccessLogPage{}, ArtifactAccess{},
		RemovalVote{}, ApprovalSetRemoval{},
	}
}

func recordFields() map[string][]string {
	out := map[string][]string{}
	for _, r := range sdkRecordTypes() {
		typ := reflect.TypeOf(r)
		names := []string{}
		for i := 0; i < typ.NumField(); i++ {
			name, _, _ := strings.Cut(typ.Field(i).Tag.Get("json"), ",")
			names = append(names, name)
		}
		out[typ.Name()] = names
	}
	return out
}

// TestRecordFieldsFile: the field file matches the Go records, so that the
// Python test that reads it compares the Python records with these.
func TestRecordFieldsFile(t *testing.T) {
	want, err := json.MarshalIndent(recordFields(), "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	want = append(want, '\n')
	if os.Getenv("MODELLEDGER_UPDATE_RECORD_FIELDS") == "1" {
		if err := os.WriteFile(recordFieldsFile, want, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	got, err := os.ReadFile(recordFieldsFile)
	if err != nil {
		t.Fatal(err)
	}
	if string(got) != string(want) {
		t.Errorf("%s is out of date with the Go records; regenerate it (see recordFieldsFile) and update sdk/registry/records.py", recordFieldsFile)
	}
}

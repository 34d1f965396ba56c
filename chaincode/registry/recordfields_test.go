package registry

import (
	"encoding/json"
	"go/ast"
	"go/parser"
	"go/token"
	"os"
	"reflect"
	"sort"
	"strconv"
	"strings"
	"testing"

	"github.com/hyperledger/fabric-contract-api-go/v2/contractapi"
)

// recordsFile describes, from the Go types by reflection, what the contract
// returns: each function's return type, each event's payload type, and
// every record reachable from them (JSON field names in order, JSON types,
// optionality). tests/unit/test_sdk_records.py checks the Python records
// (sdk/registry/records.py) and the client's return types
// (sdk/registry/client.py) against the same file. Regenerate it with
// MODELLEDGER_UPDATE_RECORD_FIELDS=1 go test ./registry -run TestRecordsFile.
const recordsFile = "testdata/records.json"

// recordField is one JSON field of a record. Type is "string", "integer",
// "number", "boolean", "array<T>" or a record's Go type name; optional
// fields may be absent from the JSON (pointers among them may also be
// null).
type recordField struct {
	Name     string `json:"name"`
	Optional bool   `json:"optional"`
	Type     string `json:"type"`
}

type recordsDescription struct {
	Events    map[string]string        `json:"events"`
	Functions map[string]string        `json:"functions"`
	Records   map[string][]recordField `json:"records"`
}

// eventPayloads maps every event name to its payload type
// (TestEveryEventHasAPayloadType checks that none is missing).
func eventPayloads() map[string]any {
	return map[string]any{
		EventModelVersionRegistered: ModelVersionEvent{},
		EventModelVersionApproved:   ModelVersionEvent{},
		EventModelVersionRejected:   ModelVersionEvent{},
		EventModelVersionRevoked:    ModelVersionEvent{},
		EventModelVersionDeployed:   ModelVersionEvent{},
		EventDatasetRegistered:      DatasetEvent{},
		EventAccessGranted:          AccessEvent{},
		EventAccessRevoked:          AccessEvent{},
		EventArtifactAccess:         ArtifactAccessEvent{},
		EventSettingsChanged:        SettingsEvent{},
		EventRemovalProposed:        RemovalEvent{},
		EventMemberRemoved:          RemovalEvent{},
		EventModelVersionEvaluated:  ModelVersionEvent{},
		EventModelPolicyChanged:     ModelPolicyEvent{},
	}
}

// describeRecords walks the contract's functions and the event payloads.
func describeRecords(t *testing.T) recordsDescription {
	t.Helper()
	d := recordsDescription{Events: map[string]string{}, Functions: map[string]string{}, Records: map[string][]recordField{}}
	ctxType := reflect.TypeOf((*contractapi.TransactionContextInterface)(nil)).Elem()
	contract := reflect.TypeOf(New())
	for i := 0; i < contract.NumMethod(); i++ {
		m := contract.Method(i)
		// The contract functions take the transaction context first (the
		// methods of the embedded contractapi.Contract do not).
		if m.Type.NumIn() < 2 || m.Type.In(1) != ctxType {
			continue
		}
		if m.Type.NumOut() != 2 {
			t.Fatalf("%s returns %d values, want a value and an error", m.Name, m.Type.NumOut())
		}
		d.Functions[m.Name] = d.typeName(t, m.Type.Out(0))
	}
	for name, payload := range eventPayloads() {
		d.Events[name] = d.typeName(t, reflect.TypeOf(payload))
	}
	return d
}

// typeName names a Go type as the file does, describing the records it
// reaches on the way.
func (d *recordsDescription) typeName(t *testing.T, typ reflect.Type) string {
	t.Helper()
	switch typ.Kind() {
	case reflect.Pointer:
		return d.typeName(t, typ.Elem())
	case reflect.Slice:
		return "array<" + d.typeName(t, typ.Elem()) + ">"
	case reflect.String:
		return "string"
	case reflect.Bool:
		return "boolean"
	case reflect.Int, reflect.Int32, reflect.Int64:
		return "integer"
	case reflect.Float64:
		return "number"
	case reflect.Struct:
		if _, seen := d.Records[typ.Name()]; !seen {
			d.Records[typ.Name()] = nil // the name first, against cycles
			fields := []recordField{}
			for i := 0; i < typ.NumField(); i++ {
				f := typ.Field(i)
				name, options, _ := strings.Cut(f.Tag.Get("json"), ",")
				if name == "-" { // not in the JSON (MetricThreshold's HasMax and HasMin)
					continue
				}
				optional := strings.Contains(","+options+",", ",omitempty,") || strings.Contains(f.Tag.Get("metadata"), ",optional")
				fields = append(fields, recordField{Name: name, Optional: optional, Type: d.typeName(t, f.Type)})
			}
			d.Records[typ.Name()] = fields
		}
		return typ.Name()
	}
	t.Fatalf("type %s has no JSON type in %s", typ, recordsFile)
	return ""
}

// TestRecordsFile: the description file matches the Go types, so that the
// Python test that reads it compares the Python records and client with
// these.
func TestRecordsFile(t *testing.T) {
	want, err := json.MarshalIndent(describeRecords(t), "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	want = append(want, '\n')
	if os.Getenv("MODELLEDGER_UPDATE_RECORD_FIELDS") == "1" {
		if err := os.WriteFile(recordsFile, want, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	got, err := os.ReadFile(recordsFile)
	if err != nil {
		t.Fatal(err)
	}
	if string(got) != string(want) {
		t.Errorf("%s is out of date with the Go types; regenerate it (see recordsFile) and update sdk/registry/records.py and client.py", recordsFile)
	}
}

// TestEveryEventHasAPayloadType: eventPayloads names every Event* constant
// of events.go.
func TestEveryEventHasAPayloadType(t *testing.T) {
	file, err := parser.ParseFile(token.NewFileSet(), "events.go", nil, 0)
	if err != nil {
		t.Fatal(err)
	}
	var declared []string
	for _, decl := range file.Decls {
		gen, ok := decl.(*ast.GenDecl)
		if !ok || gen.Tok != token.CONST {
			continue
		}
		for _, spec := range gen.Specs {
			for _, value := range spec.(*ast.ValueSpec).Values {
				if lit, ok := value.(*ast.BasicLit); ok && lit.Kind == token.STRING {
					name, _ := strconv.Unquote(lit.Value)
					declared = append(declared, name)
				}
			}
		}
	}
	var listed []string
	for name := range eventPayloads() {
		listed = append(listed, name)
	}
	sort.Strings(declared)
	sort.Strings(listed)
	if len(declared) == 0 || strings.Join(declared, ",") != strings.Join(listed, ",") {
		t.Errorf("events.go declares %v, eventPayloads lists %v", declared, listed)
	}
}

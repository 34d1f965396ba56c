package registry

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"reflect"
	"strings"
	"testing"
)

// recordTypes are every type the contract stores, returns or emits.
func recordTypes() []any {
	return []any{
		ModelVersion{}, ModelVersionInput{}, Model{}, Dataset{}, DatasetInput{}, EnvironmentDeployment{},
		DeployedVersion{}, Settings{}, SettingsInput{}, ModelRef{}, ModelVersionPage{}, HistoryEntry{},
		AccessLogEntry{}, AccessLogPage{}, ArtifactAccess{}, ModelVersionEvent{}, DatasetEvent{},
		AccessEvent{}, ArtifactAccessEvent{}, SettingsEvent{}, ApprovalSetRemoval{}, RemovalEvent{},
		ModelPolicyInput{}, EvaluationInput{}, Evaluation{}, ModelPolicyEvent{},
	}
}

// TestFieldsAreDeclaredInAlphabeticalOrder walks every record type and the
// types it contains.
func TestFieldsAreDeclaredInAlphabeticalOrder(t *testing.T) {
	seen := map[reflect.Type]bool{}
	var check func(reflect.Type)
	check = func(typ reflect.Type) {
		for typ.Kind() == reflect.Pointer || typ.Kind() == reflect.Slice {
			typ = typ.Elem()
		}
		if typ.Kind() != reflect.Struct || seen[typ] {
			return
		}
		seen[typ] = true
		previous := ""
		for i := 0; i < typ.NumField(); i++ {
			f := typ.Field(i)
			name, _, _ := strings.Cut(f.Tag.Get("json"), ",")
			if name == "-" && f.Tag.Get("metadata") == "-" && f.Type.Kind() == reflect.Bool && i >= typ.NumField()-2 {
				continue // MetricThreshold's HasMax and HasMin, last: not in the JSON
			}
			if name == "" || name == "-" {
				t.Errorf("%s.%s has no JSON name", typ.Name(), f.Name)
			}
			if name <= previous {
				t.Errorf("%s: field %q is declared after %q", typ.Name(), name, previous)
			}
			previous = name
			check(f.Type)
		}
	}
	for _, r := range recordTypes() {
		check(reflect.TypeOf(r))
	}
	if len(seen) < 25 {
		t.Errorf("walked only %d types", len(seen))
	}
}

// TestStoredJSONKeysAreSorted checks the bytes of every stored record of a
// full scenario: at every level, object keys come in alphabetical order.
func TestStoredJSONKeysAreSorted(t *testing.T) {
	h := newHarness(t)
	h.ok(org1Scientist, "RegisterDataset", toJSON(t, DatasetInput{Name: "tx", SHA256: datasetTx, Source: "s3://d"}))
	h.approved("fraud", "3")
	h.ok(org1Operator, "RecordDeployment", "fraud", "3", "prod", "https://e")
	h.grant("fraud", "Org2MSP")
	h.ok(org2Scientist, "AuthorizeArtifactAccess", "fraud", "3", "read")
	h.registerHoldOut(org2Scientist)
	h.ok(org1Admin, "SetModelPolicy", "fraud", policyJSON(1, false, rangeThreshold("auc", 0, 1), maxThreshold("loss", 0)))
	h.ok(org2Evaluator, "RecordEvaluation", "fraud", "3", evaluationJSON(holdOut, "r", Metric{"loss", 1}, Metric{"auc", 0.9}))
	h.ok(org1Admin, "RevokeModelVersion", "fraud", "3", "done")
	if !strings.Contains(h.stored(modelKey("fraud")), `{"max":1,"metric":"auc","min":0}`) {
		t.Errorf("a bound of 0 is not stored: %s", h.stored(modelKey("fraud")))
	}
	if len(h.ledger.state) < 7 {
		t.Fatalf("only %d keys stored", len(h.ledger.state))
	}
	for key, value := range h.ledger.state {
		if err := keysSorted(value); err != nil {
			t.Errorf("%q: %v in %s", key, err, value)
		}
	}
	for _, ev := range h.ledger.events {
		if err := keysSorted([]byte(ev.Payload)); err != nil {
			t.Errorf("event %s: %v", ev.Name, err)
		}
	}
}

// keysSorted reports the first object whose keys are out of order.
func keysSorted(data []byte) error {
	dec := json.NewDecoder(bytes.NewReader(data))
	type frame struct {
		object bool
		last   string
		expect bool // the next string token is a key
	}
	var stack []*frame
	for {
		tok, err := dec.Token()
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return err
		}
		var top *frame
		if len(stack) > 0 {
			top = stack[len(stack)-1]
		}
		if top != nil && top.object && top.expect {
			if d, ok := tok.(json.Delim); ok && d == '}' {
				stack = stack[:len(stack)-1]
				continue
			}
			key := tok.(string)
			if key <= top.last {
				return errors.New("key " + key + " after " + top.last)
			}
			top.last, top.expect = key, false
			continue
		}
		if top != nil && top.object {
			top.expect = true
		}
		switch tok {
		case json.Delim('{'):
			stack = append(stack, &frame{object: true, expect: true})
		case json.Delim('['):
			stack = append(stack, &frame{})
		case json.Delim(']'):
			stack = stack[:len(stack)-1]
		}
	}
}

func TestKeysSortedDetectsDisorder(t *testing.T) {
	if err := keysSorted([]byte(`{"a":[{"x":1,"y":{"b":2,"c":3}}],"b":true}`)); err != nil {
		t.Errorf("sorted JSON refused: %v", err)
	}
	if err := keysSorted([]byte(`{"a":[{"y":1,"x":2}]}`)); err == nil {
		t.Error("unsorted JSON accepted")
	}
}

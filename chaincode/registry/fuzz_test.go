package registry

import (
	"bytes"
	"strings"
	"testing"
)

// FuzzParseModelVersion feeds arbitrary bytes to the parser and validator
// of RegisterModelVersion. It must never panic, must refuse with an INVALID
// error, and whatever it accepts must marshal to bytes that parse again to
// the same bytes (the canonical form is a fixed point; its files are in
// another order than the input's, and their digests must not depend on
// it). A record refused only for its digests (as mutated inputs mostly
// are) must be accepted with the digests of its files, and then has the
// same properties.
func FuzzParseModelVersion(f *testing.F) {
	valid := sampleRecord(&testing.T{}, "fraud", "3")
	f.Add([]byte(valid))
	f.Add([]byte(strings.Replace(valid, `"version":"3"`, `"version":"03"`, 1)))
	f.Add([]byte(strings.Replace(valid, `"value":0.93`, `"value":-0`, 1)))
	f.Add([]byte(strings.Replace(valid, `"size":1234`, `"size":1e3`, 1)))
	f.Add([]byte(strings.Replace(valid, `"name":"fraud"`, `"name":"fr\u00e4ud \u003cx\u003e"`, 1)))
	f.Add([]byte(`{"name":"a","name":"b"}`))
	f.Add([]byte(`{"manifest":{"files":[{"path":"a/../b"}]}}`))
	f.Add([]byte(`[1,2,3]`))
	f.Add([]byte(`{"metrics":[{"key":"k","value":1e400}]}`))
	f.Add([]byte(strings.Replace(valid, `"value":0.93`, `"value":5e-324`, 1)))
	f.Add([]byte(strings.Replace(valid, `"value":0.93`, `"value":-2.2250738585072014e-308`, 1)))
	f.Add([]byte(strings.Replace(valid, `"value":0.93`, `"value":0.930000000000000000000000000000000`, 1)))
	f.Add([]byte(""))
	f.Add([]byte(strings.Replace(valid, `"path":"model.pkl"`, `"path":"a-b/x"`, 1)))
	f.Add([]byte(strings.Replace(valid, `"path":"model.pkl"`, `"path":"conda/env.yaml/x"`, 1)))
	f.Fuzz(func(t *testing.T, data []byte) {
		in, err := parseModelVersion(data)
		if err != nil {
			if ClassOf(err) != Invalid {
				t.Fatalf("refusal of class %q: %v", ClassOf(err), err)
			}
			if !strings.HasPrefix(err.Error(), "INVALID: modelDigest: does not match") &&
				!strings.HasPrefix(err.Error(), "INVALID: manifestDigest: does not match") {
				return
			}
			var raw ModelVersionInput
			if err := decodeStrict("record", data, &raw, modelVersionListLimit); err != nil {
				t.Fatalf("refused for its digests, but does not decode: %v", err)
			}
			raw.ModelDigest, raw.ManifestDigest = manifestDigests(raw.Manifest.Files)
			redigested, err := canonicalJSON(&raw)
			if err != nil {
				t.Fatal(err)
			}
			if in, err = parseModelVersion(redigested); err != nil {
				t.Fatalf("refused for its digests, but refused with its own digests: %v\n%s", err, redigested)
			}
		}
		first, err := canonicalJSON(in)
		if err != nil {
			t.Fatalf("accepted input does not marshal: %v", err)
		}
		again, err := parseModelVersion(first)
		if err != nil {
			t.Fatalf("canonical form refused: %v\n%s", err, first)
		}
		second, err := canonicalJSON(again)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(first, second) {
			t.Fatalf("canonical form is not stable:\n%s\n%s", first, second)
		}
	})
}

// FuzzParseSettings does the same for SetSettings.
func FuzzParseSettings(f *testing.F) {
	f.Add([]byte(`{"approvalOrgs":["Org2MSP","Org1MSP"],"strictDatasets":true}`))
	f.Add([]byte(`{"approvalOrgs":["Org1MSP","Org1MSP"]}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		in, err := parseSettings(data)
		if err != nil {
			if ClassOf(err) != Invalid {
				t.Fatalf("refusal of class %q: %v", ClassOf(err), err)
			}
			return
		}
		first, _ := canonicalJSON(in)
		again, err := parseSettings(first)
		if err != nil {
			t.Fatalf("canonical form refused: %v", err)
		}
		if second, _ := canonicalJSON(again); !bytes.Equal(first, second) {
			t.Fatalf("canonical form is not stable:\n%s\n%s", first, second)
		}
	})
}

package registry

import (
	"encoding/json"
	"os"
	"testing"
	"unicode"
)

// nameVectors is testdata/name_vectors.json: the name class of model
// versions, which tests/unit/test_sdk_names.py checks against the Python
// copy of the rule (sdk/registry/names.py).
type nameVectors struct {
	Names []struct {
		Name  string `json:"name"`
		Error string `json:"error"`
	} `json:"names"`
	Versions []struct {
		Version string `json:"version"`
		Error   string `json:"error"`
	} `json:"versions"`
}

func readNameVectors(t *testing.T) nameVectors {
	t.Helper()
	data, err := os.ReadFile("testdata/name_vectors.json")
	if err != nil {
		t.Fatal(err)
	}
	var v nameVectors
	if err := json.Unmarshal(data, &v); err != nil {
		t.Fatal(err)
	}
	if len(v.Names) == 0 || len(v.Versions) == 0 {
		t.Fatal("testdata/name_vectors.json holds no names or no versions")
	}
	return v
}

// TestNameVectors registers a version under each name and version of the
// vectors: accepted ones are stored, refused ones are refused with the
// rule the vector names, and write nothing.
func TestNameVectors(t *testing.T) {
	v := readNameVectors(t)
	for _, tc := range v.Names {
		t.Run("name "+tc.Name, func(t *testing.T) {
			h := newHarness(t)
			record := editRecord(t, func(m map[string]any) { m["name"] = tc.Name })
			if tc.Error == "" {
				h.ok(org1Scientist, "RegisterModelVersion", record)
				return
			}
			h.refused(org1Scientist, "INVALID: name: "+tc.Error, "RegisterModelVersion", record)
		})
	}
	for _, tc := range v.Versions {
		t.Run("version "+tc.Version, func(t *testing.T) {
			h := newHarness(t)
			record := editRecord(t, func(m map[string]any) { m["version"] = tc.Version })
			if tc.Error == "" {
				h.ok(org1Scientist, "RegisterModelVersion", record)
				return
			}
			h.refused(org1Scientist, "INVALID: version: "+tc.Error, "RegisterModelVersion", record)
		})
	}
}

// TestLookupsAcceptNamesRegisteredBefore130 checks that a version whose
// name was registered under 1.2.0's rules, and that the 1.3.0 class
// refuses, stays reachable by name.
func TestLookupsAcceptNamesRegisteredBefore130(t *testing.T) {
	h := newHarness(t)
	old := sampleInput("fraud ", "3") // a trailing space: accepted until 1.3.0
	if err := validateModelName("name", old.Name); err != nil {
		t.Fatal(err)
	}
	h.refused(org1Scientist, "INVALID: name: must not start or end with a space", "RegisterModelVersion", toJSON(t, old))
	// Stored as 1.2.0 stored it.
	v := (&tx{function: "RegisterModelVersion", id: "tx-old", time: "2026-01-01T00:00:00.000000000Z",
		caller: caller{mspID: "Org1MSP", role: RoleDataScientist}}).newModelVersion(&old, []DatasetRef{}, "Org1MSP", nil)
	h.ledger.state[modelVersionKey(old.Name, old.Version)] = []byte(toJSON(t, v))
	h.ledger.state[modelKey(old.Name)] = []byte(toJSON(t, Model{Grants: []string{}, Name: old.Name, Owner: "Org1MSP"}))
	got := h.ok(org1Auditor, "GetModelVersion", old.Name, old.Version).(*ModelVersion)
	if got.ModelDigest != old.ModelDigest {
		t.Errorf("read %s", toJSON(t, got))
	}
	h.ok(org1Auditor, "GetModel", old.Name)
}

// TestIsFormatCharIsUnicodeCf checks the written-out table against the
// unicode package of the running Go release: every Cf character is in the
// table, and every character of the table is Cf or unassigned (a table
// written for a newer Unicode).
func TestIsFormatCharIsUnicodeCf(t *testing.T) {
	for r := rune(0); r <= unicode.MaxRune; r++ {
		cf, table := unicode.Is(unicode.Cf, r), isFormatChar(r)
		if cf && !table {
			t.Errorf("U+%04X is Cf in Unicode %s but not in isFormatChar", r, unicode.Version)
		}
		if table && !cf && isAssigned(r) {
			t.Errorf("U+%04X is in isFormatChar but is not Cf in Unicode %s", r, unicode.Version)
		}
	}
}

func isAssigned(r rune) bool {
	for _, cat := range unicode.Categories {
		if unicode.Is(cat, r) {
			return true
		}
	}
	return false
}

// TestIsSpaceCharIsWhiteSpace checks the written-out table against the
// unicode package.
func TestIsSpaceCharIsWhiteSpace(t *testing.T) {
	for r := rune(0); r <= unicode.MaxRune; r++ {
		if got, want := isSpaceChar(r), unicode.Is(unicode.White_Space, r); got != want {
			t.Errorf("isSpaceChar(U+%04X) = %v, White_Space %v", r, got, want)
		}
	}
}

// TestBidiControlsAreFormatChars names the bidi controls the class must
// refuse.
func TestBidiControlsAreFormatChars(t *testing.T) {
	for _, r := range []rune{0x061C, 0x200E, 0x200F, 0x202A, 0x202B, 0x202C, 0x202D, 0x202E, 0x2066, 0x2067, 0x2068, 0x2069} {
		if !isFormatChar(r) || !unicode.Is(unicode.Bidi_Control, r) {
			t.Errorf("U+%04X: isFormatChar %v, Bidi_Control %v", r, isFormatChar(r), unicode.Is(unicode.Bidi_Control, r))
		}
	}
}

// TestNamesMustBeValidUTF8 checks the one rule the shared vectors cannot
// show (JSON carries no invalid UTF-8 and Go decodes a lone surrogate to
// U+FFFD): a name argument of a lookup that is not UTF-8 is refused.
func TestNamesMustBeValidUTF8(t *testing.T) {
	h := newHarness(t)
	h.refused(org1Auditor, "INVALID: name: must be valid UTF-8", "GetModel", "fr\xffud")
	if err := validateNewModelName("name", "\xed\xa0\x80"); err == nil || err.Error() != "INVALID: name: must be valid UTF-8" {
		t.Errorf("a surrogate encoded in UTF-8: %v", err)
	}
}

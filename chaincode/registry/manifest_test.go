package registry

import (
	"encoding/json"
	"os"
	"slices"
	"strings"
	"testing"
)

// digestVector is one case of testdata/digest_vectors.json, which the
// Python reference (mlops/store/digest.py) writes: see
// tests/unit/test_digest_vectors.py.
type digestVector struct {
	Name           string         `json:"name"`
	Files          []ManifestFile `json:"files"`
	Order          []string       `json:"order"`
	Canonical      string         `json:"canonical"`
	ModelDigest    string         `json:"modelDigest"`
	ManifestDigest string         `json:"manifestDigest"`
}

func readDigestVectors(t *testing.T) []digestVector {
	t.Helper()
	data, err := os.ReadFile("testdata/digest_vectors.json")
	if err != nil {
		t.Fatal(err)
	}
	var doc struct {
		Cases []digestVector `json:"cases"`
	}
	if err := json.Unmarshal(data, &doc); err != nil {
		t.Fatal(err)
	}
	if len(doc.Cases) == 0 {
		t.Fatal("testdata/digest_vectors.json holds no cases")
	}
	return doc.Cases
}

// TestDigestVectors checks that the chaincode computes, from each vector's
// files, the order, canonical manifest and digests that the Python side
// computed, and that RegisterModelVersion accepts those digests.
func TestDigestVectors(t *testing.T) {
	for _, v := range readDigestVectors(t) {
		t.Run(v.Name, func(t *testing.T) {
			if err := validateManifest(Manifest{Files: v.Files}); err != nil {
				t.Fatalf("the chaincode refuses the vector's manifest: %v", err)
			}
			order := digestOrder(v.Files)
			paths := make([]string, len(order))
			for n, i := range order {
				paths[n] = v.Files[i].Path
			}
			if !slices.Equal(paths, v.Order) {
				t.Errorf("digest order:\n got %q\nwant %q", paths, v.Order)
			}
			if got := string(canonicalManifest(v.Files, order)); got != v.Canonical {
				t.Errorf("canonical manifest:\n got %s\nwant %s", got, v.Canonical)
			}
			model, manifest := manifestDigests(v.Files)
			if model != v.ModelDigest || manifest != v.ManifestDigest {
				t.Errorf("digests %s %s, want %s %s", model, manifest, v.ModelDigest, v.ManifestDigest)
			}
			in := sampleInput("vectors", "1")
			in.Manifest.Files, in.ModelDigest, in.ManifestDigest = v.Files, v.ModelDigest, v.ManifestDigest
			h := newHarness(t)
			stored := h.ok(org1Scientist, "RegisterModelVersion", toJSON(t, in)).(*ModelVersion)
			if stored.ModelDigest != v.ModelDigest || stored.ManifestDigest != v.ManifestDigest {
				t.Errorf("stored digests %s %s", stored.ModelDigest, stored.ManifestDigest)
			}
		})
	}
}

// TestVectorsCoverOrdersThatDiffer keeps the vectors meaningful: several
// cases must order their files otherwise than plain string order would.
func TestVectorsCoverOrdersThatDiffer(t *testing.T) {
	differ := 0
	for _, v := range readDigestVectors(t) {
		if !slices.IsSorted(v.Order) {
			differ++
		}
	}
	if differ < 4 {
		t.Errorf("only %d vectors order their files otherwise than string order", differ)
	}
}

func TestComparePaths(t *testing.T) {
	tests := []struct {
		a, b string
		want int
	}{
		{"a/b", "a-b/x", -1},
		{"a/b", "a.b", -1},
		{"a b", "a/b", 1},
		{"a", "a/b", -1},
		{"a/b", "a/b", 0},
		{"a/b/c", "a/b", 1},
		{"a/b-c", "a/b/c", 1},
		{"\uffff", "\U0001f916", -1}, // code point order (UTF-8 bytes), not UTF-16 order
	}
	for _, tc := range tests {
		if got := comparePaths(tc.a, tc.b); got != tc.want {
			t.Errorf("comparePaths(%q, %q) = %d, want %d", tc.a, tc.b, got, tc.want)
		}
		if got := comparePaths(tc.b, tc.a); got != -tc.want {
			t.Errorf("comparePaths(%q, %q) = %d, want %d", tc.b, tc.a, got, -tc.want)
		}
	}
}

func TestAppendPythonJSONString(t *testing.T) {
	// Python: json.dumps('q"b\\\x08\x0c\n\r\t\x01\x1f<>&\u2028\x7fé🤖', ensure_ascii=False)
	in := "q\"b\\\b\f\n\r\t\x01\x1f<>&\u2028\x7fé🤖"
	want := `"q\"b\\\b\f\n\r\t\u0001\u001f<>&` + "\u2028\x7fé🤖" + `"`
	if got := string(appendPythonJSONString(nil, in)); got != want {
		t.Errorf("got %s, want %s", got, want)
	}
}

// TestRegisterModelVersionRefusesDigestsOfOtherFiles checks that a record
// whose modelDigest or manifestDigest does not belong to its manifest is
// refused, naming the field, and that nothing is written.
func TestRegisterModelVersionRefusesDigestsOfOtherFiles(t *testing.T) {
	good := sampleInput("fraud", "3")
	otherFiles := sampleInput("other", "1")
	renamed := good
	renamed.Manifest.Files = slices.Clone(good.Manifest.Files)
	renamed.Manifest.Files[0].Path = "model-renamed.pkl"
	// The digests of the files in plain string order, which differs from
	// the digest order when a '-' meets a '/'.
	byteOrder := sampleInput("fraud", "3")
	byteOrder.Manifest.Files = []ManifestFile{
		{Path: "a-b/x", SHA256: digest("x"), Size: 1},
		{Path: "a/b", SHA256: digest("b"), Size: 2},
	}
	byteOrder = withDigests(byteOrder)
	stringOrder := []int{0, 1}
	swapped := byteOrder
	swapped.ModelDigest, _ = modelDigestOf(byteOrder.Manifest.Files, stringOrder)
	swappedManifest := byteOrder
	swappedManifest.ManifestDigest = manifestDigestOf(byteOrder.Manifest.Files, stringOrder)

	modelRule := "INVALID: modelDigest: does not match manifest.files: their model-signing root digest " +
		"(SHA-256 over the files' digests in path order) is "
	manifestRule := "INVALID: manifestDigest: does not match manifest.files: their canonical manifest digest is "
	tests := []struct {
		name string
		in   func() ModelVersionInput
		want string
	}{
		{"model digest of other files", func() ModelVersionInput {
			in := good
			in.ModelDigest = otherFiles.ModelDigest
			return in
		}, modelRule + good.ModelDigest},
		{"manifest digest of other files", func() ModelVersionInput {
			in := good
			in.ManifestDigest = otherFiles.ManifestDigest
			return in
		}, manifestRule + good.ManifestDigest},
		{"both of other files: the model digest is named first", func() ModelVersionInput {
			in := good
			in.ModelDigest, in.ManifestDigest = otherFiles.ModelDigest, otherFiles.ManifestDigest
			return in
		}, modelRule + good.ModelDigest},
		{"manifest digest before a file was renamed", func() ModelVersionInput { return renamed }, manifestRule + withDigests(renamed).ManifestDigest},
		{"model digest in string order", func() ModelVersionInput { return swapped }, modelRule + byteOrder.ModelDigest},
		{"manifest digest in string order", func() ModelVersionInput { return swappedManifest }, manifestRule + byteOrder.ManifestDigest},
		{"a file that is also a folder", func() ModelVersionInput {
			in := good
			in.Manifest.Files = append(slices.Clone(in.Manifest.Files), ManifestFile{Path: "conda/env.yaml/x", SHA256: digest("x"), Size: 1})
			return withDigests(in)
		}, "INVALID: manifest.files[2].path: is listed as a file and as the folder of manifest.files[3].path"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			h := newHarness(t)
			h.refused(org1Scientist, tc.want, "RegisterModelVersion", toJSON(t, tc.in()))
			if len(h.ledger.state) != 0 {
				t.Errorf("the ledger holds %d keys", len(h.ledger.state))
			}
		})
	}
	// The same version with its own digests is accepted.
	newHarness(t).ok(org1Scientist, "RegisterModelVersion", toJSON(t, byteOrder))
}

func TestModelDigestOfRefusesAFileDigestThatIsNotOne(t *testing.T) {
	files := []ManifestFile{{Path: "a", SHA256: strings.Repeat("z", 64)}}
	if _, err := modelDigestOf(files, []int{0}); err == nil || err.Error() != "INVALID: manifest.files[0].sha256: must be 64 lowercase hex characters" {
		t.Errorf("got %v", err)
	}
}

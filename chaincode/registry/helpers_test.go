package registry

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"testing"
)

// Identities of the test network: three organisations, every role.
var (
	org1Scientist = identity("Org1MSP", RoleDataScientist)
	org1Registrar = identity("Org1MSP", RoleRegistrar)
	org1Approver  = identity("Org1MSP", RoleApprover)
	org1Operator  = identity("Org1MSP", RoleOperator)
	org1Auditor   = identity("Org1MSP", RoleAuditor)
	org1Admin     = identity("Org1MSP", RoleAdmin)
	org2Scientist = identity("Org2MSP", RoleDataScientist)
	org2Approver  = identity("Org2MSP", RoleApprover)
	org2Operator  = identity("Org2MSP", RoleOperator)
	org2Admin     = identity("Org2MSP", RoleAdmin)
	org3Approver  = identity("Org3MSP", RoleApprover)
	org3Auditor   = identity("Org3MSP", RoleAuditor)
	org3Admin     = identity("Org3MSP", RoleAdmin)
)

// digest returns a SHA-256 (lowercase hex) standing for some content.
func digest(label string) string {
	sum := sha256.Sum256([]byte(label))
	return hex.EncodeToString(sum[:])
}

// datasetTx is the dataset the sample model versions were trained on.
var datasetTx = digest("dataset transactions-2026-10")

// manifestDigests returns the model digest and the manifest digest of
// files, as RegisterModelVersion computes them (testdata/digest_vectors.json
// proves that computation against the Python side).
func manifestDigests(files []ManifestFile) (model, manifest string) {
	order := digestOrder(files)
	model, err := modelDigestOf(files, order)
	if err != nil {
		panic(err)
	}
	return model, manifestDigestOf(files, order)
}

// withDigests returns in with the digests of its manifest (and the storage
// key named after the model digest): a version whose digests belong to its
// files.
func withDigests(in ModelVersionInput) ModelVersionInput {
	in.ModelDigest, in.ManifestDigest = manifestDigests(in.Manifest.Files)
	in.Storage.Key = "sha256/" + in.ModelDigest + "/"
	return in
}

// sampleInput returns a valid model version, with lists deliberately out of
// order; its content depends on name and version.
func sampleInput(name, version string) ModelVersionInput {
	return withDigests(ModelVersionInput{
		Datasets: []DatasetRefInput{
			{Name: "transactions-2026-10", SHA256: datasetTx, Source: "s3://data/tx.parquet"},
		},
		Framework: Framework{Name: "sklearn", Version: "1.6.1"},
		Libraries: []Library{{Name: "pandas", Version: "2.2.3"}, {Name: "numpy", Version: "2.2.0"}},
		Manifest: Manifest{Files: []ManifestFile{
			{Path: "model.pkl", SHA256: digest("model.pkl " + name + version), Size: 1234},
			{Path: "MLmodel", SHA256: digest("MLmodel " + name + version), Size: 321},
			{Path: "conda/env.yaml", SHA256: digest("env " + name + version), Size: 0},
		}},
		Metrics: []Metric{{Key: "f1", Value: 0.81}, {Key: "auc", Value: 0.93}},
		MLflow:  MLflow{RunID: "0123456789abcdef0123456789abcdef", Source: "models:/m-abc"},
		Name:    name,
		Params:  []Param{{Key: "n_estimators", Value: "200"}, {Key: "max_depth", Value: "6"}},
		Storage: Storage{Bucket: "anchored", SHA256: digest("archive " + name + version), VersionID: "3f1c"},
		Version: version,
	})
}

func toJSON(t *testing.T, v any) string {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// sampleRecord is the JSON argument of RegisterModelVersion for a sample.
func sampleRecord(t *testing.T, name, version string) string {
	return toJSON(t, sampleInput(name, version))
}

// editRecord returns the sample record as generic JSON changed by edit.
// A digest that edit leaves as it was is recomputed from the edited
// manifest (when the manifest still decodes), so that an edit of the files
// tests the rule it breaks, not the digests; set a digest to test those.
func editRecord(t *testing.T, edit func(m map[string]any)) string {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal([]byte(sampleRecord(t, "fraud", "3")), &m); err != nil {
		t.Fatal(err)
	}
	model, manifest := m["modelDigest"], m["manifestDigest"]
	edit(m)
	var files struct {
		Manifest Manifest `json:"manifest"`
	}
	if err := json.Unmarshal([]byte(toJSON(t, m)), &files); err == nil && validateManifest(files.Manifest) == nil {
		newModel, newManifest := manifestDigests(files.Manifest.Files)
		if m["modelDigest"] == model {
			m["modelDigest"] = newModel
		}
		if m["manifestDigest"] == manifest {
			m["manifestDigest"] = newManifest
		}
	}
	return toJSON(t, m)
}

// sub returns a nested object or list element of generic JSON.
func sub(m map[string]any, path ...any) map[string]any {
	var cur any = m
	for _, p := range path {
		switch k := p.(type) {
		case string:
			cur = cur.(map[string]any)[k]
		case int:
			cur = cur.([]any)[k]
		}
	}
	return cur.(map[string]any)
}

// settingsJSON is the argument of SetSettings.
func settingsJSON(strict bool, orgs ...string) string {
	b, _ := json.Marshal(SettingsInput{ApprovalOrgs: orgs, StrictDatasets: strict})
	return string(b)
}

// joinApprovalSet makes each organisation of orgs join the approval set
// through its own admin, in order, the first one setting the settings (an
// admin may add its own organisation only); every call sets strict. It
// returns the settings after the last call.
func (h *harness) joinApprovalSet(strict bool, orgs ...string) *Settings {
	h.t.Helper()
	current := h.ok(org1Auditor, "GetSettings").(*Settings).ApprovalOrgs
	var s *Settings
	for _, org := range orgs {
		current = append(current, org)
		s = h.ok(identity(org, RoleAdmin), "SetSettings", settingsJSON(strict, current...)).(*Settings)
	}
	return s
}

// register registers a sample version as Org1's data scientist.
func (h *harness) register(name, version string) *ModelVersion {
	h.t.Helper()
	return h.ok(org1Scientist, "RegisterModelVersion", sampleRecord(h.t, name, version)).(*ModelVersion)
}

// approved sets the approval set to Org1 and Org2 and registers and
// approves a sample version.
func (h *harness) approved(name, version string) *ModelVersion {
	h.t.Helper()
	h.joinApprovalSet(false, "Org1MSP", "Org2MSP")
	h.register(name, version)
	h.ok(org1Approver, "ApproveModelVersion", name, version, "")
	return h.ok(org2Approver, "ApproveModelVersion", name, version, "fine").(*ModelVersion)
}

func (h *harness) grant(name, mspID string) {
	h.t.Helper()
	h.ok(org1Admin, "GrantAccess", name, mspID)
}

// stored returns the bytes stored under a key.
func (h *harness) stored(key string) string {
	h.t.Helper()
	v, ok := h.ledger.state[key]
	if !ok {
		h.t.Fatalf("nothing stored under %q", key)
	}
	return string(v)
}

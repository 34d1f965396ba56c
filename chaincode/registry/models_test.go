package registry

import (
	"encoding/json"
	"strconv"
	"strings"
	"testing"
)

func TestRegisterModelVersionStoresTheRecord(t *testing.T) {
	h := newHarness(t)
	v := h.register("fraud", "3")

	if v.Status != StatusRegistered || v.Owner != "Org1MSP" || v.Name != "fraud" || v.Version != "3" {
		t.Fatalf("got status %s owner %s name %s version %s", v.Status, v.Owner, v.Name, v.Version)
	}
	want := Actor{CertFingerprint: digest("certificate of data_scientist@Org1MSP"), MSPID: "Org1MSP", Role: RoleDataScientist}
	if v.Registrant != want {
		t.Errorf("registrant %+v, want %+v", v.Registrant, want)
	}
	if v.RegisteredTxID != "tx0001" || v.RegisteredAt != "2026-03-01T10:00:01.123456789Z" {
		t.Errorf("registered %s at %s", v.RegisteredTxID, v.RegisteredAt)
	}
	if v.LastChange != (Change{Action: "RegisterModelVersion", Actor: want, Time: v.RegisteredAt, TxID: "tx0001"}) {
		t.Errorf("lastChange %+v", v.LastChange)
	}
	if got := []string{v.Manifest.Files[0].Path, v.Manifest.Files[1].Path, v.Manifest.Files[2].Path}; strings.Join(got, ",") != "MLmodel,conda/env.yaml,model.pkl" {
		t.Errorf("manifest not sorted by path: %v", got)
	}
	if v.Params[0].Key != "max_depth" || v.Metrics[0].Key != "auc" || v.Libraries[0].Name != "numpy" {
		t.Errorf("params, metrics or libraries not sorted: %v %v %v", v.Params, v.Metrics, v.Libraries)
	}
	if len(v.Approvals) != 0 || len(v.Deployments) != 0 || v.Revocation != nil {
		t.Errorf("a new version has approvals %v, deployments %v, revocation %v", v.Approvals, v.Deployments, v.Revocation)
	}
	stored := h.stored(modelVersionKey("fraud", "3"))
	if b, _ := canonicalJSON(v); string(b) != stored {
		t.Errorf("returned record differs from the stored one:\n%s\n%s", b, stored)
	}
	if !strings.Contains(stored, `"approvals":[],"datasets":[{"name":"transactions-2026-10","registered":false,`) {
		t.Errorf("stored record: %s", stored)
	}
	model := h.stored(modelKey("fraud"))
	if !strings.HasPrefix(model, `{"grants":[],"lastChange":{"action":"RegisterModelVersion",`) || !strings.Contains(model, `"owner":"Org1MSP"`) {
		t.Errorf("model record: %s", model)
	}
	if got := h.stored(digestKey(v.ModelDigest, "fraud", "3")); got != `{"name":"fraud","version":"3"}` {
		t.Errorf("digest index: %s", got)
	}
	ev := h.lastEvent()
	if ev.Name != EventModelVersionRegistered || ev.Payload != `{"mspId":"Org1MSP","name":"fraud","status":"REGISTERED","txId":"tx0001","version":"3"}` {
		t.Errorf("event %s %s", ev.Name, ev.Payload)
	}
}

func TestRegisterModelVersionIsIdempotent(t *testing.T) {
	h := newHarness(t)
	first := h.register("fraud", "3")
	before, events := h.ledger.snapshot(), len(h.ledger.events)

	// The same content, lists in another order, by another registrant of
	// the owner organisation.
	in := sampleInput("fraud", "3")
	in.Params[0], in.Params[1] = in.Params[1], in.Params[0]
	in.Manifest.Files[0], in.Manifest.Files[2] = in.Manifest.Files[2], in.Manifest.Files[0]
	again := h.ok(org1Registrar, "RegisterModelVersion", toJSON(t, in)).(*ModelVersion)

	if toJSON(t, again) != toJSON(t, first) {
		t.Errorf("re-registration returned another record")
	}
	if len(h.ledger.events) != events || len(h.ledger.snapshot()) != len(before) {
		t.Errorf("re-registration wrote or emitted")
	}
}

func TestRegisterModelVersionSameInputInAnyOrderGivesSameBytes(t *testing.T) {
	a, b := newHarness(t), newHarness(t)
	a.register("fraud", "3")
	in := sampleInput("fraud", "3")
	in.Libraries[0], in.Libraries[1] = in.Libraries[1], in.Libraries[0]
	in.Metrics[0], in.Metrics[1] = in.Metrics[1], in.Metrics[0]
	in.Manifest.Files[1], in.Manifest.Files[2] = in.Manifest.Files[2], in.Manifest.Files[1]
	in.Datasets = append(in.Datasets, DatasetRefInput{Name: "labels", SHA256: digest("labels"), Source: "s3://data/labels"})
	b.ok(org1Scientist, "RegisterModelVersion", toJSON(t, in))
	in.Datasets[0], in.Datasets[1] = in.Datasets[1], in.Datasets[0]
	c := newHarness(t)
	c.ok(org1Scientist, "RegisterModelVersion", toJSON(t, in))

	if a.stored(modelVersionKey("fraud", "3")) == b.stored(modelVersionKey("fraud", "3")) {
		t.Fatal("different datasets gave the same bytes")
	}
	if b.stored(modelVersionKey("fraud", "3")) != c.stored(modelVersionKey("fraud", "3")) {
		t.Errorf("the same input in another order gave other bytes:\n%s\n%s",
			b.stored(modelVersionKey("fraud", "3")), c.stored(modelVersionKey("fraud", "3")))
	}
}

func TestRegisterModelVersionRefusals(t *testing.T) {
	h := newHarness(t)
	h.register("fraud", "3")
	otherDigest := sampleInput("fraud", "3")
	otherDigest.Manifest.Files[0].SHA256 = digest("another model.pkl")
	otherDigest = withDigests(otherDigest)
	otherContent := sampleInput("fraud", "3")
	otherContent.Metrics[0].Value = 0.5

	tests := []struct {
		name   string
		who    *fakeIdentity
		record string
		want   string
	}{
		{"auditor", org1Auditor, sampleRecord(t, "fraud", "4"),
			`NOT_AUTHORIZED: role "auditor" of Org1MSP may not call RegisterModelVersion (allowed: data_scientist, registrar)`},
		{"approver", org1Approver, sampleRecord(t, "fraud", "4"),
			`NOT_AUTHORIZED: role "approver" of Org1MSP may not call RegisterModelVersion (allowed: data_scientist, registrar)`},
		{"admin", org1Admin, sampleRecord(t, "fraud", "4"),
			`NOT_AUTHORIZED: role "admin" of Org1MSP may not call RegisterModelVersion (allowed: data_scientist, registrar)`},
		{"operator", org1Operator, sampleRecord(t, "fraud", "4"),
			`NOT_AUTHORIZED: role "operator" of Org1MSP may not call RegisterModelVersion (allowed: data_scientist, registrar)`},
		{"another organisation", org2Scientist, sampleRecord(t, "fraud", "4"),
			`NOT_AUTHORIZED: model "fraud" belongs to another organisation; Org2MSP may not register versions of it`},
		{"another organisation, identical", org2Scientist, sampleRecord(t, "fraud", "3"),
			`NOT_AUTHORIZED: model "fraud" belongs to another organisation; Org2MSP may not register versions of it`},
		{"other digest", org1Scientist, toJSON(t, otherDigest),
			`CONFLICT: model "fraud" version "3" is already registered with another digest`},
		{"other content", org1Scientist, toJSON(t, otherContent),
			`CONFLICT: model "fraud" version "3" is already registered with other content`},
		{"registrant passed in", org1Scientist, editRecord(t, func(m map[string]any) {
			m["registrant"] = map[string]any{"mspId": "Org2MSP", "role": "registrar", "certFingerprint": digest("x")}
		}), `INVALID: registrant: unknown field`},
		{"owner passed in", org1Scientist, editRecord(t, func(m map[string]any) { m["owner"] = "Org2MSP" }),
			`INVALID: owner: unknown field`},
		{"status passed in", org1Scientist, editRecord(t, func(m map[string]any) { m["status"] = "APPROVED" }),
			`INVALID: status: unknown field`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			h.use(t)
			h.refused(tc.who, tc.want, "RegisterModelVersion", tc.record)
		})
	}
}

func TestRegisterModelVersionFlagsUnregisteredDatasets(t *testing.T) {
	h := newHarness(t)
	h.ok(org1Scientist, "RegisterDataset", toJSON(t, DatasetInput{Name: "transactions-2026-10", SHA256: datasetTx, Source: "s3://data/tx.parquet"}))
	in := sampleInput("fraud", "3")
	in.Datasets = append(in.Datasets, DatasetRefInput{Name: "labels", SHA256: digest("labels"), Source: "s3://data/labels.csv"})
	v := h.ok(org1Scientist, "RegisterModelVersion", toJSON(t, in)).(*ModelVersion)

	registered := map[string]bool{}
	for _, d := range v.Datasets {
		registered[d.SHA256] = d.Registered
	}
	if !registered[datasetTx] || registered[digest("labels")] {
		t.Errorf("registered flags: %v", registered)
	}
}

func TestStrictDatasetsRefusesUnregisteredDatasets(t *testing.T) {
	h := newHarness(t)
	h.ok(org1Admin, "SetSettings", settingsJSON(true, "Org1MSP"))
	h.refused(org1Scientist, "INVALID: datasets: dataset "+datasetTx+" is not registered by Org1MSP (strictDatasets is on)",
		"RegisterModelVersion", sampleRecord(t, "fraud", "3"))

	h.ok(org1Scientist, "RegisterDataset", toJSON(t, DatasetInput{Name: "transactions-2026-10", SHA256: datasetTx, Source: "s3://data/tx.parquet"}))
	v := h.register("fraud", "3")
	if !v.Datasets[0].Registered {
		t.Error("dataset not marked registered")
	}
}

// TestADatasetReferenceIsRegisteredOnlyAsItsOrganisationClaimedIt: a
// reference whose name or source differs from the registrant
// organisation's claim on the sha256 is flagged (refused with
// strictDatasets), whatever the schema summary.
func TestADatasetReferenceIsRegisteredOnlyAsItsOrganisationClaimedIt(t *testing.T) {
	h := newHarness(t)
	claim := DatasetInput{Name: "transactions-2026-10", SchemaSummary: "amount: float", SHA256: datasetTx, Source: "s3://data/tx.parquet"}
	h.ok(org1Scientist, "RegisterDataset", toJSON(t, claim))
	ref := func(name, source string) string { // a new version, 9
		in := sampleInput("fraud", "9")
		in.Datasets = []DatasetRefInput{{Name: name, SHA256: datasetTx, Source: source}}
		return toJSON(t, in)
	}
	for i, tc := range []struct {
		name, source string
		registered   bool
	}{
		{claim.Name, claim.Source, true},
		{"harmless-sample", claim.Source, false},
		{claim.Name, "s3://elsewhere/sample.csv", false},
	} {
		in := sampleInput("fraud", strconv.Itoa(i+1))
		in.Datasets = []DatasetRefInput{{Name: tc.name, SHA256: datasetTx, Source: tc.source}}
		v := h.ok(org1Scientist, "RegisterModelVersion", toJSON(t, in)).(*ModelVersion)
		if v.Datasets[0].Registered != tc.registered {
			t.Errorf("reference %q %q: registered %v, want %v", tc.name, tc.source, v.Datasets[0].Registered, tc.registered)
		}
	}
	h.joinApprovalSet(true, "Org1MSP")
	h.refused(org1Scientist, "INVALID: datasets: dataset "+datasetTx+" is registered by Org1MSP with another description (differs in name, source; strictDatasets is on)",
		"RegisterModelVersion", ref("harmless-sample", "s3://elsewhere/sample.csv"))
	if v := h.ok(org1Scientist, "RegisterModelVersion", ref(claim.Name, claim.Source)).(*ModelVersion); !v.Datasets[0].Registered {
		t.Errorf("the claimed reference under strictDatasets: %+v", v.Datasets)
	}
}

func TestRecordsRoundTrip(t *testing.T) {
	h := newHarness(t)
	v := h.register("fraud", "3")
	var back ModelVersion
	if err := json.Unmarshal([]byte(h.stored(modelVersionKey("fraud", "3"))), &back); err != nil {
		t.Fatal(err)
	}
	if toJSON(t, back) != toJSON(t, v) {
		t.Error("stored record does not decode to the returned one")
	}
}

package registry

import (
	"strings"
	"testing"
)

func TestRegisterDataset(t *testing.T) {
	h := newHarness(t)
	in := DatasetInput{Name: "transactions-2026-10", SchemaSummary: "amount: double\nlabel: int", SHA256: datasetTx, Source: "s3://data/tx.parquet"}
	d := h.ok(org1Registrar, "RegisterDataset", toJSON(t, in)).(*Dataset)
	want := Dataset{Name: in.Name, Owner: "Org1MSP", RegisteredAt: "2026-03-01T10:00:01.123456789Z", RegisteredTxID: "tx0001",
		Registrant: org1Registrar.actor(), SchemaSummary: in.SchemaSummary, SHA256: datasetTx, Source: in.Source}
	if *d != want {
		t.Errorf("dataset %+v, want %+v", *d, want)
	}
	if ev := h.lastEvent(); ev.Name != EventDatasetRegistered ||
		ev.Payload != `{"mspId":"Org1MSP","name":"transactions-2026-10","sha256":"`+datasetTx+`","txId":"tx0001"}` {
		t.Errorf("event %s %s", ev.Name, ev.Payload)
	}
	if h.stored(datasetKey(datasetTx, "Org1MSP")) != toJSON(t, want) {
		t.Error("the claim is not stored under dataset[sha256, mspId]")
	}

	// Another identity of the same organisation: the same claim, nothing written.
	events := len(h.ledger.events)
	again := h.ok(org1Scientist, "RegisterDataset", toJSON(t, in)).(*Dataset)
	if *again != want || len(h.ledger.events) != events || h.last.wrote() {
		t.Errorf("an identical registration changed something: %+v", again)
	}
	if got := h.ok(org3Auditor, "GetDataset", datasetTx).(*Dataset); *got != want {
		t.Errorf("GetDataset = %+v", got)
	}
	if got := h.ok(org3Auditor, "GetDatasetClaims", datasetTx).([]Dataset); len(got) != 1 || got[0] != want {
		t.Errorf("GetDatasetClaims = %+v", got)
	}

	other := in
	other.Source = "s3://data/other.parquet"
	renamed := other
	renamed.Name, renamed.SchemaSummary = "x", ""
	long := strings.Repeat("s", 65537)
	tests := []struct {
		name    string
		who     *fakeIdentity
		dataset string
		want    string
	}{
		{"other source", org1Scientist, toJSON(t, other),
			"CONFLICT: dataset " + datasetTx + " is already registered by Org1MSP with other content (differs in source)"},
		{"other content", org1Registrar, toJSON(t, renamed),
			"CONFLICT: dataset " + datasetTx + " is already registered by Org1MSP with other content (differs in name, schemaSummary, source)"},
		{"operator", org1Operator, toJSON(t, in), `NOT_AUTHORIZED: role "operator" of Org1MSP may not call RegisterDataset (allowed: data_scientist, evaluator, registrar)`},
		{"bad sha256", org1Scientist, `{"name":"a","sha256":"A","source":"s"}`, "INVALID: sha256: must be 64 lowercase hex characters"},
		{"no name", org1Scientist, `{"sha256":"` + datasetTx + `","source":"s"}`, "INVALID: name: must not be blank"},
		{"no source", org1Scientist, `{"name":"a","sha256":"` + datasetTx + `"}`, "INVALID: source: must not be blank"},
		{"long summary", org1Scientist, `{"name":"a","sha256":"` + datasetTx + `","source":"s","schemaSummary":"` + long + `"}`,
			"INVALID: schemaSummary: must be at most 65536 characters"},
		{"owner passed in", org1Scientist, `{"name":"a","owner":"Org2MSP"}`, "INVALID: owner: unknown field"},
		{"not an object", org1Scientist, `"a"`, "INVALID: dataset: must be an object"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			h.use(t)
			h.refused(tc.who, tc.want, "RegisterDataset", tc.dataset)
		})
	}
	h.use(t)
	for _, function := range []string{"GetDataset", "GetDatasetClaims"} {
		h.refused(org1Auditor, "NOT_FOUND: dataset "+digest("none"), function, digest("none"))
		h.refused(org1Auditor, "INVALID: sha256: must be 64 lowercase hex characters", function, "")
	}
}

// TestEveryOrganisationHasItsOwnDatasetClaim: another organisation cannot
// squat a sha256 with misleading metadata; it records its own claim, next
// to the others, and a model's reference counts only its registrant
// organisation's claim.
func TestEveryOrganisationHasItsOwnDatasetClaim(t *testing.T) {
	h := newHarness(t)
	// Org2 is first, with a misleading description of Org1's data.
	squat := DatasetInput{Name: "harmless-sample", SHA256: datasetTx, Source: "s3://elsewhere/sample.csv"}
	h.ok(org2Scientist, "RegisterDataset", toJSON(t, squat))
	v := h.register("fraud", "3") // references datasetTx: Org1 has no claim on it yet
	if v.Datasets[0].Registered {
		t.Error("Org2's claim counted for Org1's model")
	}
	h.ok(org1Admin, "SetSettings", settingsJSON(true, "Org1MSP"))
	h.refused(org1Scientist, "INVALID: datasets: dataset "+datasetTx+" is not registered by Org1MSP (strictDatasets is on)",
		"RegisterModelVersion", sampleRecord(t, "fraud", "4"))

	own := DatasetInput{Name: "transactions-2026-10", SHA256: datasetTx, Source: "s3://data/tx.parquet"}
	mine := h.ok(org1Scientist, "RegisterDataset", toJSON(t, own)).(*Dataset)
	if mine.Owner != "Org1MSP" || mine.Name != own.Name {
		t.Fatalf("Org1's claim: %+v", mine)
	}
	if v := h.register("fraud", "4"); !v.Datasets[0].Registered {
		t.Error("Org1's own claim did not count for its model")
	}
	claims := h.ok(org2Scientist, "GetDatasetClaims", datasetTx).([]Dataset)
	if len(claims) != 2 || claims[0].Owner != "Org1MSP" || claims[0].Name != own.Name ||
		claims[1].Owner != "Org2MSP" || claims[1].Name != squat.Name {
		t.Errorf("GetDatasetClaims = %+v", claims)
	}
	// GetDataset keeps the 1.2.0 shape, one Dataset: the caller's
	// organisation's claim, otherwise the first organisation's.
	for who, owner := range map[*fakeIdentity]string{org2Scientist: "Org2MSP", org1Auditor: "Org1MSP", org3Auditor: "Org1MSP"} {
		if got := h.ok(who, "GetDataset", datasetTx).(*Dataset); got.Owner != owner {
			t.Errorf("GetDataset as %s: the claim of %s, want %s's", who.mspID, got.Owner, owner)
		}
	}
}

// TestDatasetsRegisteredBefore130AreTheirOwnersClaims: a record keyed
// dataset[sha256] (before 1.3.0) is listed and counts as the claim of its
// owner organisation, and of no other.
func TestDatasetsRegisteredBefore130AreTheirOwnersClaims(t *testing.T) {
	h := newHarness(t)
	legacy := Dataset{Name: "transactions-2026-10", Owner: "Org1MSP", RegisteredAt: "2026-01-01T00:00:00.000000000Z",
		RegisteredTxID: "old", Registrant: org1Scientist.actor(), SHA256: datasetTx, Source: "s3://data/tx.parquet"}
	h.ledger.state[legacyDatasetKey(datasetTx)] = []byte(toJSON(t, legacy))
	in := DatasetInput{Name: legacy.Name, SHA256: datasetTx, Source: legacy.Source}

	if got := h.ok(org1Scientist, "RegisterDataset", toJSON(t, in)).(*Dataset); *got != legacy || h.last.wrote() {
		t.Errorf("re-registration by the owner: %+v (wrote: %v)", got, h.last.wrote())
	}
	changed := in
	changed.Name = "renamed"
	h.refused(org1Scientist, "CONFLICT: dataset "+datasetTx+" is already registered by Org1MSP with other content (differs in name)",
		"RegisterDataset", toJSON(t, changed))
	if v := h.register("fraud", "3"); !v.Datasets[0].Registered {
		t.Error("the old record did not count as its owner's claim")
	}
	// Org2 records its own claim beside it.
	h.ok(org2Scientist, "RegisterDataset", toJSON(t, changed))
	claims := h.ok(org3Auditor, "GetDatasetClaims", datasetTx).([]Dataset)
	if len(claims) != 2 || claims[0] != legacy || claims[1].Owner != "Org2MSP" || claims[1].Name != "renamed" {
		t.Errorf("GetDatasetClaims = %+v", claims)
	}
	if got := h.ok(org3Auditor, "GetDataset", datasetTx).(*Dataset); *got != legacy {
		t.Errorf("GetDataset = %+v", got)
	}
	if h.stored(datasetKey(datasetTx, "Org2MSP")) == "" || h.stored(legacyDatasetKey(datasetTx)) != toJSON(t, legacy) {
		t.Error("keys")
	}
}

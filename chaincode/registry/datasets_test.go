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

	events := len(h.ledger.events)
	again := h.ok(org2Scientist, "RegisterDataset", toJSON(t, in)).(*Dataset)
	if *again != want || len(h.ledger.events) != events {
		t.Errorf("an identical registration changed something: %+v", again)
	}
	if got := h.ok(org3Auditor, "GetDataset", datasetTx).(*Dataset); *got != want {
		t.Errorf("GetDataset = %+v", got)
	}

	other := in
	other.Source = "s3://data/other.parquet"
	long := strings.Repeat("s", 65537)
	tests := []struct {
		name    string
		who     *fakeIdentity
		dataset string
		want    string
	}{
		{"other content", org1Scientist, toJSON(t, other), "CONFLICT: dataset " + datasetTx + " is already registered with other content"},
		{"operator", org1Operator, toJSON(t, in), `NOT_AUTHORIZED: role "operator" of Org1MSP may not call RegisterDataset (allowed: data_scientist, registrar)`},
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
	h.refused(org1Auditor, "NOT_FOUND: dataset "+digest("none"), "GetDataset", digest("none"))
	h.refused(org1Auditor, "INVALID: sha256: must be 64 lowercase hex characters", "GetDataset", "")
}

package registry

import "testing"

func TestReadAccessFollowsGrants(t *testing.T) {
	h := newHarness(t)
	h.register("fraud", "3")

	notFound := `NOT_FOUND: model "fraud" version "3"`
	h.refused(org2Scientist, notFound, "GetModelVersion", "fraud", "3")
	h.ok(org3Auditor, "GetModelVersion", "fraud", "3")
	h.ok(org1Operator, "GetModelVersion", "fraud", "3")

	m := h.ok(org1Admin, "GrantAccess", "fraud", "Org2MSP").(*Model)
	if len(m.Grants) != 1 || m.Grants[0] != "Org2MSP" || m.LastChange.Action != "GrantAccess" {
		t.Fatalf("model after grant: %+v", m)
	}
	if ev := h.lastEvent(); ev.Name != EventAccessGranted || ev.Payload != `{"mspId":"Org2MSP","name":"fraud","txId":"`+m.LastChange.TxID+`"}` {
		t.Errorf("event %s %s", ev.Name, ev.Payload)
	}
	h.ok(org2Scientist, "GetModelVersion", "fraud", "3")
	if got := h.ok(org2Scientist, "GetModel", "fraud").(*Model); got.Owner != "Org1MSP" || len(got.Grants) != 1 {
		t.Errorf("GetModel after grant: %+v", got)
	}

	m = h.ok(org1Admin, "GrantAccess", "fraud", "Org3MSP").(*Model)
	if len(m.Grants) != 2 || m.Grants[0] != "Org2MSP" || m.Grants[1] != "Org3MSP" {
		t.Errorf("grants %v", m.Grants)
	}
	events := len(h.ledger.events)
	h.ok(org1Admin, "GrantAccess", "fraud", "Org2MSP")
	if len(h.ledger.events) != events {
		t.Error("a repeated grant emitted an event")
	}

	m = h.ok(org1Admin, "RevokeAccess", "fraud", "Org2MSP").(*Model)
	if len(m.Grants) != 1 || m.Grants[0] != "Org3MSP" {
		t.Errorf("grants after revoke %v", m.Grants)
	}
	if ev := h.lastEvent(); ev.Name != EventAccessRevoked || ev.Payload != `{"mspId":"Org2MSP","name":"fraud","txId":"`+m.LastChange.TxID+`"}` {
		t.Errorf("event %s %s", ev.Name, ev.Payload)
	}
	h.refused(org2Scientist, notFound, "GetModelVersion", "fraud", "3")
	h.refused(org2Scientist, `NOT_FOUND: model "fraud"`, "GetModel", "fraud")
	h.refused(org2Scientist, `INVALID: name: must not contain '/' or ':'`, "GetModel", "a/b")
	if got := h.ok(org3Auditor, "GetModel", "fraud").(*Model); got.Owner != "Org1MSP" || got.Grants[0] != "Org3MSP" {
		t.Errorf("GetModel for an auditor: %+v", got)
	}
	events = len(h.ledger.events)
	h.ok(org1Admin, "RevokeAccess", "fraud", "Org2MSP")
	if len(h.ledger.events) != events {
		t.Error("revoking an access that is not granted emitted an event")
	}
}

func TestGrantRefusals(t *testing.T) {
	h := newHarness(t)
	h.register("fraud", "3")
	h.grant("fraud", "Org2MSP")
	tests := []struct {
		name     string
		who      *fakeIdentity
		function string
		args     []any
		want     string
	}{
		{"scientist", org1Scientist, "GrantAccess", []any{"fraud", "Org3MSP"},
			`NOT_AUTHORIZED: role "data_scientist" of Org1MSP may not call GrantAccess (allowed: admin)`},
		{"approver", org1Approver, "RevokeAccess", []any{"fraud", "Org2MSP"},
			`NOT_AUTHORIZED: role "approver" of Org1MSP may not call RevokeAccess (allowed: admin)`},
		{"admin of a granted organisation", org2Admin, "GrantAccess", []any{"fraud", "Org3MSP"},
			`NOT_AUTHORIZED: only the owner organisation of model "fraud" may change who can read it`},
		{"admin of an organisation that cannot read it", org3Admin, "GrantAccess", []any{"fraud", "Org3MSP"},
			`NOT_FOUND: model "fraud"`},
		{"unknown model", org1Admin, "GrantAccess", []any{"churn", "Org2MSP"}, `NOT_FOUND: model "churn"`},
		{"the owner itself", org1Admin, "GrantAccess", []any{"fraud", "Org1MSP"},
			`INVALID: mspId: is the owner organisation of model "fraud"`},
		{"bad MSP id", org1Admin, "GrantAccess", []any{"fraud", "Org 2"},
			"INVALID: mspId: must be 1 to 128 characters of ASCII letters, digits, '.', '_' and '-', starting with a letter or digit"},
		{"empty MSP id", org1Admin, "RevokeAccess", []any{"fraud", ""},
			"INVALID: mspId: must be 1 to 128 characters of ASCII letters, digits, '.', '_' and '-', starting with a letter or digit"},
		{"bad name", org1Admin, "RevokeAccess", []any{"..", "Org2MSP"}, "INVALID: name: must not be '.' or start with '..'"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			h.use(t)
			h.refused(tc.who, tc.want, tc.function, tc.args...)
		})
	}
}

package registry

import (
	"strings"
	"testing"
)

func TestApprovalByEveryOrganisationApproves(t *testing.T) {
	h := newHarness(t)
	h.joinApprovalSet(false, "Org2MSP", "Org1MSP")
	h.register("fraud", "3")

	v := h.ok(org2Approver, "ApproveModelVersion", "fraud", "3", "looks good").(*ModelVersion)
	if v.Status != StatusRegistered || len(v.Approvals) != 1 {
		t.Fatalf("after one of two approvals: status %s, %d approvals", v.Status, len(v.Approvals))
	}
	if ev := h.lastEvent(); ev.Name != EventModelVersionApproved ||
		ev.Payload != `{"mspId":"Org2MSP","name":"fraud","status":"REGISTERED","txId":"tx0005","version":"3"}` {
		t.Errorf("event %s %s", ev.Name, ev.Payload)
	}
	v = h.ok(org1Approver, "ApproveModelVersion", "fraud", "3", "").(*ModelVersion)
	if v.Status != StatusApproved {
		t.Fatalf("status %s after every organisation approved", v.Status)
	}
	if v.Approvals[0].MSPID != "Org1MSP" || v.Approvals[1].MSPID != "Org2MSP" {
		t.Errorf("approvals not sorted by MSP id: %+v", v.Approvals)
	}
	want := Approval{Actor: org2Approver.actor(), Comment: "looks good", Decision: DecisionApproved, MSPID: "Org2MSP",
		Time: "2026-03-01T10:00:05.123456789Z", TxID: "tx0005"}
	if v.Approvals[1] != want {
		t.Errorf("approval %+v, want %+v", v.Approvals[1], want)
	}
	if v.LastChange.Action != "ApproveModelVersion" || v.LastChange.TxID != "tx0006" {
		t.Errorf("lastChange %+v", v.LastChange)
	}
	if h.lastEvent().Payload != `{"mspId":"Org1MSP","name":"fraud","status":"APPROVED","txId":"tx0006","version":"3"}` {
		t.Errorf("event %s", h.lastEvent().Payload)
	}

	// The same decision again is idempotent: nothing written, no event.
	events := len(h.ledger.events)
	again := h.ok(org1Approver, "ApproveModelVersion", "fraud", "3", "another comment").(*ModelVersion)
	if toJSON(t, again) != toJSON(t, v) || len(h.ledger.events) != events {
		t.Error("a repeated approval changed something")
	}
	h.refused(org1Approver, `CONFLICT: Org1MSP already approved model "fraud" version "3"`,
		"RejectModelVersion", "fraud", "3", "changed my mind")
}

func TestRejectionRejects(t *testing.T) {
	h := newHarness(t)
	h.joinApprovalSet(false, "Org1MSP", "Org2MSP")
	h.register("fraud", "3")
	v := h.ok(org1Approver, "RejectModelVersion", "fraud", "3", "leaks the label").(*ModelVersion)
	if v.Status != StatusRejected || v.Approvals[0].Decision != DecisionRejected || v.Approvals[0].Comment != "leaks the label" {
		t.Fatalf("status %s, approvals %+v", v.Status, v.Approvals)
	}
	if ev := h.lastEvent(); ev.Name != EventModelVersionRejected ||
		ev.Payload != `{"mspId":"Org1MSP","name":"fraud","status":"REJECTED","txId":"tx0005","version":"3"}` {
		t.Errorf("event %s %s", ev.Name, ev.Payload)
	}
	h.ok(org1Approver, "RejectModelVersion", "fraud", "3", "again")
	h.refused(org1Approver, `CONFLICT: Org1MSP already rejected model "fraud" version "3"`,
		"ApproveModelVersion", "fraud", "3", "")
	// Org2 had not decided: a rejected version is no longer awaiting its
	// decision, so it cannot read it...
	h.refused(org2Approver, `NOT_FOUND: model "fraud" version "3"`, "ApproveModelVersion", "fraud", "3", "")
	// ...unless it was granted read access.
	h.grant("fraud", "Org2MSP")
	h.refused(org2Approver, `CONFLICT: model "fraud" version "3" is REJECTED; decisions are recorded only while it is REGISTERED`,
		"ApproveModelVersion", "fraud", "3", "")
}

func TestDecisionRefusals(t *testing.T) {
	h := newHarness(t)
	h.register("fraud", "3")
	h.refused(org1Approver, "NOT_AUTHORIZED: organisation Org1MSP is not in the approval set",
		"ApproveModelVersion", "fraud", "3", "")
	h.joinApprovalSet(false, "Org1MSP", "Org2MSP")

	tests := []struct {
		name     string
		who      *fakeIdentity
		function string
		args     []any
		want     string
	}{
		{"scientist approves", org1Scientist, "ApproveModelVersion", []any{"fraud", "3", ""},
			`NOT_AUTHORIZED: role "data_scientist" of Org1MSP may not call ApproveModelVersion (allowed: approver)`},
		{"admin rejects", org1Admin, "RejectModelVersion", []any{"fraud", "3", "no"},
			`NOT_AUTHORIZED: role "admin" of Org1MSP may not call RejectModelVersion (allowed: approver)`},
		{"auditor approves", org3Auditor, "ApproveModelVersion", []any{"fraud", "3", ""},
			`NOT_AUTHORIZED: role "auditor" of Org3MSP may not call ApproveModelVersion (allowed: approver)`},
		{"organisation outside the approval set", org3Approver, "ApproveModelVersion", []any{"fraud", "3", ""},
			"NOT_AUTHORIZED: organisation Org3MSP is not in the approval set"},
		{"unknown version", org1Approver, "ApproveModelVersion", []any{"fraud", "4", ""},
			`NOT_FOUND: model "fraud" version "4"`},
		{"unknown model", org2Approver, "RejectModelVersion", []any{"churn", "1", "no"},
			`NOT_FOUND: model "churn" version "1"`},
		{"blank reason", org1Approver, "RejectModelVersion", []any{"fraud", "3", " "},
			"INVALID: reason: must not be blank"},
		{"long reason", org1Approver, "RejectModelVersion", []any{"fraud", "3", string(make([]byte, 1025))},
			"INVALID: reason: must be at most 1024 characters"},
		{"long comment", org1Approver, "ApproveModelVersion", []any{"fraud", "3", string(make([]byte, 1025))},
			"INVALID: comment: must be at most 1024 characters"},
		{"bad name", org1Approver, "ApproveModelVersion", []any{"", "3", ""},
			"INVALID: name: must not be blank"},
		{"bad version", org1Approver, "ApproveModelVersion", []any{"fraud", "v3", ""},
			"INVALID: version: must be a positive decimal integer without leading zeros, at most 10 digits"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			h.use(t)
			h.refused(tc.who, tc.want, tc.function, tc.args...)
		})
	}
}

// TestApprovalSetIsRecordedAtRegistration: an organisation that joins the
// approval set later has no say on the versions registered before; one that
// leaves it no longer has one.
func TestApprovalSetIsRecordedAtRegistration(t *testing.T) {
	h := newHarness(t)
	h.joinApprovalSet(false, "Org2MSP", "Org1MSP")
	v := h.register("fraud", "3")
	if toJSON(t, v.ApprovalOrgs) != `["Org1MSP","Org2MSP"]` {
		t.Fatalf("approvalOrgs %v", v.ApprovalOrgs)
	}
	h.ok(org1Approver, "ApproveModelVersion", "fraud", "3", "")
	h.ok(org3Admin, "SetSettings", settingsJSON(false, "Org1MSP", "Org2MSP", "Org3MSP")) // Org3 joins the set

	// Org3 can neither read nor decide on version 3 (its approvers may
	// read only the versions awaiting their decision)...
	h.refused(org3Approver, `NOT_FOUND: model "fraud" version "3"`, "RejectModelVersion", "fraud", "3", "veto")
	h.refused(org3Approver, `NOT_FOUND: model "fraud" version "3"`, "GetModelVersion", "fraud", "3")
	// ...not even once it may read the model.
	h.grant("fraud", "Org3MSP")
	h.refused(org3Approver, `NOT_AUTHORIZED: organisation Org3MSP is not in the approval set of model "fraud" version "3" (recorded at its registration)`,
		"RejectModelVersion", "fraud", "3", "veto")
	if v := h.ok(org2Approver, "ApproveModelVersion", "fraud", "3", "").(*ModelVersion); v.Status != StatusApproved {
		t.Errorf("status %s, want APPROVED once Org1 and Org2 approved", v.Status)
	}
	// A version registered now needs Org3 too.
	if v := h.register("fraud", "4"); toJSON(t, v.ApprovalOrgs) != `["Org1MSP","Org2MSP","Org3MSP"]` {
		t.Errorf("approvalOrgs %v", v.ApprovalOrgs)
	}
	h.ok(org1Approver, "ApproveModelVersion", "fraud", "4", "")
	if v := h.ok(org2Approver, "ApproveModelVersion", "fraud", "4", "").(*ModelVersion); v.Status != StatusRegistered {
		t.Errorf("status %s without Org3's approval", v.Status)
	}
	// An organisation that leaves no longer decides: Org2 leaves, and
	// version 5 (registered with all three) needs Org1 and Org3 only.
	h.register("fraud", "5")
	h.ok(org2Admin, "SetSettings", settingsJSON(false, "Org1MSP", "Org3MSP"))
	h.refused(org2Approver, "NOT_AUTHORIZED: organisation Org2MSP is not in the approval set", "RejectModelVersion", "fraud", "5", "no")
	h.ok(org1Approver, "ApproveModelVersion", "fraud", "5", "")
	if v := h.ok(org3Approver, "ApproveModelVersion", "fraud", "5", "").(*ModelVersion); v.Status != StatusApproved {
		t.Errorf("status %s after Org1 and Org3 approved", v.Status)
	}
}

// TestVersionsWithoutARecordedSetUseTheCurrentOne: versions registered
// before 1.3.0 (no approvalOrgs) or while the settings were unset, and
// versions none of whose recorded organisations is left in the set, are
// decided by the current approval set.
func TestVersionsWithoutARecordedSetUseTheCurrentOne(t *testing.T) {
	h := newHarness(t)
	h.register("fraud", "1") // settings unset: no set recorded
	if v := h.ok(org1Auditor, "GetModelVersion", "fraud", "1").(*ModelVersion); v.ApprovalOrgs != nil ||
		strings.Contains(h.stored(modelVersionKey("fraud", "1")), "approvalOrgs") {
		t.Fatalf("approvalOrgs %v", v.ApprovalOrgs)
	}
	h.ok(org1Admin, "SetSettings", settingsJSON(false, "Org1MSP"))
	h.register("fraud", "2") // recorded set: Org1
	h.ok(org2Admin, "SetSettings", settingsJSON(false, "Org1MSP", "Org2MSP"))
	h.ok(org1Admin, "SetSettings", settingsJSON(false, "Org2MSP")) // Org1 leaves
	for _, version := range []string{"1", "2"} {
		if v := h.ok(org2Approver, "ApproveModelVersion", "fraud", version, "").(*ModelVersion); v.Status != StatusApproved {
			t.Errorf("version %s: status %s, want APPROVED by the current set", version, v.Status)
		}
	}
}

func TestRepeatedApprovalCompletesAfterAnOrganisationLeaves(t *testing.T) {
	h := newHarness(t)
	h.joinApprovalSet(false, "Org1MSP", "Org2MSP")
	h.ok(org3Admin, "SetSettings", settingsJSON(false, "Org1MSP", "Org2MSP", "Org3MSP"))
	h.register("fraud", "3")
	h.ok(org1Approver, "ApproveModelVersion", "fraud", "3", "")
	h.ok(org3Approver, "ApproveModelVersion", "fraud", "3", "")

	// While Org2 is in the set and has not decided, a repeat changes nothing.
	before, events := h.ledger.snapshot(), len(h.ledger.events)
	if v := h.ok(org1Approver, "ApproveModelVersion", "fraud", "3", "again").(*ModelVersion); v.Status != StatusRegistered {
		t.Errorf("status %s, want REGISTERED while Org2 has not decided", v.Status)
	}
	if h.last.wrote() || len(h.ledger.events) != events || toJSON(t, h.ledger.snapshot()) != toJSON(t, before) {
		t.Error("a repeated approval wrote while the version was still awaiting Org2")
	}

	// Org2 leaves: every organisation of the set has approved, but nobody
	// decided since, so the version is still REGISTERED...
	h.ok(org2Admin, "SetSettings", settingsJSON(false, "Org1MSP", "Org3MSP"))
	if v := h.ok(org1Auditor, "GetModelVersion", "fraud", "3").(*ModelVersion); v.Status != StatusRegistered {
		t.Fatalf("status %s after Org2 left", v.Status)
	}
	// ...until an approver repeats its approval: that records the status.
	v := h.ok(org3Approver, "ApproveModelVersion", "fraud", "3", "still fine").(*ModelVersion)
	if v.Status != StatusApproved || len(v.Approvals) != 2 || v.Approvals[1].Comment != "" {
		t.Fatalf("status %s, approvals %+v", v.Status, v.Approvals)
	}
	if v.LastChange.Action != "ApproveModelVersion" || v.LastChange.Actor != org3Approver.actor() || v.LastChange.TxID != h.last.txID {
		t.Errorf("lastChange %+v", v.LastChange)
	}
	if h.stored(modelVersionKey("fraud", "3")) != toJSON(t, v) {
		t.Error("the APPROVED status was not stored")
	}
	if ev := h.lastEvent(); ev.Name != EventModelVersionApproved ||
		ev.Payload != `{"mspId":"Org3MSP","name":"fraud","status":"APPROVED","txId":"`+h.last.txID+`","version":"3"}` {
		t.Errorf("event %s %s", ev.Name, ev.Payload)
	}
	// Once APPROVED, a repeat is idempotent again.
	events = len(h.ledger.events)
	h.ok(org1Approver, "ApproveModelVersion", "fraud", "3", "")
	if h.last.wrote() || len(h.ledger.events) != events {
		t.Error("a repeat on an APPROVED version wrote")
	}
	// A repeated rejection never changes the status.
	h.register("fraud", "4")
	h.ok(org1Approver, "RejectModelVersion", "fraud", "4", "no")
	events = len(h.ledger.events)
	if v := h.ok(org1Approver, "RejectModelVersion", "fraud", "4", "still no").(*ModelVersion); v.Status != StatusRejected || h.last.wrote() || len(h.ledger.events) != events {
		t.Errorf("a repeated rejection: status %s", v.Status)
	}
}

func TestRevocationIsFinal(t *testing.T) {
	h := newHarness(t)
	h.approved("fraud", "3")
	h.ok(org1Operator, "RecordDeployment", "fraud", "3", "prod", "https://prod.example/fraud")

	v := h.ok(org1Approver, "RevokeModelVersion", "fraud", "3", "data leak").(*ModelVersion)
	want := Revocation{Actor: org1Approver.actor(), Reason: "data leak", Time: v.LastChange.Time, TxID: v.LastChange.TxID}
	if v.Status != StatusRevoked || v.Revocation == nil || *v.Revocation != want {
		t.Fatalf("status %s, revocation %+v", v.Status, v.Revocation)
	}
	if ev := h.lastEvent(); ev.Name != EventModelVersionRevoked ||
		ev.Payload != `{"mspId":"Org1MSP","name":"fraud","status":"REVOKED","txId":"`+v.LastChange.TxID+`","version":"3"}` {
		t.Errorf("event %s %s", ev.Name, ev.Payload)
	}
	h.refused(org1Admin, `CONFLICT: model "fraud" version "3" is already revoked`,
		"RevokeModelVersion", "fraud", "3", "again")
	h.refused(org1Operator, `CONFLICT: model "fraud" version "3" is REVOKED; only APPROVED or DEPLOYED versions can be deployed`,
		"RecordDeployment", "fraud", "3", "staging", "https://staging.example/fraud")
}

func TestRevokeRefusals(t *testing.T) {
	h := newHarness(t)
	h.joinApprovalSet(false, "Org1MSP", "Org2MSP")
	h.register("fraud", "3")
	h.ok(org2Approver, "ApproveModelVersion", "fraud", "3", "")
	tests := []struct {
		name string
		who  *fakeIdentity
		args []any
		want string
	}{
		{"scientist", org1Scientist, []any{"fraud", "3", "x"},
			`NOT_AUTHORIZED: role "data_scientist" of Org1MSP may not call RevokeModelVersion (allowed: admin, approver)`},
		{"operator", org1Operator, []any{"fraud", "3", "x"},
			`NOT_AUTHORIZED: role "operator" of Org1MSP may not call RevokeModelVersion (allowed: admin, approver)`},
		{"approver of another organisation that can read it", org2Approver, []any{"fraud", "3", "x"},
			`NOT_AUTHORIZED: only the owner organisation of model "fraud" may revoke its versions`},
		{"admin of an organisation that cannot read it", org3Admin, []any{"fraud", "3", "x"},
			`NOT_FOUND: model "fraud" version "3"`},
		{"no reason", org1Admin, []any{"fraud", "3", ""}, "INVALID: reason: must not be blank"},
		{"unknown version", org1Admin, []any{"fraud", "9", "x"}, `NOT_FOUND: model "fraud" version "9"`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			h.use(t)
			h.refused(tc.who, tc.want, "RevokeModelVersion", tc.args...)
		})
	}
	h.use(t)
	if v := h.ok(org1Admin, "RevokeModelVersion", "fraud", "3", "superseded").(*ModelVersion); v.Status != StatusRevoked {
		t.Errorf("admin revoke: status %s", v.Status)
	}
	// Org2 decided on it, so its approver can still read the version.
	h.ok(org2Approver, "GetModelVersion", "fraud", "3")
}

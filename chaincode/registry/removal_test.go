package registry

import (
	"testing"
)

// TestMajorityOfTheWholeSetRemovesAMemberWhoseAdminIsGone: a member whose
// admin is gone blocks every version until a majority of the whole set
// (the member included, although it does not vote) votes it out.
func TestMajorityOfTheWholeSetRemovesAMemberWhoseAdminIsGone(t *testing.T) {
	h := newHarness(t)
	// GhostMSP joined through its own admin, who is gone since.
	h.joinApprovalSet(false, "Org1MSP", "Org2MSP", "GhostMSP", "Org3MSP")
	settingsTx := h.last.txID
	h.register("fraud", "3")
	for _, approver := range []*fakeIdentity{org1Approver, org2Approver, org3Approver} {
		h.ok(approver, "ApproveModelVersion", "fraud", "3", "")
	}
	if v := h.ok(org1Auditor, "GetModelVersion", "fraud", "3").(*ModelVersion); v.Status != StatusRegistered {
		t.Fatalf("status %s while GhostMSP has not approved", v.Status)
	}

	// A set of four: three votes needed (4/2 + 1), whatever GhostMSP does.
	p := h.ok(org1Admin, "ProposeApprovalSetRemoval", "GhostMSP", "admin unreachable since March").(*ApprovalSetRemoval)
	want := ApprovalSetRemoval{ApprovalOrgs: []string{"GhostMSP", "Org1MSP", "Org2MSP", "Org3MSP"}, MSPID: "GhostMSP", Needed: 3,
		SettingsTxID: settingsTx, Votes: []RemovalVote{{Actor: org1Admin.actor(), MSPID: "Org1MSP",
			Reason: "admin unreachable since March", Time: h.last.ts.AsTime().UTC().Format(timeLayout), TxID: h.last.txID}}}
	if toJSON(t, p) != toJSON(t, want) {
		t.Errorf("proposal:\n got %s\nwant %s", toJSON(t, p), toJSON(t, want))
	}
	if ev := h.lastEvent(); ev.Name != EventRemovalProposed ||
		ev.Payload != `{"approvalOrgs":["GhostMSP","Org1MSP","Org2MSP","Org3MSP"],"mspId":"GhostMSP","needed":3,"txId":"`+h.last.txID+`","votes":["Org1MSP"]}` {
		t.Errorf("event %s %s", ev.Name, ev.Payload)
	}
	if got := h.ok(org2Approver, "GetApprovalSetRemoval", "GhostMSP").(*ApprovalSetRemoval); toJSON(t, got) != toJSON(t, want) {
		t.Errorf("GetApprovalSetRemoval = %s", toJSON(t, got))
	}
	// A second vote of the same organisation changes nothing.
	events := len(h.ledger.events)
	if again := h.ok(org1Admin, "ProposeApprovalSetRemoval", "GhostMSP", "again").(*ApprovalSetRemoval); toJSON(t, again) != toJSON(t, want) ||
		h.last.wrote() || len(h.ledger.events) != events {
		t.Errorf("a repeated vote changed something: %s", toJSON(t, again))
	}
	// Two votes of four are half the set, not a majority.
	if p := h.ok(org2Admin, "ProposeApprovalSetRemoval", "GhostMSP", "gone").(*ApprovalSetRemoval); p.Removed || len(p.Votes) != 2 {
		t.Fatalf("second vote: %s", toJSON(t, p))
	}

	removed := h.ok(org3Admin, "ProposeApprovalSetRemoval", "GhostMSP", "gone").(*ApprovalSetRemoval)
	if !removed.Removed || len(removed.Votes) != 3 || removed.Votes[2].MSPID != "Org3MSP" {
		t.Fatalf("third vote: %s", toJSON(t, removed))
	}
	if ev := h.lastEvent(); ev.Name != EventMemberRemoved ||
		ev.Payload != `{"approvalOrgs":["Org1MSP","Org2MSP","Org3MSP"],"mspId":"GhostMSP","needed":3,"txId":"`+h.last.txID+`","votes":["Org1MSP","Org2MSP","Org3MSP"]}` {
		t.Errorf("event %s %s", ev.Name, ev.Payload)
	}
	s := h.ok(org1Auditor, "GetSettings").(*Settings)
	if toJSON(t, s.ApprovalOrgs) != `["Org1MSP","Org2MSP","Org3MSP"]` || s.LastChange.Action != "ProposeApprovalSetRemoval" ||
		s.LastChange.Actor != org3Admin.actor() {
		t.Errorf("settings %s", toJSON(t, s))
	}
	if _, stored := h.ledger.state[removalKey("GhostMSP")]; stored {
		t.Error("the completed proposal is still stored")
	}
	h.refused(org1Auditor, "NOT_FOUND: no removal of GhostMSP from the approval set is proposed", "GetApprovalSetRemoval", "GhostMSP")

	// The version no longer waits for GhostMSP: a repeated approval completes it.
	if v := h.ok(org1Approver, "ApproveModelVersion", "fraud", "3", "").(*ModelVersion); v.Status != StatusApproved {
		t.Errorf("status %s after GhostMSP was removed", v.Status)
	}
	// A removed organisation whose admin is back rejoins through its own admin.
	h.joinApprovalSet(false, "GhostMSP")
}

// TestASetOfTwoCannotRemoveAMemberByVote: one member of two is no majority,
// so it can neither vote the other out nor then approve alone.
func TestASetOfTwoCannotRemoveAMemberByVote(t *testing.T) {
	h := newHarness(t)
	h.joinApprovalSet(false, "Org1MSP", "Org2MSP")
	h.register("fraud", "3")
	h.ok(org1Approver, "ApproveModelVersion", "fraud", "3", "")
	h.refused(org1Admin, "CONFLICT: the approval set has 2 members: removing one takes 2 votes and only 1 other member can vote; "+
		"in a set of two a member leaves only through its own admin, or through a change of the chaincode by the channel's admins",
		"ProposeApprovalSetRemoval", "Org2MSP", "left the consortium")
	if v := h.ok(org1Approver, "ApproveModelVersion", "fraud", "3", "").(*ModelVersion); v.Status != StatusRegistered {
		t.Errorf("status %s without Org2's approval", v.Status)
	}
}

// TestHalfTheSetCannotShrinkIt: the votes needed are a majority of the
// whole set, not of the members other than the one voted on, so half of a
// set of four cannot remove the others one by one.
func TestHalfTheSetCannotShrinkIt(t *testing.T) {
	h := newHarness(t)
	h.joinApprovalSet(false, "Org1MSP", "Org2MSP", "Org3MSP", "Org4MSP")
	h.ok(org1Admin, "ProposeApprovalSetRemoval", "Org3MSP", "outvoted")
	if p := h.ok(org2Admin, "ProposeApprovalSetRemoval", "Org3MSP", "outvoted").(*ApprovalSetRemoval); p.Removed || p.Needed != 3 {
		t.Fatalf("two votes of four removed Org3MSP: %s", toJSON(t, p))
	}
	if s := h.ok(org1Auditor, "GetSettings").(*Settings); len(s.ApprovalOrgs) != 4 {
		t.Errorf("approval set %v", s.ApprovalOrgs)
	}
}

// TestVotesAreVoidOnceTheSettingsChange: a proposal counts the votes cast
// under the settings it opened with. An organisation that joins later
// cannot add its vote to earlier ones, one that left and rejoined must vote
// again, and any other change of the settings voids the votes too.
func TestVotesAreVoidOnceTheSettingsChange(t *testing.T) {
	h := newHarness(t)
	h.joinApprovalSet(false, "Org1MSP", "Org2MSP", "Org3MSP", "GhostMSP")
	org4Admin := identity("Org4MSP", RoleAdmin)

	// Org2 and Org3 vote (two of the three needed); Org2 leaves and rejoins.
	h.ok(org2Admin, "ProposeApprovalSetRemoval", "GhostMSP", "gone")
	h.ok(org3Admin, "ProposeApprovalSetRemoval", "GhostMSP", "gone")
	h.ok(org2Admin, "SetSettings", settingsJSON(false, "Org1MSP", "Org3MSP", "GhostMSP"))
	h.joinApprovalSet(false, "Org2MSP")
	rejoined := h.last.txID
	h.refused(org1Auditor, "NOT_FOUND: no removal of GhostMSP from the approval set is proposed since the settings last changed (transaction "+
		rejoined+"); the votes cast before are void", "GetApprovalSetRemoval", "GhostMSP")
	// Org1's vote opens a new proposal: it does not make three with the void ones.
	p := h.ok(org1Admin, "ProposeApprovalSetRemoval", "GhostMSP", "gone").(*ApprovalSetRemoval)
	if p.Removed || len(p.Votes) != 1 || p.Votes[0].MSPID != "Org1MSP" || p.SettingsTxID != rejoined || p.Needed != 3 {
		t.Fatalf("after Org2 rejoined: %s", toJSON(t, p))
	}

	// Org4 joins and votes at once: a new proposal under the new set of
	// five, Org1's vote void, one vote of three.
	h.joinApprovalSet(false, "Org4MSP")
	p = h.ok(org4Admin, "ProposeApprovalSetRemoval", "GhostMSP", "never seen them").(*ApprovalSetRemoval)
	if p.Removed || len(p.Votes) != 1 || p.Votes[0].MSPID != "Org4MSP" || p.Needed != 3 ||
		toJSON(t, p.ApprovalOrgs) != `["GhostMSP","Org1MSP","Org2MSP","Org3MSP","Org4MSP"]` {
		t.Fatalf("after Org4 joined: %s", toJSON(t, p))
	}

	// Switching strictDatasets voids the votes as well.
	h.ok(org2Admin, "ProposeApprovalSetRemoval", "GhostMSP", "gone")
	h.ok(org3Admin, "SetSettings", settingsJSON(true, "Org1MSP", "Org2MSP", "Org3MSP", "Org4MSP", "GhostMSP"))
	if p := h.ok(org1Admin, "ProposeApprovalSetRemoval", "GhostMSP", "gone").(*ApprovalSetRemoval); len(p.Votes) != 1 {
		t.Fatalf("after strictDatasets changed: %s", toJSON(t, p))
	}
	h.ok(org2Admin, "ProposeApprovalSetRemoval", "GhostMSP", "gone")
	if p := h.ok(org3Admin, "ProposeApprovalSetRemoval", "GhostMSP", "gone").(*ApprovalSetRemoval); !p.Removed {
		t.Fatalf("three votes of five under unchanged settings: %s", toJSON(t, p))
	}

	// A proposal stored without settingsTxId (by a build before this rule)
	// is void too.
	h.ledger.state[removalKey("Org4MSP")] = []byte(`{"mspId":"Org4MSP","needed":2,"removed":false,"votes":[{"actor":` +
		toJSON(t, org1Admin.actor()) + `,"mspId":"Org1MSP","reason":"old","time":"2026-03-01T10:00:00.000000000Z","txId":"old"}]}`)
	if p := h.ok(org2Admin, "ProposeApprovalSetRemoval", "Org4MSP", "testing").(*ApprovalSetRemoval); len(p.Votes) != 1 || p.Votes[0].MSPID != "Org2MSP" {
		t.Errorf("a proposal without settingsTxId counted: %s", toJSON(t, p))
	}
}

func TestRemovalRefusals(t *testing.T) {
	h := newHarness(t)
	h.refused(org1Admin, "NOT_AUTHORIZED: organisation Org1MSP is not in the approval set; only the admins of its other organisations may vote to remove a member",
		"ProposeApprovalSetRemoval", "Org2MSP", "gone")
	h.joinApprovalSet(false, "Org1MSP", "Org2MSP", "GhostMSP")
	tests := []struct {
		name string
		who  *fakeIdentity
		args []any
		want string
	}{
		{"approver", org1Approver, []any{"Org2MSP", "gone"},
			`NOT_AUTHORIZED: role "approver" of Org1MSP may not call ProposeApprovalSetRemoval (allowed: admin)`},
		{"outsider", org3Admin, []any{"Org2MSP", "gone"},
			"NOT_AUTHORIZED: organisation Org3MSP is not in the approval set; only the admins of its other organisations may vote to remove a member"},
		{"own organisation", org1Admin, []any{"Org1MSP", "leaving"},
			"INVALID: mspId: is the caller's own organisation; an organisation leaves the approval set through SetSettings"},
		{"not a member", org1Admin, []any{"Org3MSP", "gone"}, "CONFLICT: Org3MSP is not in the approval set"},
		{"no reason", org1Admin, []any{"Org2MSP", " "}, "INVALID: reason: must not be blank"},
		{"bad MSP id", org1Admin, []any{"-x", "gone"},
			"INVALID: mspId: must be 1 to 128 characters of ASCII letters, digits, '.', '_' and '-', starting with a letter or digit"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			h.use(t)
			h.refused(tc.who, tc.want, "ProposeApprovalSetRemoval", tc.args...)
		})
	}
	h.use(t)
	h.refused(org1Auditor, "INVALID: mspId: must be 1 to 128 characters of ASCII letters, digits, '.', '_' and '-', starting with a letter or digit",
		"GetApprovalSetRemoval", "")
}

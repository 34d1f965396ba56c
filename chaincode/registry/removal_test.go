package registry

import (
	"testing"
)

// TestMajorityRemovesAMemberWhoseAdminIsGone: a made-up MSP in the
// approval set blocks every version until a strict majority of the other
// organisations votes it out.
func TestMajorityRemovesAMemberWhoseAdminIsGone(t *testing.T) {
	h := newHarness(t)
	h.joinApprovalSet(false, "Org1MSP", "Org2MSP", "GhostMSP")
	h.ok(org3Admin, "SetSettings", settingsJSON(false, "Org1MSP", "Org2MSP", "GhostMSP", "Org3MSP"))
	h.register("fraud", "3")
	for _, approver := range []*fakeIdentity{org1Approver, org2Approver, org3Approver} {
		h.ok(approver, "ApproveModelVersion", "fraud", "3", "")
	}
	if v := h.ok(org1Auditor, "GetModelVersion", "fraud", "3").(*ModelVersion); v.Status != StatusRegistered {
		t.Fatalf("status %s while GhostMSP has not approved", v.Status)
	}

	// Three other members: two votes needed.
	p := h.ok(org1Admin, "ProposeApprovalSetRemoval", "GhostMSP", "no such organisation on the channel").(*ApprovalSetRemoval)
	want := ApprovalSetRemoval{MSPID: "GhostMSP", Needed: 2, Votes: []RemovalVote{{Actor: org1Admin.actor(), MSPID: "Org1MSP",
		Reason: "no such organisation on the channel", Time: h.last.ts.AsTime().UTC().Format(timeLayout), TxID: h.last.txID}}}
	if toJSON(t, p) != toJSON(t, want) {
		t.Errorf("proposal:\n got %s\nwant %s", toJSON(t, p), toJSON(t, want))
	}
	if ev := h.lastEvent(); ev.Name != EventRemovalProposed ||
		ev.Payload != `{"approvalOrgs":["GhostMSP","Org1MSP","Org2MSP","Org3MSP"],"mspId":"GhostMSP","needed":2,"txId":"`+h.last.txID+`","votes":["Org1MSP"]}` {
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

	removed := h.ok(org3Admin, "ProposeApprovalSetRemoval", "GhostMSP", "admin unreachable").(*ApprovalSetRemoval)
	if !removed.Removed || len(removed.Votes) != 2 || removed.Votes[1].MSPID != "Org3MSP" {
		t.Fatalf("second vote: %s", toJSON(t, removed))
	}
	if ev := h.lastEvent(); ev.Name != EventMemberRemoved ||
		ev.Payload != `{"approvalOrgs":["Org1MSP","Org2MSP","Org3MSP"],"mspId":"GhostMSP","needed":2,"txId":"`+h.last.txID+`","votes":["Org1MSP","Org3MSP"]}` {
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
	ghostAdmin := identity("GhostMSP", RoleAdmin)
	h.ok(ghostAdmin, "SetSettings", settingsJSON(false, "GhostMSP", "Org1MSP", "Org2MSP", "Org3MSP"))
}

// TestOneOtherMemberRemovesInASetOfTwo: the majority is of the other
// members, so a set of two is not deadlocked by a defunct member.
func TestOneOtherMemberRemovesInASetOfTwo(t *testing.T) {
	h := newHarness(t)
	h.joinApprovalSet(false, "Org1MSP", "DefunctMSP")
	h.register("fraud", "3")
	h.ok(org1Approver, "ApproveModelVersion", "fraud", "3", "")
	if p := h.ok(org1Admin, "ProposeApprovalSetRemoval", "DefunctMSP", "left the consortium").(*ApprovalSetRemoval); !p.Removed || p.Needed != 1 {
		t.Fatalf("proposal %s", toJSON(t, p))
	}
	if v := h.ok(org1Approver, "ApproveModelVersion", "fraud", "3", "").(*ModelVersion); v.Status != StatusApproved {
		t.Errorf("status %s", v.Status)
	}
}

// TestOnlyVotesOfCurrentMembersCount: a vote stops counting when its
// organisation leaves the set, and a repeated vote removes once the votes
// suffice for the smaller set.
func TestOnlyVotesOfCurrentMembersCount(t *testing.T) {
	h := newHarness(t)
	h.joinApprovalSet(false, "Org1MSP", "Org2MSP", "Org3MSP", "GhostMSP", "Ghost2MSP")
	h.ok(org2Admin, "ProposeApprovalSetRemoval", "GhostMSP", "gone") // 4 others: 3 votes needed
	h.ok(org3Admin, "ProposeApprovalSetRemoval", "GhostMSP", "gone")
	h.ok(org2Admin, "SetSettings", settingsJSON(false, "Org1MSP", "Org3MSP", "GhostMSP", "Ghost2MSP")) // Org2 leaves
	p := h.ok(org1Auditor, "GetApprovalSetRemoval", "GhostMSP").(*ApprovalSetRemoval)
	if p.Needed != 2 || len(p.Votes) != 1 || p.Votes[0].MSPID != "Org3MSP" {
		t.Fatalf("after Org2 left: %s", toJSON(t, p))
	}
	// Org3 votes again: still one vote of two.
	h.ok(org3Admin, "ProposeApprovalSetRemoval", "GhostMSP", "gone")
	if h.last.wrote() {
		t.Error("a repeated vote wrote")
	}
	// Ghost2MSP is removed by Org1 and Org3 (3 others: 2 votes)...
	h.ok(org1Admin, "ProposeApprovalSetRemoval", "Ghost2MSP", "gone")
	h.ok(org3Admin, "ProposeApprovalSetRemoval", "Ghost2MSP", "gone")
	// ...so for GhostMSP two others remain, and Org3's standing vote plus
	// Org1's make two.
	if p := h.ok(org1Admin, "ProposeApprovalSetRemoval", "GhostMSP", "gone").(*ApprovalSetRemoval); !p.Removed {
		t.Fatalf("proposal %s", toJSON(t, p))
	}
	if s := h.ok(org1Auditor, "GetSettings").(*Settings); toJSON(t, s.ApprovalOrgs) != `["Org1MSP","Org3MSP"]` {
		t.Errorf("approval set %v", s.ApprovalOrgs)
	}
	// With the set shrunk to two, one repeated vote suffices.
	h.ok(org1Admin, "SetSettings", settingsJSON(false, "Org1MSP", "Org3MSP")) // idempotent
	h.ok(org2Admin, "SetSettings", settingsJSON(false, "Org1MSP", "Org2MSP", "Org3MSP"))
	h.ok(org1Admin, "ProposeApprovalSetRemoval", "Org2MSP", "testing") // 2 others: 2 votes needed
	h.ok(org3Admin, "SetSettings", settingsJSON(false, "Org1MSP", "Org2MSP"))
	if p := h.ok(org1Admin, "ProposeApprovalSetRemoval", "Org2MSP", "testing").(*ApprovalSetRemoval); !p.Removed || p.Needed != 1 {
		t.Errorf("repeated vote once it suffices: %s", toJSON(t, p))
	}
}

func TestRemovalRefusals(t *testing.T) {
	h := newHarness(t)
	h.refused(org1Admin, "NOT_AUTHORIZED: organisation Org1MSP is not in the approval set; only the admins of its other organisations may vote to remove a member",
		"ProposeApprovalSetRemoval", "Org2MSP", "gone")
	h.joinApprovalSet(false, "Org1MSP", "Org2MSP")
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

package registry

import (
	"strconv"
	"testing"
)

func TestListModelVersionsPages(t *testing.T) {
	h := newHarness(t)
	for v := 1; v <= 12; v++ {
		h.register("fraud", strconv.Itoa(v))
	}
	h.register("aml", "1")
	h.ok(org2Scientist, "RegisterModelVersion", sampleRecord(t, "churn", "1"))

	var versions []string
	bookmark, pages := "", 0
	for {
		page := h.ok(org1Auditor, "ListModelVersions", "fraud", int32(5), bookmark).(*ModelVersionPage)
		pages++
		if page.Fetched != int32(len(page.Records)) {
			t.Errorf("fetched %d, records %d", page.Fetched, len(page.Records))
		}
		for _, r := range page.Records {
			versions = append(versions, r.Version)
		}
		if bookmark = page.Bookmark; bookmark == "" {
			break
		}
	}
	if pages != 3 || toJSON(t, versions) != `["1","2","3","4","5","6","7","8","9","10","11","12"]` {
		t.Errorf("%d pages, versions %v (want numeric order)", pages, versions)
	}

	all := h.ok(org3Auditor, "ListModelVersions", "", int32(100), "").(*ModelVersionPage)
	if len(all.Records) != 14 || all.Records[0].Name != "aml" || all.Records[1].Name != "churn" {
		t.Errorf("auditor sees %d versions, first %s", len(all.Records), all.Records[0].Name)
	}
	// Org2 reads only its own model; fetched still counts what was read.
	mine := h.ok(org2Scientist, "ListModelVersions", "", int32(100), "").(*ModelVersionPage)
	if len(mine.Records) != 1 || mine.Records[0].Name != "churn" || mine.Fetched != 14 {
		t.Errorf("Org2 sees %d versions (fetched %d)", len(mine.Records), mine.Fetched)
	}
	if p := h.ok(org2Scientist, "ListModelVersions", "fraud", int32(100), "").(*ModelVersionPage); len(p.Records) != 0 || toJSON(t, p.Records) != "[]" {
		t.Errorf("Org2 sees Org1's versions: %+v", p.Records)
	}

	h.refused(org1Scientist, "INVALID: pageSize: must be from 1 to 1000", "ListModelVersions", "fraud", int32(-1), "")
	h.refused(org1Scientist, "INVALID: bookmark: does not belong to this listing", "ListModelVersions", "fraud", int32(5), modelVersionKey("aml", "1"))
	h.refused(org1Scientist, "INVALID: name: must not contain '/' or ':'", "ListModelVersions", "a:b", int32(5), "")
}

func TestApproversReadVersionsAwaitingTheirDecision(t *testing.T) {
	h := newHarness(t)
	h.ok(org1Admin, "SetSettings", settingsJSON(false, "Org1MSP", "Org2MSP"))
	h.register("fraud", "1")
	h.register("fraud", "2")
	h.register("fraud", "3")
	h.ok(org1Approver, "RejectModelVersion", "fraud", "2", "no")
	h.ok(org2Approver, "ApproveModelVersion", "fraud", "3", "")
	h.ok(org1Approver, "ApproveModelVersion", "fraud", "3", "")

	page := h.ok(org2Approver, "ListModelVersions", "fraud", int32(10), "").(*ModelVersionPage)
	var versions []string
	for _, r := range page.Records {
		versions = append(versions, r.Version)
	}
	// 1 awaits Org2's decision, 2 was rejected by Org1, 3 was approved by Org2.
	if toJSON(t, versions) != `["1","3"]` {
		t.Errorf("Org2's approver reads versions %v, want 1 and 3", versions)
	}
	h.refused(org2Scientist, `NOT_FOUND: model "fraud" version "1"`, "GetModelVersion", "fraud", "1")
	h.refused(org3Approver, `NOT_FOUND: model "fraud" version "1"`, "GetModelVersion", "fraud", "1")
}

func TestFindByDigest(t *testing.T) {
	h := newHarness(t)
	shared := sampleInput("fraud", "3")
	h.ok(org1Scientist, "RegisterModelVersion", toJSON(t, shared))
	copyOf := sampleInput("fraud-copy", "1")
	copyOf.ModelDigest = shared.ModelDigest
	h.ok(org1Scientist, "RegisterModelVersion", toJSON(t, copyOf))
	theirs := sampleInput("theirs", "2")
	theirs.ModelDigest = shared.ModelDigest
	h.ok(org2Scientist, "RegisterModelVersion", toJSON(t, theirs))
	h.register("other", "1")

	refs := h.ok(org1Scientist, "FindByDigest", shared.ModelDigest).([]ModelRef)
	if toJSON(t, refs) != `[{"name":"fraud","version":"3"},{"name":"fraud-copy","version":"1"}]` {
		t.Errorf("Org1 finds %s", toJSON(t, refs))
	}
	refs = h.ok(org3Auditor, "FindByDigest", shared.ModelDigest).([]ModelRef)
	if len(refs) != 3 {
		t.Errorf("auditor finds %s", toJSON(t, refs))
	}
	if refs := h.ok(org1Scientist, "FindByDigest", digest("nothing")).([]ModelRef); refs == nil || len(refs) != 0 {
		t.Errorf("an unknown digest finds %v", refs)
	}
	h.refused(org1Scientist, "INVALID: modelDigest: must be 64 lowercase hex characters", "FindByDigest", "abc")
}

func TestGetHistory(t *testing.T) {
	h := newHarness(t)
	h.approved("fraud", "3")
	h.ok(org1Operator, "RecordDeployment", "fraud", "3", "prod", "https://prod.example/fraud")
	h.ok(org1Admin, "RevokeModelVersion", "fraud", "3", "superseded")

	entries := h.ok(org3Auditor, "GetHistory", "fraud", "3").([]HistoryEntry)
	type row struct{ action, status, msp, role string }
	want := []row{
		{"RegisterModelVersion", StatusRegistered, "Org1MSP", RoleDataScientist},
		{"ApproveModelVersion", StatusRegistered, "Org1MSP", RoleApprover},
		{"ApproveModelVersion", StatusApproved, "Org2MSP", RoleApprover},
		{"RecordDeployment", StatusDeployed, "Org1MSP", RoleOperator},
		{"RevokeModelVersion", StatusRevoked, "Org1MSP", RoleAdmin},
	}
	if len(entries) != len(want) {
		t.Fatalf("%d history entries, want %d: %s", len(entries), len(want), toJSON(t, entries))
	}
	for i, e := range entries {
		got := row{e.Action, e.Status, e.Actor.MSPID, e.Actor.Role}
		if got != want[i] || e.IsDelete || e.TxID == "" || e.Time == "" {
			t.Errorf("entry %d: %+v, want %+v", i, e, want[i])
		}
		if i > 0 && entries[i-1].Time >= e.Time {
			t.Errorf("entries not oldest first at %d", i)
		}
	}
	h.refused(org2Scientist, `NOT_FOUND: model "fraud" version "3"`, "GetHistory", "fraud", "3")
	h.refused(org2Scientist, "INVALID: version: must be a positive decimal integer without leading zeros, at most 10 digits", "GetHistory", "fraud", "")
}

func TestGetHistoryShowsDeletes(t *testing.T) {
	h := newHarness(t)
	h.register("fraud", "3")
	key := modelVersionKey("fraud", "3")
	stub := h.ledger.newStub("test", true)
	_ = stub.DelState(key)
	stub.commit()
	h.ledger.state[key] = h.ledger.history[key][0].Value // readable again, for the access check
	entries := h.ok(org1Auditor, "GetHistory", "fraud", "3").([]HistoryEntry)
	if len(entries) != 2 || !entries[1].IsDelete || entries[1].Actor != nil || entries[1].Action != "" {
		t.Errorf("entries %s", toJSON(t, entries))
	}
}

package registry

import (
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"google.golang.org/protobuf/types/known/timestamppb"
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
	// Org2 reads only its own model; fetched counts what it was given.
	mine := h.ok(org2Scientist, "ListModelVersions", "", int32(100), "").(*ModelVersionPage)
	if len(mine.Records) != 1 || mine.Records[0].Name != "churn" || mine.Fetched != 1 || mine.Bookmark != "" {
		t.Errorf("Org2 sees %d versions (fetched %d, bookmark %q)", len(mine.Records), mine.Fetched, mine.Bookmark)
	}
	// A model the caller may not read lists like one that does not exist.
	h.refused(org2Scientist, `NOT_FOUND: model "fraud"`, "ListModelVersions", "fraud", int32(100), "")
	h.refused(org2Scientist, `NOT_FOUND: model "nothing"`, "ListModelVersions", "nothing", int32(100), "")
	h.refused(org1Auditor, `NOT_FOUND: model "nothing"`, "ListModelVersions", "nothing", int32(100), "")

	h.refused(org1Scientist, "INVALID: pageSize: must be from 1 to 1000", "ListModelVersions", "fraud", int32(-1), "")
	h.refused(org1Scientist, "INVALID: bookmark: does not belong to this listing", "ListModelVersions", "fraud", int32(5), modelVersionKey("aml", "1"))
	h.refused(org1Scientist, "INVALID: name: must not contain '/' or ':'", "ListModelVersions", "a:b", int32(5), "")
}

// TestListModelVersionsHidesUnreadableModels checks that nothing in a page
// (records, bookmark, fetched) tells a caller about a model it may not read,
// and that paging over mixed records returns every readable one once.
func TestListModelVersionsHidesUnreadableModels(t *testing.T) {
	h := newHarness(t)
	h.register("fraud", "1")
	h.register("fraud", "2")

	// Org2's scientist, alone with an unreadable Org1 model, sees no trace of it.
	for _, size := range []int32{1, 2, 1000} {
		page := h.ok(org2Scientist, "ListModelVersions", "", size, "").(*ModelVersionPage)
		if toJSON(t, page) != `{"bookmark":"","fetched":0,"records":[]}` {
			t.Errorf("page size %d: Org2 sees %s", size, toJSON(t, page))
		}
	}

	// Mixed records, in key order: readable (r) or not (s) by Org2.
	org2 := func(name, version string) {
		h.ok(org2Scientist, "RegisterModelVersion", sampleRecord(t, name, version))
	}
	org2("a-org2", "1")         // r
	h.register("b-secret", "1") // s
	h.register("c-shared", "1") // r (granted)
	h.register("c-shared", "2") // r
	h.grant("c-shared", "Org2MSP")
	for v := 1; v <= 7; v++ {
		h.register("d-secret", strconv.Itoa(v)) // s
	}
	org2("e-org2", "1")         // r
	org2("e-org2", "2")         // r
	h.register("z-secret", "1") // s, after the last readable record
	want := `["a-org2/1","c-shared/1","c-shared/2","e-org2/1","e-org2/2"]`

	// A page of one after c-shared/2 scans on through d-secret in chunks.
	page := h.ok(org2Scientist, "ListModelVersions", "", int32(1), modelVersionKey("c-shared", "2")).(*ModelVersionPage)
	if len(page.Records) != 1 || page.Records[0].Name != "e-org2" || page.Bookmark != modelVersionKey("e-org2", "1") || h.last.queries < 2 {
		t.Errorf("after c-shared/2: %d queries, page %s", h.last.queries, toJSON(t, page))
	}

	for _, size := range []int32{1, 2, 3, 4, 5, 6, 1000} {
		var got []string
		bookmark := ""
		for calls := 0; ; calls++ {
			if calls > 10 {
				t.Fatalf("page size %d: paging does not end", size)
			}
			page := h.ok(org2Scientist, "ListModelVersions", "", size, bookmark).(*ModelVersionPage)
			if page.Fetched != int32(len(page.Records)) || len(page.Records) == 0 || len(page.Records) > int(size) {
				t.Errorf("page size %d: fetched %d, %d records", size, page.Fetched, len(page.Records))
			}
			if strings.Contains(page.Bookmark, "secret") {
				t.Errorf("page size %d: bookmark %q names an unreadable model", size, page.Bookmark)
			}
			for _, r := range page.Records {
				if strings.Contains(r.Name, "secret") {
					t.Errorf("page size %d: Org2 reads %s", size, r.Name)
				}
				got = append(got, r.Name+"/"+r.Version)
			}
			if page.Bookmark != "" && page.Bookmark != modelVersionKey(page.Records[len(page.Records)-1].Name, page.Records[len(page.Records)-1].Version) {
				t.Errorf("page size %d: bookmark %q is not the key of the last record", size, page.Bookmark)
			}
			if bookmark = page.Bookmark; bookmark == "" {
				break
			}
		}
		if toJSON(t, got) != want {
			t.Errorf("page size %d: Org2 lists %s, want %s", size, toJSON(t, got), want)
		}
	}

	// Auditors page through everything the same way, one query per page.
	var all []string
	bookmark := ""
	for {
		page := h.ok(org3Auditor, "ListModelVersions", "", int32(4), bookmark).(*ModelVersionPage)
		if h.last.queries != 1 { // the query asks for one record more than the page holds
			t.Errorf("an auditor's page ran %d ledger queries, want 1", h.last.queries)
		}
		for _, r := range page.Records {
			all = append(all, r.Name+"/"+r.Version)
		}
		if bookmark = page.Bookmark; bookmark == "" {
			break
		}
	}
	if len(all) != 16 || all[0] != "a-org2/1" || all[15] != "z-secret/1" {
		t.Errorf("auditor lists %v", all)
	}
}

func TestApproversReadVersionsAwaitingTheirDecision(t *testing.T) {
	h := newHarness(t)
	h.joinApprovalSet(false, "Org1MSP", "Org2MSP")
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
	h.refused(org3Approver, `NOT_FOUND: model "fraud"`, "ListModelVersions", "fraud", int32(10), "")

	// Paging skips version 2, which the approver may not read.
	first := h.ok(org2Approver, "ListModelVersions", "fraud", int32(1), "").(*ModelVersionPage)
	if len(first.Records) != 1 || first.Records[0].Version != "1" || first.Bookmark != modelVersionKey("fraud", "1") {
		t.Fatalf("first page %s", toJSON(t, first))
	}
	second := h.ok(org2Approver, "ListModelVersions", "fraud", int32(1), first.Bookmark).(*ModelVersionPage)
	if len(second.Records) != 1 || second.Records[0].Version != "3" || second.Bookmark != "" || second.Fetched != 1 {
		t.Errorf("second page %s", toJSON(t, second))
	}

	// An approver who may read no version of a model gets NOT_FOUND, as for
	// a model that does not exist.
	h.register("churn", "1")
	h.ok(org1Approver, "RejectModelVersion", "churn", "1", "no")
	h.refused(org2Approver, `NOT_FOUND: model "churn"`, "ListModelVersions", "churn", int32(10), "")
	h.refused(org2Approver, `NOT_FOUND: model "churn"`, "ListModelVersions", "churn", int32(10), modelVersionKey("churn", "1"))
}

func TestFindByDigest(t *testing.T) {
	h := newHarness(t)
	shared := sampleInput("fraud", "3")
	h.ok(org1Scientist, "RegisterModelVersion", toJSON(t, shared))
	// The same files under another name; and the same contents under other
	// file names, which the root digest does not cover.
	copyOf := sampleInput("fraud-copy", "1")
	copyOf.Manifest = shared.Manifest
	h.ok(org1Scientist, "RegisterModelVersion", toJSON(t, withDigests(copyOf)))
	theirs := sampleInput("theirs", "2")
	theirs.Manifest.Files = slices.Clone(shared.Manifest.Files)
	for i := range theirs.Manifest.Files {
		theirs.Manifest.Files[i].Path = "renamed/" + theirs.Manifest.Files[i].Path
	}
	theirs = withDigests(theirs)
	if theirs.ModelDigest != shared.ModelDigest || theirs.ManifestDigest == shared.ManifestDigest {
		t.Fatalf("renaming files changed the model digest or kept the manifest digest")
	}
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
		if i > 0 && entries[i-1].TxID >= e.TxID { // the fake's transaction ids grow in commit order
			t.Errorf("entries not oldest first at %d", i)
		}
	}
	h.refused(org2Scientist, `NOT_FOUND: model "fraud" version "3"`, "GetHistory", "fraud", "3")
	h.refused(org2Scientist, "INVALID: version: must be a positive decimal integer without leading zeros, at most 10 digits", "GetHistory", "fraud", "")
}

// TestGetHistoryIsInCommitOrder checks that the history follows the ledger's
// commit order, not the timestamps the clients asserted.
func TestGetHistoryIsInCommitOrder(t *testing.T) {
	h := newHarness(t)
	h.joinApprovalSet(false, "Org1MSP", "Org2MSP")
	h.register("fraud", "3")
	h.ok(org1Approver, "ApproveModelVersion", "fraud", "3", "")
	h.ok(org2Approver, "ApproveModelVersion", "fraud", "3", "")
	// The second change was submitted by a client whose clock was a day behind.
	mods := h.ledger.history[modelVersionKey("fraud", "3")]
	late := time.Date(2026, 2, 28, 10, 0, 0, 0, time.UTC)
	mods[1].Timestamp = timestamppb.New(late)

	entries := h.ok(org1Auditor, "GetHistory", "fraud", "3").([]HistoryEntry)
	var got []string
	for _, e := range entries {
		got = append(got, e.TxID+" "+e.Action+" "+e.Time)
	}
	want := []string{
		mods[0].TxId + " RegisterModelVersion " + formatTimestamp(mods[0].Timestamp),
		mods[1].TxId + " ApproveModelVersion 2026-02-28T10:00:00.000000000Z",
		mods[2].TxId + " ApproveModelVersion " + formatTimestamp(mods[2].Timestamp),
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("history:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
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

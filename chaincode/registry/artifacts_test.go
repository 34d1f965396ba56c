package registry

import (
	"fmt"
	"strings"
	"testing"
	"time"
)

func TestAuthorizeArtifactAccessLogsEveryDecision(t *testing.T) {
	h := newHarness(t)
	v := h.register("fraud", "3")

	granted := h.ok(org1Operator, "AuthorizeArtifactAccess", "fraud", "3", "deploy to prod").(*ArtifactAccess)
	want := ArtifactAccess{Decision: AccessGranted, ManifestDigest: v.ManifestDigest, ModelDigest: v.ModelDigest,
		Name: "fraud", Purpose: "deploy to prod", Status: StatusRegistered, Storage: &v.Storage, TxID: granted.TxID, Version: "3"}
	if toJSON(t, granted) != toJSON(t, want) {
		t.Errorf("granted:\n got %s\nwant %s", toJSON(t, granted), toJSON(t, want))
	}
	if ev := h.lastEvent(); ev.Name != EventArtifactAccess ||
		ev.Payload != `{"decision":"GRANTED","mspId":"Org1MSP","name":"fraud","txId":"`+granted.TxID+`","version":"3"}` {
		t.Errorf("event %s %s", ev.Name, ev.Payload)
	}

	denied := h.ok(org2Scientist, "AuthorizeArtifactAccess", "fraud", "3", "").(*ArtifactAccess)
	want = ArtifactAccess{Decision: AccessDenied, Name: "fraud", Reason: "model version not found or no read access", TxID: denied.TxID, Version: "3"}
	if toJSON(t, denied) != toJSON(t, want) {
		t.Errorf("denied:\n got %s\nwant %s", toJSON(t, denied), toJSON(t, want))
	}
	// A version that does not exist gets the same answer, and no entry.
	before, events := h.ledger.snapshot(), len(h.ledger.events)
	missing := h.ok(org2Scientist, "AuthorizeArtifactAccess", "fraud", "4", "probe").(*ArtifactAccess)
	want = ArtifactAccess{Decision: AccessDenied, Name: "fraud", Purpose: "probe", Reason: denied.Reason, TxID: missing.TxID, Version: "4"}
	if toJSON(t, missing) != toJSON(t, want) {
		t.Errorf("a missing version:\n got %s\nwant %s", toJSON(t, missing), toJSON(t, want))
	}
	if h.last.wrote() || len(h.ledger.events) != events || toJSON(t, h.ledger.snapshot()) != toJSON(t, before) {
		t.Error("an access to a version that does not exist was logged")
	}

	page := h.ok(org3Auditor, "ListAccessLog", "fraud", "3", int32(10), "").(*AccessLogPage)
	if len(page.Records) != 2 || page.Fetched != 2 || page.Bookmark != "" {
		t.Fatalf("access log of version 3: %+v", page)
	}
	first, second := page.Records[0], page.Records[1]
	if first.Decision != AccessGranted || first.Actor != org1Operator.actor() || first.Purpose != "deploy to prod" || first.Reason != "" {
		t.Errorf("first entry %+v", first)
	}
	if second.Decision != AccessDenied || second.Actor != org2Scientist.actor() || second.Reason == "" || second.TxID != denied.TxID {
		t.Errorf("second entry %+v", second)
	}
	if stored := h.stored(accessEntryKey("fraud", "3", denied.TxID)); stored != `{"actor":{"certFingerprint":"`+org2Scientist.actor().CertFingerprint+
		`","mspId":"Org2MSP","role":"data_scientist"},"decision":"DENIED","name":"fraud","purpose":"","reason":"model version not found or no read access","time":"`+
		second.Time+`","txId":"`+denied.TxID+`","version":"3"}` {
		t.Errorf("stored entry %s", stored)
	}
	if got := h.stored(accessHeadKey("fraud", padVersion("3"))); got != `"`+denied.TxID+`"` {
		t.Errorf("the head of version 3 is %s, want the last entry's txId", got)
	}
	h.register("fraud", "4")
	access4 := h.ok(org1Auditor, "AuthorizeArtifactAccess", "fraud", "4", "").(*ArtifactAccess)
	// An access writes its entry and the head and reads no key of the log.
	for key := range h.last.readKeys {
		if strings.HasPrefix(key, compositeKey(objectAccessHead)) || strings.HasPrefix(key, compositeKey(objectAccessEntry)) {
			t.Errorf("an access read %q", key)
		}
	}
	all := h.ok(org1Admin, "ListAccessLog", "fraud", "", int32(10), "").(*AccessLogPage)
	if len(all.Records) != 3 || all.Records[2].Version != "4" || all.Records[2].Actor != org1Auditor.actor() {
		t.Errorf("access log of every version: %+v", all.Records)
	}
	if h.stored(accessHeadKey("fraud", padVersion("4"))) != `"`+access4.TxID+`"` {
		t.Error("version 4 has its own head")
	}
}

// TestAccessLogListsInCommitOrder: the log lists entries in the order they
// were committed, whatever timestamp each client put in its proposal.
func TestAccessLogListsInCommitOrder(t *testing.T) {
	h := newHarness(t)
	h.register("fraud", "3")
	h.grant("fraud", "Org2MSP")
	h.ok(org1Operator, "AuthorizeArtifactAccess", "fraud", "3", "first")
	backdated := time.Date(1999, 1, 1, 0, 0, 0, 0, time.UTC)
	h.ledger.nextTime = &backdated
	h.ok(org2Scientist, "AuthorizeArtifactAccess", "fraud", "3", "second, dated 1999")
	h.ok(org1Auditor, "AuthorizeArtifactAccess", "fraud", "3", "third")

	page := h.ok(org1Auditor, "ListAccessLog", "fraud", "3", int32(10), "").(*AccessLogPage)
	if got := purposes(page); got != "first|second, dated 1999|third" {
		t.Fatalf("listed %q, want commit order", got)
	}
	if page.Records[1].Time != "1999-01-01T00:00:00.000000000Z" {
		t.Errorf("the client's timestamp is kept in the entry: %s", page.Records[1].Time)
	}
	// The same order a page at a time.
	seen := ""
	for bookmark, first := "", true; first || bookmark != ""; first = false {
		p := h.ok(org1Auditor, "ListAccessLog", "fraud", "", int32(1), bookmark).(*AccessLogPage)
		seen, bookmark = seen+purposes(p)+";", p.Bookmark
	}
	if seen != "first;second, dated 1999;third;" {
		t.Errorf("paged: %q", seen)
	}
}

// TestConcurrentAccessesToOneVersionAllCommit: accesses to one version
// endorsed at the same time (model-server replicas, or anyone's denied
// accesses) all commit: none reads a key another writes.
func TestConcurrentAccessesToOneVersionAllCommit(t *testing.T) {
	h := newHarness(t)
	h.register("fraud", "3")
	var stubs []*fakeStub
	for i, who := range []*fakeIdentity{org1Operator, org2Scientist, org1Operator, org3Auditor} {
		stub, _, err := h.endorse(who, "AuthorizeArtifactAccess", "fraud", "3", fmt.Sprintf("replica %d", i))
		if err != nil {
			t.Fatal(err)
		}
		stubs = append(stubs, stub)
	}
	if invalid := h.commitBlock(stubs...); len(invalid) != 0 {
		t.Fatalf("invalidated (MVCC_READ_CONFLICT): %v", invalid)
	}
	page := h.ok(org1Auditor, "ListAccessLog", "fraud", "3", int32(10), "").(*AccessLogPage)
	if got := purposes(page); got != "replica 0|replica 1|replica 2|replica 3" {
		t.Errorf("listed %q, want the block's order", got)
	}
	if page.Records[1].Decision != AccessDenied {
		t.Errorf("the outsider's access %+v", page.Records[1])
	}
}

// TestAccessLogKeepsEntriesOfTheOlderLayouts: entries written before 1.3.0
// (keyed by [name, version, time, txId]) and by an unreleased build of
// 1.3.0 (keyed by [name, version, "seq", sequence]) are still listed,
// before the entries written since, and every page size gives the same
// order across layouts and versions.
func TestAccessLogKeepsEntriesOfTheOlderLayouts(t *testing.T) {
	h := newHarness(t)
	h.register("fraud", "3")
	h.register("fraud", "4")
	h.register("fraud", "10")
	plant := func(version, purpose string, attributes ...string) {
		entry := AccessLogEntry{Actor: org1Operator.actor(), Decision: AccessGranted, Name: "fraud", Purpose: purpose,
			Time: "2026-01-01T00:00:00.000000000Z", TxID: "old-" + purpose, Version: version}
		key := compositeKey(objectAccess, append([]string{"fraud", padVersion(version)}, attributes...)...)
		h.ledger.state[key] = []byte(toJSON(t, entry))
	}
	for i, at := range []string{"2027-01-01T00:00:00.000000000Z", "2026-12-01T00:00:00.000000000Z"} {
		plant("3", "1.2.0 "+at, at, fmt.Sprintf("old%d", i))
	}
	plant("3", "seq 2", "seq", fmt.Sprintf("%020d", 2))
	plant("3", "seq 1", "seq", fmt.Sprintf("%020d", 1))
	plant("10", "seq 10/1", "seq", fmt.Sprintf("%020d", 1))                // version 10 has no entry of the current layout
	h.ok(org1Operator, "AuthorizeArtifactAccess", "fraud", "4", "new 4/1") // version 4 has only entries of the current layout
	h.ok(org1Operator, "AuthorizeArtifactAccess", "fraud", "3", "new 3/1")
	h.ok(org1Operator, "AuthorizeArtifactAccess", "fraud", "3", "new 3/2")

	want3 := "1.2.0 2026-12-01T00:00:00.000000000Z|1.2.0 2027-01-01T00:00:00.000000000Z|seq 1|seq 2|new 3/1|new 3/2"
	if got := purposes(h.ok(org1Auditor, "ListAccessLog", "fraud", "3", int32(10), "").(*AccessLogPage)); got != want3 {
		t.Errorf("listed %q, want %q", got, want3)
	}
	wantAll := want3 + "|new 4/1|seq 10/1"
	for size := int32(1); size <= 8; size++ {
		var seen []string
		pages := 0
		for bookmark, first := "", true; first || bookmark != ""; first = false {
			p := h.ok(org1Auditor, "ListAccessLog", "fraud", "", size, bookmark).(*AccessLogPage)
			if p.Fetched != int32(len(p.Records)) || len(p.Records) > int(size) || (p.Bookmark != "" && len(p.Records) != int(size)) {
				t.Fatalf("page size %d: page %+v", size, p)
			}
			seen, bookmark, pages = append(seen, purposes(p)), p.Bookmark, pages+1
		}
		if got := strings.Join(seen, "|"); got != wantAll || pages != (8+int(size)-1)/int(size) {
			t.Errorf("page size %d: %d pages, listed %q, want %q", size, pages, got, wantAll)
		}
	}
}

func purposes(p *AccessLogPage) string {
	out := make([]string, len(p.Records))
	for i, e := range p.Records {
		out[i] = e.Purpose
	}
	return strings.Join(out, "|")
}

func TestListAccessLogRules(t *testing.T) {
	h := newHarness(t)
	h.register("fraud", "3")
	for i := 0; i < 5; i++ {
		h.ok(org1Scientist, "AuthorizeArtifactAccess", "fraud", "3", "")
	}
	h.ok(org2Scientist, "AuthorizeArtifactAccess", "churn", "1", "") // does not exist: not logged

	page := h.ok(org1Scientist, "ListAccessLog", "fraud", "3", int32(2), "").(*AccessLogPage)
	seen := len(page.Records)
	for page.Bookmark != "" {
		page = h.ok(org1Scientist, "ListAccessLog", "fraud", "3", int32(2), page.Bookmark).(*AccessLogPage)
		seen += len(page.Records)
	}
	if seen != 5 {
		t.Errorf("paged through %d entries, want 5", seen)
	}
	// Auditors read the (empty) log of a model that does not exist.
	if p := h.ok(org3Auditor, "ListAccessLog", "churn", "", int32(10), "").(*AccessLogPage); len(p.Records) != 0 {
		t.Errorf("log of an unknown model: %+v", p)
	}

	h.refused(org2Scientist, `NOT_FOUND: model "fraud"`, "ListAccessLog", "fraud", "3", int32(10), "")
	h.refused(org2Scientist, `NOT_FOUND: model "churn"`, "ListAccessLog", "churn", "1", int32(10), "")
	h.grant("fraud", "Org2MSP")
	h.refused(org2Scientist, `NOT_AUTHORIZED: only auditors and the owner organisation of model "fraud" may read its access log`,
		"ListAccessLog", "fraud", "3", int32(10), "")
	h.refused(org1Scientist, "INVALID: pageSize: must be from 1 to 1000", "ListAccessLog", "fraud", "3", int32(0), "")
	h.refused(org1Scientist, "INVALID: pageSize: must be from 1 to 1000", "ListAccessLog", "fraud", "3", int32(1001), "")
	h.refused(org1Scientist, "INVALID: bookmark: does not belong to this listing", "ListAccessLog", "fraud", "3", int32(10),
		accessEntryKey("fraud", "4", "tx0001"))
	h.refused(org1Scientist, "INVALID: bookmark: does not belong to this listing", "ListAccessLog", "fraud", "3", int32(10),
		compositeKey(objectAccessEntry, "fraud", padVersion("3")))
	h.refused(org1Scientist, "INVALID: bookmark: does not belong to this listing", "ListAccessLog", "fraud", "3", int32(10),
		compositeKey(objectAccessEntry, "fraud", padVersion("3"), "tx", "extra"))
	h.refused(org1Scientist, "INVALID: bookmark: does not belong to this listing", "ListAccessLog", "fraud", "3", int32(10),
		compositeKey(objectAccess, "fraud", padVersion("3")))
	// A well-formed bookmark naming a transaction that logged nothing here.
	h.refused(org1Scientist, "INVALID: bookmark: does not belong to this listing", "ListAccessLog", "fraud", "3", int32(10),
		accessEntryKey("fraud", "3", "tx9999"))
	h.refused(org1Scientist, "INVALID: version: must be a positive decimal integer without leading zeros, at most 10 digits",
		"ListAccessLog", "fraud", "x", int32(10), "")
	h.refused(org1Scientist, "INVALID: name: must not be blank", "ListAccessLog", "", "", int32(10), "")
	h.refused(org1Scientist, "INVALID: purpose: must be at most 1024 characters", "AuthorizeArtifactAccess", "fraud", "3", string(make([]byte, 1025)))
	h.refused(org1Scientist, "INVALID: version: must be a positive decimal integer without leading zeros, at most 10 digits",
		"AuthorizeArtifactAccess", "fraud", "", "")
}

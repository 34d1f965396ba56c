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
	if stored := h.stored(accessKey("fraud", "3", 2)); stored != `{"actor":{"certFingerprint":"`+org2Scientist.actor().CertFingerprint+
		`","mspId":"Org2MSP","role":"data_scientist"},"decision":"DENIED","name":"fraud","purpose":"","reason":"model version not found or no read access","time":"`+
		second.Time+`","txId":"`+denied.TxID+`","version":"3"}` {
		t.Errorf("stored entry %s", stored)
	}
	if got := h.stored(accessSequenceKey("fraud", "3")); got != "2" {
		t.Errorf("the sequence of version 3 is %s, want 2", got)
	}
	h.register("fraud", "4")
	h.ok(org1Auditor, "AuthorizeArtifactAccess", "fraud", "4", "")
	all := h.ok(org1Admin, "ListAccessLog", "fraud", "", int32(10), "").(*AccessLogPage)
	if len(all.Records) != 3 || all.Records[2].Version != "4" || all.Records[2].Actor != org1Auditor.actor() {
		t.Errorf("access log of every version: %+v", all.Records)
	}
	if h.stored(accessKey("fraud", "4", 1)) == "" {
		t.Error("version 4 has its own sequence")
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

// TestAccessLogKeepsEntriesOfTheOldLayout: entries written before 1.3.0,
// keyed by [name, version, time, txId], are still listed, before the
// entries written since and in the order of their times.
func TestAccessLogKeepsEntriesOfTheOldLayout(t *testing.T) {
	h := newHarness(t)
	h.register("fraud", "3")
	for i, at := range []string{"2027-01-01T00:00:00.000000000Z", "2026-12-01T00:00:00.000000000Z"} {
		entry := AccessLogEntry{Actor: org1Operator.actor(), Decision: AccessGranted, Name: "fraud", Purpose: "old " + at,
			Time: at, TxID: fmt.Sprintf("old%d", i), Version: "3"}
		h.ledger.state[compositeKey(objectAccess, "fraud", padVersion("3"), at, entry.TxID)] = []byte(toJSON(t, entry))
	}
	h.ok(org1Operator, "AuthorizeArtifactAccess", "fraud", "3", "new 1")
	h.ok(org1Operator, "AuthorizeArtifactAccess", "fraud", "3", "new 2")

	page := h.ok(org1Auditor, "ListAccessLog", "fraud", "3", int32(10), "").(*AccessLogPage)
	want := "old 2026-12-01T00:00:00.000000000Z|old 2027-01-01T00:00:00.000000000Z|new 1|new 2"
	if got := purposes(page); got != want {
		t.Errorf("listed %q, want %q", got, want)
	}
	first := h.ok(org1Auditor, "ListAccessLog", "fraud", "3", int32(2), "").(*AccessLogPage)
	rest := h.ok(org1Auditor, "ListAccessLog", "fraud", "3", int32(2), first.Bookmark).(*AccessLogPage)
	if purposes(first)+"|"+purposes(rest) != want || rest.Bookmark != "" {
		t.Errorf("paged across the layouts: %q then %q", purposes(first), purposes(rest))
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
		accessKey("fraud", "4", 1))
	h.refused(org1Scientist, "INVALID: version: must be a positive decimal integer without leading zeros, at most 10 digits",
		"ListAccessLog", "fraud", "x", int32(10), "")
	h.refused(org1Scientist, "INVALID: name: must not be blank", "ListAccessLog", "", "", int32(10), "")
	h.refused(org1Scientist, "INVALID: purpose: must be at most 1024 characters", "AuthorizeArtifactAccess", "fraud", "3", string(make([]byte, 1025)))
	h.refused(org1Scientist, "INVALID: version: must be a positive decimal integer without leading zeros, at most 10 digits",
		"AuthorizeArtifactAccess", "fraud", "", "")
}

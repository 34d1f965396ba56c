package registry

import (
	"testing"
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
	missing := h.ok(org2Scientist, "AuthorizeArtifactAccess", "fraud", "4", "probe").(*ArtifactAccess)
	if missing.Decision != AccessDenied || missing.Reason != denied.Reason {
		t.Errorf("a missing version: %+v", missing)
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
	if stored := h.stored(accessKey("fraud", "3", second.Time, denied.TxID)); stored != `{"actor":{"certFingerprint":"`+org2Scientist.actor().CertFingerprint+
		`","mspId":"Org2MSP","role":"data_scientist"},"decision":"DENIED","name":"fraud","purpose":"","reason":"model version not found or no read access","time":"`+
		second.Time+`","txId":"`+denied.TxID+`","version":"3"}` {
		t.Errorf("stored entry %s", stored)
	}
	all := h.ok(org1Admin, "ListAccessLog", "fraud", "", int32(10), "").(*AccessLogPage)
	if len(all.Records) != 3 || all.Records[2].Version != "4" {
		t.Errorf("access log of every version: %+v", all.Records)
	}
}

func TestListAccessLogRules(t *testing.T) {
	h := newHarness(t)
	h.register("fraud", "3")
	for i := 0; i < 5; i++ {
		h.ok(org1Scientist, "AuthorizeArtifactAccess", "fraud", "3", "")
	}
	h.ok(org2Scientist, "AuthorizeArtifactAccess", "churn", "1", "")

	page := h.ok(org1Scientist, "ListAccessLog", "fraud", "3", int32(2), "").(*AccessLogPage)
	seen := len(page.Records)
	for page.Bookmark != "" {
		page = h.ok(org1Scientist, "ListAccessLog", "fraud", "3", int32(2), page.Bookmark).(*AccessLogPage)
		seen += len(page.Records)
	}
	if seen != 5 {
		t.Errorf("paged through %d entries, want 5", seen)
	}
	// Auditors read the log of a model that does not exist.
	if p := h.ok(org3Auditor, "ListAccessLog", "churn", "", int32(10), "").(*AccessLogPage); len(p.Records) != 1 {
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
		accessKey("fraud", "4", "2026-03-01T10:00:01.123456789Z", "tx0001"))
	h.refused(org1Scientist, "INVALID: version: must be a positive decimal integer without leading zeros, at most 10 digits",
		"ListAccessLog", "fraud", "x", int32(10), "")
	h.refused(org1Scientist, "INVALID: name: must not be blank", "ListAccessLog", "", "", int32(10), "")
	h.refused(org1Scientist, "INVALID: purpose: must be at most 1024 characters", "AuthorizeArtifactAccess", "fraud", "3", string(make([]byte, 1025)))
	h.refused(org1Scientist, "INVALID: version: must be a positive decimal integer without leading zeros, at most 10 digits",
		"AuthorizeArtifactAccess", "fraud", "", "")
}

package registry

import (
	"strings"
	"testing"
)

// TestLedgerFailuresAreReported checks that failures of the peer surface as
// errors that are not refusals (no class) and name the key.
func TestLedgerFailuresAreReported(t *testing.T) {
	h := newHarness(t)
	h.approved("fraud", "3")
	h.joinApprovalSet(false, "Org3MSP") // a set of three, in which a member can be voted out
	h.ok(org1Scientist, "AuthorizeArtifactAccess", "fraud", "3", "")
	calls := functionCalls(t)
	expectFailure := func(t *testing.T, who *fakeIdentity, function string, args ...any) {
		t.Helper()
		_, err := h.invoke(who, function, args...)
		if err == nil || ClassOf(err) != "" || !strings.HasPrefix(err.Error(), "ledger: ") {
			t.Errorf("%s: got %v, want a ledger error", function, err)
		}
	}

	t.Run("reads", func(t *testing.T) {
		h.use(t)
		h.ledger.failKeys = map[string]bool{modelKey("fraud"): true}
		expectFailure(t, org1Scientist, "RegisterModelVersion", calls["RegisterModelVersion"]...)
		expectFailure(t, org1Admin, "GrantAccess", "fraud", "Org2MSP")
		expectFailure(t, org1Scientist, "GetModelVersion", "fraud", "3")
		expectFailure(t, org1Scientist, "ListAccessLog", "fraud", "3", int32(10), "")
		expectFailure(t, org1Scientist, "ListModelVersions", "fraud", int32(10), "")
		h.ledger.failKeys = map[string]bool{settingsKey: true}
		expectFailure(t, org1Approver, "ApproveModelVersion", "fraud", "3", "")
		expectFailure(t, org1Scientist, "GetModelVersion", "fraud", "3")
		expectFailure(t, org1Scientist, "GetSettings")
		expectFailure(t, org1Admin, "SetSettings", settingsJSON(false, "Org1MSP"))
		expectFailure(t, org1Scientist, "RegisterModelVersion", calls["RegisterModelVersion"]...)
		expectFailure(t, org1Auditor, "ListModelVersions", "", int32(10), "")
		h.ledger.failKeys = map[string]bool{datasetKey(datasetTx, "Org1MSP"): true}
		expectFailure(t, org1Scientist, "RegisterModelVersion", calls["RegisterModelVersion"]...)
		h.ledger.failKeys = map[string]bool{legacyDatasetKey(datasetTx): true}
		expectFailure(t, org1Scientist, "RegisterModelVersion", calls["RegisterModelVersion"]...)
		h.ledger.failKeys = map[string]bool{datasetKey(digest("d"), "Org1MSP"): true}
		expectFailure(t, org1Scientist, "RegisterDataset", calls["RegisterDataset"]...)
		h.ledger.failKeys = map[string]bool{legacyDatasetKey(digest("d")): true}
		expectFailure(t, org1Scientist, "RegisterDataset", calls["RegisterDataset"]...)
		h.ledger.failKeys = map[string]bool{accessEntryKey("fraud", "3", "tx0009"): true}
		expectFailure(t, org1Scientist, "ListAccessLog", "fraud", "3", int32(10), "")
		h.ledger.failKeys = map[string]bool{removalKey("Org2MSP"): true}
		expectFailure(t, org1Admin, "ProposeApprovalSetRemoval", "Org2MSP", "gone")
		expectFailure(t, org1Admin, "GetApprovalSetRemoval", "Org2MSP")
		h.ledger.failKeys = map[string]bool{settingsKey: true}
		expectFailure(t, org1Admin, "ProposeApprovalSetRemoval", "Org2MSP", "gone")
		expectFailure(t, org1Admin, "GetApprovalSetRemoval", "Org2MSP")
		h.ledger.failKeys = map[string]bool{deploymentKey("prod", "fraud"): true}
		expectFailure(t, org1Operator, "RecordDeployment", calls["RecordDeployment"]...)
		expectFailure(t, org1Operator, "GetDeployment", "prod", "fraud")
		h.ledger.failKeys = map[string]bool{modelVersionKey("fraud", "3"): true}
		expectFailure(t, org1Auditor, "GetHistory", "fraud", "3")
		expectFailure(t, org1Admin, "RevokeModelVersion", "fraud", "3", "x")
		expectFailure(t, org1Scientist, "AuthorizeArtifactAccess", "fraud", "3", "")
		expectFailure(t, org1Auditor, "FindByDigest", sampleInput("fraud", "3").ModelDigest)
		h.ledger.failKeys = map[string]bool{modelVersionKey("fraud", "9"): true}
		expectFailure(t, org1Scientist, "RegisterModelVersion", calls["RegisterModelVersion"]...)
		h.ledger.failKeys = map[string]bool{}
	})

	t.Run("queries", func(t *testing.T) {
		h.use(t)
		h.ledger.failRange = true
		defer func() { h.ledger.failRange = false }()
		expectFailure(t, org1Auditor, "ListModelVersions", "", int32(10), "")
		expectFailure(t, org1Auditor, "FindByDigest", digest("x"))
		expectFailure(t, org1Auditor, "GetHistory", "fraud", "3")
		expectFailure(t, org1Auditor, "ListAccessLog", "fraud", "", int32(10), "")
		expectFailure(t, org1Auditor, "GetDataset", digest("d"))
		expectFailure(t, org1Auditor, "GetDatasetClaims", digest("d"))
	})

	t.Run("writes", func(t *testing.T) {
		h.use(t)
		h.ledger.failWrites = true
		defer func() { h.ledger.failWrites = false }()
		expectFailure(t, org1Scientist, "RegisterModelVersion", sampleRecord(t, "new", "1"))
		expectFailure(t, org1Scientist, "RegisterDataset", calls["RegisterDataset"]...)
		expectFailure(t, org1Admin, "GrantAccess", "fraud", "Org2MSP")
		expectFailure(t, org1Admin, "SetSettings", settingsJSON(true, "Org1MSP", "Org2MSP", "Org3MSP"))
		expectFailure(t, org1Scientist, "AuthorizeArtifactAccess", "fraud", "3", "")
		expectFailure(t, org1Operator, "RecordDeployment", "fraud", "3", "dev", "https://dev")
		expectFailure(t, org1Admin, "RevokeModelVersion", "fraud", "3", "x")
		expectFailure(t, org1Admin, "ProposeApprovalSetRemoval", "Org2MSP", "gone")
	})

	t.Run("corrupt records", func(t *testing.T) {
		h.use(t)
		saved := h.ledger.state[modelVersionKey("fraud", "3")]
		h.ledger.state[modelVersionKey("fraud", "3")] = []byte("{")
		expectFailure(t, org1Auditor, "GetModelVersion", "fraud", "3")
		expectFailure(t, org1Auditor, "ListModelVersions", "fraud", int32(10), "")
		h.ledger.state[modelVersionKey("fraud", "3")] = saved

		delete(h.ledger.state, modelKey("fraud"))
		expectFailure(t, org1Auditor, "GetModelVersion", "fraud", "3")
		expectFailure(t, org1Auditor, "ListModelVersions", "", int32(10), "")

		h.ledger.state[digestKey(digest("z"), "a", "1")] = []byte("[")
		expectFailure(t, org1Auditor, "FindByDigest", digest("z"))
		h.ledger.state[compositeKey(objectAccess, "a", padVersion("1"), "seq", "1")] = []byte("[")
		expectFailure(t, org1Auditor, "ListAccessLog", "a", "1", int32(10), "")
		h.ledger.state[compositeKey(objectAccess, "b", padVersion("1"))] = []byte("{}")
		expectFailure(t, org1Auditor, "ListAccessLog", "b", "", int32(10), "")
		h.ledger.state[compositeKey(objectAccessHead, "c")] = []byte(`"x"`)
		expectFailure(t, org1Auditor, "ListAccessLog", "c", "", int32(10), "")
		savedEntry := h.ledger.state[accessEntryKey("fraud", "3", "tx0009")]
		h.ledger.state[accessEntryKey("fraud", "3", "tx0009")] = []byte("[")
		expectFailure(t, org1Auditor, "ListAccessLog", "fraud", "3", int32(10), "")
		delete(h.ledger.state, accessEntryKey("fraud", "3", "tx0009"))
		expectFailure(t, org1Auditor, "ListAccessLog", "fraud", "3", int32(10), "")
		h.ledger.state[accessEntryKey("fraud", "3", "tx0009")] = savedEntry
		h.ledger.state[datasetKey(digest("y"), "Org1MSP")] = []byte("[")
		expectFailure(t, org1Auditor, "GetDataset", digest("y"))
		h.ledger.history[modelVersionKey("a", "1")] = nil
	})
}

package registry

import (
	"crypto/x509"
	"errors"
	"fmt"
	"sort"
	"strings"
	"testing"

	"github.com/hyperledger/fabric-chaincode-go/v2/pkg/cid"
)

// functionCalls holds valid arguments for every contract function.
func functionCalls(t *testing.T) map[string][]any {
	return map[string][]any{
		"RegisterModelVersion":      {sampleRecord(t, "fraud", "9")},
		"RegisterDataset":           {toJSON(t, DatasetInput{Name: "d", SHA256: digest("d"), Source: "s3://d"})},
		"ApproveModelVersion":       {"fraud", "3", ""},
		"RejectModelVersion":        {"fraud", "3", "no"},
		"RevokeModelVersion":        {"fraud", "3", "no"},
		"RecordDeployment":          {"fraud", "3", "prod", "https://e"},
		"GrantAccess":               {"fraud", "Org2MSP"},
		"RevokeAccess":              {"fraud", "Org2MSP"},
		"AuthorizeArtifactAccess":   {"fraud", "3", ""},
		"SetSettings":               {settingsJSON(false, "Org1MSP")},
		"ProposeApprovalSetRemoval": {"Org2MSP", "its admin is gone"},
		"GetApprovalSetRemoval":     {"Org2MSP"},
		"GetModelVersion":           {"fraud", "3"},
		"GetModel":                  {"fraud"},
		"ListModelVersions":         {"", int32(10), ""},
		"FindByDigest":              {digest("x")},
		"GetHistory":                {"fraud", "3"},
		"GetDataset":                {digest("d")},
		"GetDatasetClaims":          {digest("d")},
		"GetDeployment":             {"prod", "fraud"},
		"ListAccessLog":             {"fraud", "3", int32(10), ""},
		"GetSettings":               {},
		"SetModelPolicy":            {"fraud", policyJSON(1, false, minThreshold("auc", 0.9))},
		"RecordEvaluation":          {"fraud", "3", evaluationJSON(digest("holdout"), "run-1", Metric{Key: "auc", Value: 0.95})},
		"ListEvaluations":           {"fraud", "3"},
	}
}

// allowedRoles is the role table of CONTRACT.md.
func allowedRoles(t *testing.T) map[string][]string {
	writers := []string{RoleDataScientist, RoleRegistrar}
	allowed := map[string][]string{
		"RegisterModelVersion":      writers,
		"RegisterDataset":           {RoleDataScientist, RoleEvaluator, RoleRegistrar},
		"ApproveModelVersion":       {RoleApprover},
		"RejectModelVersion":        {RoleApprover},
		"RevokeModelVersion":        {RoleAdmin, RoleApprover},
		"RecordDeployment":          {RoleOperator},
		"GrantAccess":               {RoleAdmin},
		"RevokeAccess":              {RoleAdmin},
		"SetSettings":               {RoleAdmin},
		"ProposeApprovalSetRemoval": {RoleAdmin},
		"SetModelPolicy":            {RoleAdmin},
		"RecordEvaluation":          {RoleEvaluator},
	}
	for name := range functionCalls(t) {
		if _, ok := allowed[name]; !ok {
			allowed[name] = allRoles()
		}
	}
	return allowed
}

func sortedNames(m map[string][]any) []string {
	names := make([]string, 0, len(m))
	for name := range m {
		names = append(names, name)
	}
	sort.Strings(names)
	return names
}

// TestRolesAreCheckedBeforeAnyStateRead calls every function with every
// role it does not allow and checks the exact refusal, and that nothing was
// read.
func TestRolesAreCheckedBeforeAnyStateRead(t *testing.T) {
	h := newHarness(t)
	h.approved("fraud", "3")
	calls, allowed := functionCalls(t), allowedRoles(t)
	for _, function := range sortedNames(calls) {
		for _, role := range allRoles() {
			if contains(allowed[function], role) {
				continue
			}
			t.Run(function+"/"+role, func(t *testing.T) {
				h.use(t)
				want := fmt.Sprintf("NOT_AUTHORIZED: role %q of Org1MSP may not call %s (allowed: %s)",
					role, function, strings.Join(allowed[function], ", "))
				h.refused(identity("Org1MSP", role), want, function, calls[function]...)
				if h.last.reads != 0 {
					t.Errorf("%s read the state %d times before refusing the role", function, h.last.reads)
				}
			})
		}
	}
}

func contains(list []string, s string) bool {
	for _, item := range list {
		if item == s {
			return true
		}
	}
	return false
}

// TestUnreadableIdentitiesAreRefused covers identities without a usable
// role, certificate or MSP id, for every function.
func TestUnreadableIdentitiesAreRefused(t *testing.T) {
	noRole := identity("Org1MSP", "")
	noRole.hasRole = false
	badRole := identity("Org1MSP", "superuser")
	noCert := identity("Org1MSP", RoleAuditor)
	noCert.cert = nil
	noMSP := identity("Org1MSP", RoleAuditor)
	noMSP.mspErr = errors.New("no MSP")
	var typedNil *cid.ClientID
	tests := []struct {
		name string
		who  cid.ClientIdentity
		want string
	}{
		{"no role attribute", noRole, "NOT_AUTHORIZED: identity of Org1MSP has no modelledger.role attribute"},
		{"unknown role", badRole, `NOT_AUTHORIZED: role "superuser" of Org1MSP is not a ModelLedger role (one of: admin, approver, auditor, data_scientist, evaluator, operator, registrar)`},
		{"no certificate", noCert, "NOT_AUTHORIZED: identity of Org1MSP has no X.509 certificate"},
		{"no MSP id", noMSP, "NOT_AUTHORIZED: the caller's MSP id cannot be read"},
		{"no identity", nil, "NOT_AUTHORIZED: the caller's identity cannot be read"},
		{"identity that failed to parse", typedNil, "NOT_AUTHORIZED: the caller's identity cannot be read"},
	}
	h := newHarness(t)
	h.approved("fraud", "3")
	calls := functionCalls(t)
	for _, tc := range tests {
		for _, function := range sortedNames(calls) {
			t.Run(tc.name+"/"+function, func(t *testing.T) {
				h.use(t)
				h.refused(tc.who, tc.want, function, calls[function]...)
				if h.last.reads != 0 {
					t.Errorf("%s read the state before refusing the caller", function)
				}
			})
		}
	}
}

func TestCertificateFingerprintIsSHA256OfDER(t *testing.T) {
	who := identity("Org1MSP", RoleAuditor)
	who.cert = &x509.Certificate{Raw: []byte{0x30, 0x03, 0x02, 0x01, 0x01}}
	c, err := readCaller(&fakeContext{stub: newFakeLedger(t).newStub("x", false), identity: who})
	if err != nil {
		t.Fatal(err)
	}
	if want := digest("\x30\x03\x02\x01\x01"); c.certFingerprint != want {
		t.Errorf("fingerprint %s, want %s", c.certFingerprint, want)
	}
}

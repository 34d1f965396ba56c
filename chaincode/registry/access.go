package registry

import (
	"crypto/sha256"
	"encoding/hex"
	"reflect"
	"slices"
	"sort"
	"strings"

	"github.com/hyperledger/fabric-chaincode-go/v2/pkg/cid"
	"github.com/hyperledger/fabric-contract-api-go/v2/contractapi"
)

// RoleAttribute is the certificate attribute (issued by the org's Fabric CA)
// that holds the caller's ModelLedger role.
const RoleAttribute = "modelledger.role"

// The seven roles.
const (
	RoleDataScientist = "data_scientist"
	RoleRegistrar     = "registrar"
	RoleEvaluator     = "evaluator"
	RoleApprover      = "approver"
	RoleOperator      = "operator"
	RoleAuditor       = "auditor"
	RoleAdmin         = "admin"
)

// allRoles lists the roles in alphabetical order.
func allRoles() []string {
	return []string{RoleAdmin, RoleApprover, RoleAuditor, RoleDataScientist, RoleEvaluator, RoleOperator, RoleRegistrar}
}

// caller is the identity of the transaction creator.
type caller struct {
	mspID           string
	role            string
	certFingerprint string
}

func (c caller) actor() Actor {
	return Actor{CertFingerprint: c.certFingerprint, MSPID: c.mspID, Role: c.role}
}

// authorize reads the caller from the transaction creator and refuses it
// unless its role is one of allowed. Every function calls it first, before
// reading any state.
func authorize(ctx contractapi.TransactionContextInterface, function string, allowed ...string) (caller, error) {
	c, err := readCaller(ctx)
	if err != nil {
		return caller{}, err
	}
	if !slices.Contains(allowed, c.role) {
		sorted := append([]string(nil), allowed...)
		sort.Strings(sorted)
		return caller{}, notAuthorized("role %q of %s may not call %s (allowed: %s)",
			c.role, c.mspID, function, strings.Join(sorted, ", "))
	}
	return c, nil
}

func readCaller(ctx contractapi.TransactionContextInterface) (caller, error) {
	id := ctx.GetClientIdentity()
	if isNil(id) {
		return caller{}, notAuthorized("the caller's identity cannot be read")
	}
	mspID, err := id.GetMSPID()
	if err != nil || mspID == "" {
		return caller{}, notAuthorized("the caller's MSP id cannot be read")
	}
	role, found, err := id.GetAttributeValue(RoleAttribute)
	if err != nil || !found {
		return caller{}, notAuthorized("identity of %s has no %s attribute", mspID, RoleAttribute)
	}
	if !slices.Contains(allRoles(), role) {
		return caller{}, notAuthorized("role %q of %s is not a ModelLedger role (one of: %s)",
			role, mspID, strings.Join(allRoles(), ", "))
	}
	cert, err := id.GetX509Certificate()
	if err != nil || cert == nil {
		return caller{}, notAuthorized("identity of %s has no X.509 certificate", mspID)
	}
	sum := sha256.Sum256(cert.Raw)
	return caller{mspID: mspID, role: role, certFingerprint: hex.EncodeToString(sum[:])}, nil
}

// isNil also catches a typed nil: contractapi stores the result of cid.New
// even when it failed.
func isNil(id cid.ClientIdentity) bool {
	if id == nil {
		return true
	}
	v := reflect.ValueOf(id)
	return v.Kind() == reflect.Pointer && v.IsNil()
}

// canReadModel tells whether the caller may read every version of m:
// auditors, the owner organisation and the organisations granted access.
func (c caller) canReadModel(m *Model) bool {
	return c.role == RoleAuditor || c.mspID == m.Owner || slices.Contains(m.Grants, c.mspID)
}

// canReadVersion adds the reviewers' rights to canReadModel. An approver of
// an organisation in the version's approval set may read it while it awaits
// decisions (REGISTERED), or once its organisation decided on it. An
// evaluator of such an organisation may read it while it is REGISTERED,
// APPROVED or DEPLOYED: it must evaluate the version before approval
// completes, and again when a new policy version gates further deployments.
func (c caller) canReadVersion(m *Model, v *ModelVersion, s *Settings) bool {
	if c.canReadModel(m) {
		return true
	}
	if !c.isReviewer() || !slices.Contains(v.approvalSet(s), c.mspID) {
		return false
	}
	if c.role == RoleEvaluator {
		return v.Status == StatusRegistered || v.Status == StatusApproved || v.Status == StatusDeployed
	}
	_, decided := v.decisionOf(c.mspID)
	return v.Status == StatusRegistered || decided
}

// isReviewer tells whether the caller's role has a reviewer's right to
// versions of models it may not otherwise read (approvers and evaluators).
func (c caller) isReviewer() bool {
	return c.role == RoleApprover || c.role == RoleEvaluator
}

// isDeciding tells whether the caller is an approver or an evaluator of an
// organisation in the approval set of the settings (which may read some
// versions of any model: canReadVersion tells which).
func (c caller) isDeciding(s *Settings) bool {
	return c.isReviewer() && slices.Contains(s.ApprovalOrgs, c.mspID)
}

// decisionOf returns the approval recorded for an organisation, if any.
func (v *ModelVersion) decisionOf(mspID string) (Approval, bool) {
	for _, a := range v.Approvals {
		if a.MSPID == mspID {
			return a, true
		}
	}
	return Approval{}, false
}

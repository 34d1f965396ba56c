package registry

import (
	"slices"
	"sort"
	"strings"

	"github.com/hyperledger/fabric-contract-api-go/v2/contractapi"
)

// ApproveModelVersion records the approval of the caller's organisation,
// which must be in the version's approval set (see approvalSet). When the
// model has a policy, the version must have the passing evaluations it
// requires (see gate). The version becomes APPROVED when every
// organisation of that set has approved it.
// Approving again is idempotent, unless the set shrank so that every
// organisation of it has now approved: then the repeat makes the version
// APPROVED. Approving after rejecting is a CONFLICT. Emits
// ModelVersionApproved.
func (c *Contract) ApproveModelVersion(ctx contractapi.TransactionContextInterface, name, version, comment string) (*ModelVersion, error) {
	return decide(ctx, "ApproveModelVersion", DecisionApproved, name, version, comment)
}

// RejectModelVersion records the rejection of the caller's organisation,
// which must be in the version's approval set; the version becomes REJECTED. The
// reason is required. Rejecting again is idempotent; rejecting after
// approving is a CONFLICT. Emits ModelVersionRejected.
func (c *Contract) RejectModelVersion(ctx contractapi.TransactionContextInterface, name, version, reason string) (*ModelVersion, error) {
	return decide(ctx, "RejectModelVersion", DecisionRejected, name, version, reason)
}

func decide(ctx contractapi.TransactionContextInterface, function, decision, name, version, note string) (*ModelVersion, error) {
	t, err := begin(ctx, function, RoleApprover)
	if err != nil {
		return nil, err
	}
	if err := validateDecision(decision, name, version, note); err != nil {
		return nil, err
	}
	s, err := t.settings()
	if err != nil {
		return nil, err
	}
	if !slices.Contains(s.ApprovalOrgs, t.caller.mspID) {
		return nil, notAuthorized("organisation %s is not in the approval set", t.caller.mspID)
	}
	v, m, _, err := t.readableVersion(name, version)
	if err != nil {
		return nil, err
	}
	orgs := v.approvalSet(s)
	if !slices.Contains(orgs, t.caller.mspID) {
		return nil, notAuthorized("organisation %s is not in the approval set of model %q version %q (recorded at its registration)",
			t.caller.mspID, name, version)
	}
	if previous, decided := v.decisionOf(t.caller.mspID); decided {
		if previous.Decision == decision {
			return t.repeatDecision(m, v, orgs)
		}
		return nil, conflict("%s already %s model %q version %q",
			t.caller.mspID, strings.ToLower(previous.Decision), name, version)
	}
	if v.Status != StatusRegistered {
		return nil, conflict("model %q version %q is %s; decisions are recorded only while it is REGISTERED",
			name, version, v.Status)
	}
	if decision == DecisionApproved {
		if err := gate(m, v); err != nil {
			return nil, err
		}
	}
	v.Approvals = append(v.Approvals, Approval{Actor: t.caller.actor(), Comment: note, Decision: decision,
		MSPID: t.caller.mspID, Time: t.time, TxID: t.id})
	sort.Slice(v.Approvals, func(i, j int) bool { return v.Approvals[i].MSPID < v.Approvals[j].MSPID })
	event := EventModelVersionApproved
	if decision == DecisionRejected {
		v.Status, event = StatusRejected, EventModelVersionRejected
	} else if approvedByAll(v, orgs) {
		v.Status = StatusApproved
	}
	if err := t.saveVersion(event, v, ""); err != nil {
		return nil, err
	}
	return v, nil
}

// repeatDecision handles a decision the caller's organisation already
// recorded. It changes nothing, except that an approval repeated while the
// version is REGISTERED and every organisation of its approval set orgs has
// approved it (the set lost the organisations that had not) makes the
// version APPROVED, if it passes the gate of the model's policy.
func (t *tx) repeatDecision(m *Model, v *ModelVersion, orgs []string) (*ModelVersion, error) {
	if v.Status != StatusRegistered || !approvedByAll(v, orgs) {
		return v, nil
	}
	if err := gate(m, v); err != nil {
		return nil, err
	}
	v.Status = StatusApproved
	if err := t.saveVersion(EventModelVersionApproved, v, ""); err != nil {
		return nil, err
	}
	return v, nil
}

func validateDecision(decision, name, version, note string) error {
	if err := validateNameAndVersion(name, version); err != nil {
		return err
	}
	if decision == DecisionRejected {
		return validateNote("reason", note, maxNoteChars, true)
	}
	return validateNote("comment", note, maxNoteChars, false)
}

// approvedByAll tells whether every organisation of the version's approval
// set (read when the decision is recorded) has approved v.
func approvedByAll(v *ModelVersion, approvalOrgs []string) bool {
	for _, org := range approvalOrgs {
		if a, ok := v.decisionOf(org); !ok || a.Decision != DecisionApproved {
			return false
		}
	}
	return true
}

// approvalSet returns the organisations whose decisions v needs: those of
// the set recorded at its registration that are still in the approval set
// of the settings s. An organisation that joined the approval set later has
// no say on v; one that left it, or was voted out, no longer has one. When
// none of the recorded organisations is left (or v records none: it was
// registered before 1.3.0 or while the settings were unset), the current
// approval set decides, so that no version waits forever.
func (v *ModelVersion) approvalSet(s *Settings) []string {
	var orgs []string
	for _, org := range v.ApprovalOrgs {
		if slices.Contains(s.ApprovalOrgs, org) {
			orgs = append(orgs, org)
		}
	}
	if len(orgs) == 0 {
		return s.ApprovalOrgs
	}
	return orgs
}

// RevokeModelVersion revokes a version of a model of the caller's
// organisation, from any status; revocation is final and a second one is a
// CONFLICT. The reason is required. Emits ModelVersionRevoked.
func (c *Contract) RevokeModelVersion(ctx contractapi.TransactionContextInterface, name, version, reason string) (*ModelVersion, error) {
	t, err := begin(ctx, "RevokeModelVersion", RoleAdmin, RoleApprover)
	if err != nil {
		return nil, err
	}
	if err := validateNameAndVersion(name, version); err != nil {
		return nil, err
	}
	if err := validateNote("reason", reason, maxNoteChars, true); err != nil {
		return nil, err
	}
	v, _, _, err := t.readableVersion(name, version)
	if err != nil {
		return nil, err
	}
	if v.Owner != t.caller.mspID {
		return nil, notAuthorized("only the owner organisation of model %q may revoke its versions", name)
	}
	if v.Status == StatusRevoked {
		return nil, conflict("model %q version %q is already revoked", name, version)
	}
	v.Status = StatusRevoked
	v.Revocation = &Revocation{Actor: t.caller.actor(), Reason: reason, Time: t.time, TxID: t.id}
	if err := t.saveVersion(EventModelVersionRevoked, v, ""); err != nil {
		return nil, err
	}
	return v, nil
}

package registry

import (
	"slices"
	"sort"

	"github.com/hyperledger/fabric-contract-api-go/v2/contractapi"
)

// ProposeApprovalSetRemoval records the vote of the caller's organisation to
// remove another organisation, mspId, from the approval set: the way out
// when a member's admin is gone (a defunct or made-up MSP that would
// otherwise block every approval), since an organisation otherwise leaves
// the set only through its own admin. The caller must be an admin of an
// organisation of the set other than mspId, which must be in it; the reason
// is required.
//
// The vote that makes a strict majority of the other organisations of the
// set (n/2 + 1 of them, n counting every member but mspId) removes mspId:
// only the votes of organisations still in the set count. A vote by an
// organisation that already voted is idempotent, unless the votes now
// suffice (the set shrank): then it removes. A removed organisation's admin
// can rejoin the set with SetSettings, like any organisation on the
// channel. Emits ApprovalSetRemovalProposed, or ApprovalSetMemberRemoved
// with the vote that removes (which also deletes the proposal and changes
// the settings).
func (c *Contract) ProposeApprovalSetRemoval(ctx contractapi.TransactionContextInterface, mspID, reason string) (*ApprovalSetRemoval, error) {
	t, err := begin(ctx, "ProposeApprovalSetRemoval", RoleAdmin)
	if err != nil {
		return nil, err
	}
	if err := validateMSPID("mspId", mspID); err != nil {
		return nil, err
	}
	if err := validateNote("reason", reason, maxNoteChars, true); err != nil {
		return nil, err
	}
	if mspID == t.caller.mspID {
		return nil, invalid("mspId", "is the caller's own organisation; an organisation leaves the approval set through SetSettings")
	}
	s, err := t.settings()
	if err != nil {
		return nil, err
	}
	if !slices.Contains(s.ApprovalOrgs, t.caller.mspID) {
		return nil, notAuthorized("organisation %s is not in the approval set; only the admins of its other organisations may vote to remove a member",
			t.caller.mspID)
	}
	if !slices.Contains(s.ApprovalOrgs, mspID) {
		return nil, conflict("%s is not in the approval set", mspID)
	}
	p, _, err := t.removal(mspID, s)
	if err != nil {
		return nil, err
	}
	voted := slices.ContainsFunc(p.Votes, func(v RemovalVote) bool { return v.MSPID == t.caller.mspID })
	if !voted {
		p.Votes = append(p.Votes, RemovalVote{Actor: t.caller.actor(), MSPID: t.caller.mspID, Reason: reason, Time: t.time, TxID: t.id})
		sort.Slice(p.Votes, func(i, j int) bool { return p.Votes[i].MSPID < p.Votes[j].MSPID })
	}
	if len(p.Votes) < p.Needed {
		if voted {
			return p, nil
		}
		if err := t.putJSON(removalKey(mspID), p); err != nil {
			return nil, err
		}
		if err := t.emitRemoval(EventRemovalProposed, p, s.ApprovalOrgs); err != nil {
			return nil, err
		}
		return p, nil
	}
	change := t.change()
	remaining := slices.DeleteFunc(slices.Clone(s.ApprovalOrgs), func(org string) bool { return org == mspID })
	if err := t.putJSON(settingsKey, &Settings{ApprovalOrgs: remaining, LastChange: &change, StrictDatasets: s.StrictDatasets}); err != nil {
		return nil, err
	}
	if err := t.stub.DelState(removalKey(mspID)); err != nil {
		return nil, ledgerError("delete", removalKey(mspID), err)
	}
	p.Removed = true
	if err := t.emitRemoval(EventMemberRemoved, p, remaining); err != nil {
		return nil, err
	}
	return p, nil
}

// removal reads the proposal to remove mspID (an empty one when there is
// none) as it stands with the settings s: the votes of the organisations
// still in the approval set, and the votes needed, a strict majority of the
// set's other organisations.
func (t *tx) removal(mspID string, s *Settings) (*ApprovalSetRemoval, bool, error) {
	stored := &ApprovalSetRemoval{}
	found, err := t.getJSON(removalKey(mspID), stored)
	if err != nil {
		return nil, false, err
	}
	others := 0
	for _, org := range s.ApprovalOrgs {
		if org != mspID {
			others++
		}
	}
	p := &ApprovalSetRemoval{MSPID: mspID, Needed: others/2 + 1, Votes: []RemovalVote{}}
	for _, v := range stored.Votes {
		if v.MSPID != mspID && slices.Contains(s.ApprovalOrgs, v.MSPID) {
			p.Votes = append(p.Votes, v)
		}
	}
	return p, found, nil
}

func (t *tx) emitRemoval(event string, p *ApprovalSetRemoval, approvalOrgs []string) error {
	voters := make([]string, len(p.Votes))
	for i, v := range p.Votes {
		voters[i] = v.MSPID
	}
	return t.emit(event, RemovalEvent{ApprovalOrgs: approvalOrgs, MSPID: p.MSPID, Needed: p.Needed, TxID: t.id, Votes: voters})
}

// GetApprovalSetRemoval returns the proposal to remove an organisation from
// the approval set as it stands: the votes that count (of organisations
// still in the set) and the votes needed. NOT_FOUND when none is pending.
// Any role may read it.
func (c *Contract) GetApprovalSetRemoval(ctx contractapi.TransactionContextInterface, mspID string) (*ApprovalSetRemoval, error) {
	t, err := begin(ctx, "GetApprovalSetRemoval", allRoles()...)
	if err != nil {
		return nil, err
	}
	if err := validateMSPID("mspId", mspID); err != nil {
		return nil, err
	}
	s, err := t.settings()
	if err != nil {
		return nil, err
	}
	p, found, err := t.removal(mspID, s)
	if err != nil {
		return nil, err
	}
	if !found {
		return nil, notFound("no removal of %s from the approval set is proposed", mspID)
	}
	return p, nil
}

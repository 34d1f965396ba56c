package registry

import (
	"slices"
	"sort"

	"github.com/hyperledger/fabric-contract-api-go/v2/contractapi"
)

// ProposeApprovalSetRemoval records the vote of the caller's organisation to
// remove another organisation, mspId, from the approval set: the way out
// when a member's admin is gone (a defunct organisation that would
// otherwise block every approval), since an organisation otherwise leaves
// the set only through its own admin. The caller must be an admin of an
// organisation of the set other than mspId, which must be in it; the reason
// is required.
//
// A proposal opens with the first vote and records the approval set of that
// moment and the transaction that last changed the settings. It removes
// mspId with the vote that makes a majority of that whole set, mspId
// included although it never votes: n/2 + 1 votes (rounded down) of a set
// of n. A set of two therefore cannot remove a member by vote (CONFLICT):
// the one other member is not a majority. Any change of the settings after
// the proposal opened (a member joining, leaving or removed, strictDatasets
// switched) voids its votes: the next vote opens a new proposal under the
// new settings, so the voters are always exactly the members of the set the
// proposal counts, and an organisation that left and rejoined must vote
// again. A vote by an organisation that already voted on the open proposal
// is idempotent. A removed organisation's admin can rejoin the set with
// SetSettings, like any organisation on the channel. Emits
// ApprovalSetRemovalProposed, or ApprovalSetMemberRemoved with the vote
// that removes (which also deletes the proposal and changes the settings).
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
	needed := removalVotesNeeded(len(s.ApprovalOrgs))
	if voters := len(s.ApprovalOrgs) - 1; voters < needed {
		return nil, conflict("the approval set has %d members: removing one takes %d votes and only %d other member can vote; "+
			"in a set of two a member leaves only through its own admin, or through a change of the chaincode by the channel's admins",
			len(s.ApprovalOrgs), needed, voters)
	}
	p, _, err := t.pendingRemoval(mspID, s)
	if err != nil {
		return nil, err
	}
	if p == nil {
		p = &ApprovalSetRemoval{ApprovalOrgs: slices.Clone(s.ApprovalOrgs), MSPID: mspID, Needed: needed,
			SettingsTxID: s.changeTxID(), Votes: []RemovalVote{}}
	}
	if slices.ContainsFunc(p.Votes, func(v RemovalVote) bool { return v.MSPID == t.caller.mspID }) {
		return p, nil
	}
	p.Votes = append(p.Votes, RemovalVote{Actor: t.caller.actor(), MSPID: t.caller.mspID, Reason: reason, Time: t.time, TxID: t.id})
	sort.Slice(p.Votes, func(i, j int) bool { return p.Votes[i].MSPID < p.Votes[j].MSPID })
	if len(p.Votes) < p.Needed {
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

// removalVotesNeeded is the number of votes that removes a member from an
// approval set of n organisations (the member included): a majority of the
// whole set, n/2 + 1, which is at least 2 for any set that has a member to
// remove besides the voter.
func removalVotesNeeded(n int) int {
	return n/2 + 1
}

// changeTxID is the id of the transaction that last changed the settings
// ("" while they are unset).
func (s *Settings) changeTxID() string {
	if s.LastChange == nil {
		return ""
	}
	return s.LastChange.TxID
}

// pendingRemoval reads the proposal to remove mspID. It returns the
// proposal when one is stored and still open under the settings s (they
// have not changed since it opened), nil otherwise; void is the transaction
// that last changed the settings when a stored proposal is void for that
// reason ("" otherwise). A proposal stored by an earlier build without
// settingsTxId is void.
func (t *tx) pendingRemoval(mspID string, s *Settings) (p *ApprovalSetRemoval, void string, err error) {
	stored := &ApprovalSetRemoval{}
	found, err := t.getJSON(removalKey(mspID), stored)
	if err != nil || !found {
		return nil, "", err
	}
	if stored.SettingsTxID == "" || stored.SettingsTxID != s.changeTxID() {
		return nil, s.changeTxID(), nil
	}
	stored.ApprovalOrgs, stored.Votes = nonNil(stored.ApprovalOrgs), nonNil(stored.Votes)
	return stored, "", nil
}

func (t *tx) emitRemoval(event string, p *ApprovalSetRemoval, approvalOrgs []string) error {
	voters := make([]string, len(p.Votes))
	for i, v := range p.Votes {
		voters[i] = v.MSPID
	}
	return t.emit(event, RemovalEvent{ApprovalOrgs: approvalOrgs, MSPID: p.MSPID, Needed: p.Needed, TxID: t.id, Votes: voters})
}

// GetApprovalSetRemoval returns the open proposal to remove an organisation
// from the approval set: the set it counts, its votes and the votes needed.
// NOT_FOUND when none is open (none was made, or the settings changed since
// it opened, which voids it). Any role may read it.
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
	p, void, err := t.pendingRemoval(mspID, s)
	if err != nil {
		return nil, err
	}
	if void != "" {
		return nil, notFound("no removal of %s from the approval set is proposed since the settings last changed (transaction %s); "+
			"the votes cast before are void", mspID, void)
	}
	if p == nil {
		return nil, notFound("no removal of %s from the approval set is proposed", mspID)
	}
	return p, nil
}

package registry

import (
	"slices"

	"github.com/hyperledger/fabric-contract-api-go/v2/contractapi"
)

// SetSettings sets the channel settings (a JSON SettingsInput).
//
// An organisation joins or leaves the approval set only through its own
// admin, from the very first call: a call may add or remove the caller's
// organisation and no other. So the first call, while no settings are set,
// names the caller's organisation alone, and the other organisations join
// through their own admins; no admin can put a made-up or another
// organisation in the set. The caller's organisation must be in the current
// approval set, unless the call adds it (joining); strictDatasets may be
// changed by such a caller, alone or with joining or leaving. Setting the
// same values again is idempotent. Another organisation is removed only by
// the vote of ProposeApprovalSetRemoval. Emits SettingsChanged.
func (c *Contract) SetSettings(ctx contractapi.TransactionContextInterface, settings string) (*Settings, error) {
	t, err := begin(ctx, "SetSettings", RoleAdmin)
	if err != nil {
		return nil, err
	}
	in, err := parseSettings([]byte(settings))
	if err != nil {
		return nil, err
	}
	current, err := t.settings()
	if err != nil {
		return nil, err
	}
	if err := t.caller.mayChangeSettings(current, in); err != nil {
		return nil, err
	}
	if slices.Equal(current.ApprovalOrgs, in.ApprovalOrgs) && current.StrictDatasets == in.StrictDatasets {
		return current, nil
	}
	change := t.change()
	s := &Settings{ApprovalOrgs: in.ApprovalOrgs, LastChange: &change, StrictDatasets: in.StrictDatasets}
	if err := t.putJSON(settingsKey, s); err != nil {
		return nil, err
	}
	event := SettingsEvent{ApprovalOrgs: s.ApprovalOrgs, StrictDatasets: s.StrictDatasets, TxID: t.id}
	if err := t.emit(EventSettingsChanged, event); err != nil {
		return nil, err
	}
	return s, nil
}

// mayChangeSettings applies the governance of the settings: the caller's
// organisation must be in the current approval set or join it with this
// call, and the call may add or remove no organisation but the caller's
// (while the settings are unset the set is empty, so the first call names
// the caller's organisation alone).
func (c caller) mayChangeSettings(current *Settings, in *SettingsInput) error {
	member := slices.Contains(current.ApprovalOrgs, c.mspID)
	if !member && !slices.Contains(in.ApprovalOrgs, c.mspID) {
		return notAuthorized("organisation %s is not in the approval set; only the admins of its organisations may change the settings, "+
			"and an admin of another organisation may only add its own", c.mspID)
	}
	for _, msp := range current.ApprovalOrgs {
		if msp != c.mspID && !slices.Contains(in.ApprovalOrgs, msp) {
			return notAuthorized("an admin of %s may not remove %s from the approval set; only an admin of %s may",
				c.mspID, msp, msp)
		}
	}
	for _, msp := range in.ApprovalOrgs {
		if msp != c.mspID && !slices.Contains(current.ApprovalOrgs, msp) {
			return notAuthorized("an admin of %s may not add %s to the approval set; an organisation joins it only through its own admin",
				c.mspID, msp)
		}
	}
	return nil
}

// GetSettings returns the channel settings: until SetSettings, an empty
// approval set and strictDatasets off, without lastChange.
func (c *Contract) GetSettings(ctx contractapi.TransactionContextInterface) (*Settings, error) {
	t, err := begin(ctx, "GetSettings", allRoles()...)
	if err != nil {
		return nil, err
	}
	return t.settings()
}

package registry

import (
	"github.com/hyperledger/fabric-contract-api-go/v2/contractapi"
	"slices"
)

// SetSettings sets the channel settings (a JSON SettingsInput). While no
// settings are set any admin may set them; afterwards only the admins of an
// organisation in the approval set, and an organisation can be removed from
// the approval set only by its own admin (no organisation can drop another's
// say). Setting the same values again is idempotent. Emits SettingsChanged.
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
	isSet := current.LastChange != nil
	if isSet && !slices.Contains(current.ApprovalOrgs, t.caller.mspID) {
		return nil, notAuthorized("organisation %s is not in the approval set; only the admins of its organisations may change the settings", t.caller.mspID)
	}
	if isSet && slices.Equal(current.ApprovalOrgs, in.ApprovalOrgs) && current.StrictDatasets == in.StrictDatasets {
		return current, nil
	}
	if isSet {
		for _, msp := range current.ApprovalOrgs {
			if msp != t.caller.mspID && !slices.Contains(in.ApprovalOrgs, msp) {
				return nil, notAuthorized("an admin of %s may not remove %s from the approval set; only an admin of %s may",
					t.caller.mspID, msp, msp)
			}
		}
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

// GetSettings returns the channel settings: until SetSettings, an empty
// approval set and strictDatasets off, without lastChange.
func (c *Contract) GetSettings(ctx contractapi.TransactionContextInterface) (*Settings, error) {
	t, err := begin(ctx, "GetSettings", allRoles()...)
	if err != nil {
		return nil, err
	}
	return t.settings()
}

package registry

import (
	"slices"
	"sort"

	"github.com/hyperledger/fabric-contract-api-go/v2/contractapi"
)

// GrantAccess gives another organisation read access to every version of a
// model of the caller's organisation. Granting again is idempotent. Emits
// AccessGranted.
func (c *Contract) GrantAccess(ctx contractapi.TransactionContextInterface, name, mspID string) (*Model, error) {
	return changeGrant(ctx, "GrantAccess", name, mspID, true)
}

// RevokeAccess withdraws the read access GrantAccess gave. Withdrawing an
// access that is not granted is idempotent. Emits AccessRevoked.
func (c *Contract) RevokeAccess(ctx contractapi.TransactionContextInterface, name, mspID string) (*Model, error) {
	return changeGrant(ctx, "RevokeAccess", name, mspID, false)
}

func changeGrant(ctx contractapi.TransactionContextInterface, function, name, mspID string, grant bool) (*Model, error) {
	t, err := begin(ctx, function, RoleAdmin)
	if err != nil {
		return nil, err
	}
	if err := validateModelName("name", name); err != nil {
		return nil, err
	}
	if err := validateMSPID("mspId", mspID); err != nil {
		return nil, err
	}
	m, err := t.readableModel(name)
	if err != nil {
		return nil, err
	}
	if m.Owner != t.caller.mspID {
		return nil, notAuthorized("only the owner organisation of model %q may change who can read it", name)
	}
	if mspID == m.Owner {
		return nil, invalidf("mspId", "is the owner organisation of model %q", name)
	}
	if slices.Contains(m.Grants, mspID) == grant {
		return m, nil
	}
	event := EventAccessRevoked
	if grant {
		m.Grants, event = append(m.Grants, mspID), EventAccessGranted
		sort.Strings(m.Grants)
	} else {
		m.Grants = without(m.Grants, mspID)
	}
	m.LastChange = t.change()
	if err := t.putJSON(modelKey(name), m); err != nil {
		return nil, err
	}
	if err := t.emit(event, AccessEvent{MSPID: mspID, Name: name, TxID: t.id}); err != nil {
		return nil, err
	}
	return m, nil
}

func without(list []string, s string) []string {
	out := make([]string, 0, len(list))
	for _, item := range list {
		if item != s {
			out = append(out, item)
		}
	}
	return out
}

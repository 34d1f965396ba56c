package registry

import (
	"github.com/hyperledger/fabric-contract-api-go/v2/contractapi"
)

// RegisterDataset registers a dataset (a JSON DatasetInput), keyed by the
// SHA-256 of its content and owned by the caller's organisation. An
// identical registration returns the stored record; the same sha256 with
// other content is a CONFLICT. Emits DatasetRegistered.
func (c *Contract) RegisterDataset(ctx contractapi.TransactionContextInterface, dataset string) (*Dataset, error) {
	t, err := begin(ctx, "RegisterDataset", RoleDataScientist, RoleRegistrar)
	if err != nil {
		return nil, err
	}
	in, err := parseDataset([]byte(dataset))
	if err != nil {
		return nil, err
	}
	var stored Dataset
	found, err := t.getJSON(datasetKey(in.SHA256), &stored)
	if err != nil {
		return nil, err
	}
	if found {
		if stored.Name != in.Name || stored.SchemaSummary != in.SchemaSummary || stored.Source != in.Source {
			return nil, conflict("dataset %s is already registered with other content", in.SHA256)
		}
		return &stored, nil
	}
	d := &Dataset{Name: in.Name, Owner: t.caller.mspID, RegisteredAt: t.time, RegisteredTxID: t.id,
		Registrant: t.caller.actor(), SchemaSummary: in.SchemaSummary, SHA256: in.SHA256, Source: in.Source}
	if err := t.putJSON(datasetKey(d.SHA256), d); err != nil {
		return nil, err
	}
	if err := t.emit(EventDatasetRegistered, DatasetEvent{MSPID: t.caller.mspID, Name: d.Name, SHA256: d.SHA256, TxID: t.id}); err != nil {
		return nil, err
	}
	return d, nil
}

// GetDataset returns a registered dataset. Any role may read datasets.
func (c *Contract) GetDataset(ctx contractapi.TransactionContextInterface, sha256 string) (*Dataset, error) {
	t, err := begin(ctx, "GetDataset", allRoles()...)
	if err != nil {
		return nil, err
	}
	if err := validateDigest("sha256", sha256); err != nil {
		return nil, err
	}
	var d Dataset
	found, err := t.getJSON(datasetKey(sha256), &d)
	if err != nil {
		return nil, err
	}
	if !found {
		return nil, notFound("dataset %s", sha256)
	}
	return &d, nil
}

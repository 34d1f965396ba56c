package registry

import (
	"encoding/json"
	"sort"
	"strings"

	"github.com/hyperledger/fabric-contract-api-go/v2/contractapi"
)

// RegisterDataset records the claim of the caller's organisation on a
// dataset (a JSON DatasetInput): the name, source and schema summary it
// gives the content whose SHA-256 is sha256. Every organisation has its own
// claim on a sha256, so no organisation can take a dataset's description
// from another. An identical registration returns the stored claim; the
// same sha256 with other content, by the same organisation, is a CONFLICT
// naming the fields that differ. Evaluators register the hold-out sets
// they evaluate on. Emits DatasetRegistered.
func (c *Contract) RegisterDataset(ctx contractapi.TransactionContextInterface, dataset string) (*Dataset, error) {
	t, err := begin(ctx, "RegisterDataset", RoleDataScientist, RoleEvaluator, RoleRegistrar)
	if err != nil {
		return nil, err
	}
	in, err := parseDataset([]byte(dataset))
	if err != nil {
		return nil, err
	}
	stored, found, err := t.datasetClaim(in.SHA256, t.caller.mspID)
	if err != nil {
		return nil, err
	}
	if found {
		if differ := stored.differences(in); len(differ) > 0 {
			return nil, conflict("dataset %s is already registered by %s with other content (differs in %s)",
				in.SHA256, t.caller.mspID, strings.Join(differ, ", "))
		}
		return stored, nil
	}
	d := &Dataset{Name: in.Name, Owner: t.caller.mspID, RegisteredAt: t.time, RegisteredTxID: t.id,
		Registrant: t.caller.actor(), SchemaSummary: in.SchemaSummary, SHA256: in.SHA256, Source: in.Source}
	if err := t.putJSON(datasetKey(d.SHA256, d.Owner), d); err != nil {
		return nil, err
	}
	if err := t.emit(EventDatasetRegistered, DatasetEvent{MSPID: t.caller.mspID, Name: d.Name, SHA256: d.SHA256, TxID: t.id}); err != nil {
		return nil, err
	}
	return d, nil
}

// differences names the fields of in that differ from the stored claim d.
func (d *Dataset) differences(in *DatasetInput) []string {
	var differ []string
	if d.Name != in.Name {
		differ = append(differ, "name")
	}
	if d.SchemaSummary != in.SchemaSummary {
		differ = append(differ, "schemaSummary")
	}
	if d.Source != in.Source {
		differ = append(differ, "source")
	}
	return differ
}

// datasetClaim reads the claim of an organisation on a dataset, with point
// reads only: its record under dataset[sha256, mspId], or else a record
// registered before 1.3.0 under dataset[sha256] that the organisation owns.
func (t *tx) datasetClaim(sha256, mspID string) (*Dataset, bool, error) {
	d := &Dataset{}
	found, err := t.getJSON(datasetKey(sha256, mspID), d)
	if err != nil || found {
		return d, found, err
	}
	found, err = t.getJSON(legacyDatasetKey(sha256), d)
	if err != nil || !found || d.Owner != mspID {
		return nil, false, err
	}
	return d, true, nil
}

// GetDataset returns one claim on a dataset, in the shape of 1.2.0 (one
// Dataset): the claim of the caller's organisation when it has one,
// otherwise that of the organisation first in MSP-id order (its owner).
// GetDatasetClaims returns every claim. Any role may read datasets.
func (c *Contract) GetDataset(ctx contractapi.TransactionContextInterface, sha256 string) (*Dataset, error) {
	t, err := begin(ctx, "GetDataset", allRoles()...)
	if err != nil {
		return nil, err
	}
	if err := validateDigest("sha256", sha256); err != nil {
		return nil, err
	}
	claims, err := t.datasetClaims(sha256)
	if err != nil {
		return nil, err
	}
	for i := range claims {
		if claims[i].Owner == t.caller.mspID {
			return &claims[i], nil
		}
	}
	return &claims[0], nil
}

// GetDatasetClaims returns every organisation's claim on a dataset, sorted
// by organisation (owner). Any role may read datasets.
func (c *Contract) GetDatasetClaims(ctx contractapi.TransactionContextInterface, sha256 string) ([]Dataset, error) {
	t, err := begin(ctx, "GetDatasetClaims", allRoles()...)
	if err != nil {
		return nil, err
	}
	if err := validateDigest("sha256", sha256); err != nil {
		return nil, err
	}
	return t.datasetClaims(sha256)
}

// datasetClaims lists the claims on a dataset sorted by owner (a range
// query: evaluate functions only); NOT_FOUND when there is none.
func (t *tx) datasetClaims(sha256 string) ([]Dataset, error) {
	// The partial key [sha256] covers dataset[sha256, mspId] and the
	// dataset[sha256] of a record registered before 1.3.0.
	it, err := t.stub.GetStateByPartialCompositeKey(objectDataset, []string{sha256})
	if err != nil {
		return nil, ledgerError("list", objectDataset, err)
	}
	defer it.Close()
	claims := []Dataset{}
	for it.HasNext() {
		kv, err := it.Next()
		if err != nil {
			return nil, ledgerError("list", objectDataset, err)
		}
		var d Dataset
		if err := json.Unmarshal(kv.GetValue(), &d); err != nil {
			return nil, ledgerError("decode", kv.GetKey(), err)
		}
		claims = append(claims, d)
	}
	if len(claims) == 0 {
		return nil, notFound("dataset %s", sha256)
	}
	sort.Slice(claims, func(i, j int) bool {
		a, b := claims[i], claims[j]
		return a.Owner < b.Owner || (a.Owner == b.Owner && a.RegisteredTxID < b.RegisteredTxID)
	})
	return claims, nil
}

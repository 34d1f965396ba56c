package registry

import (
	"bytes"
	"encoding/json"
	"slices"
	"strings"

	"github.com/hyperledger/fabric-contract-api-go/v2/contractapi"
)

// RegisterModelVersion validates a model version (a JSON ModelVersionInput)
// and stores it as REGISTERED, owned by the caller's organisation. An
// identical re-registration returns the stored record; the same name and
// version with other content is a CONFLICT. Emits ModelVersionRegistered.
func (c *Contract) RegisterModelVersion(ctx contractapi.TransactionContextInterface, record string) (*ModelVersion, error) {
	t, err := begin(ctx, "RegisterModelVersion", RoleDataScientist, RoleRegistrar)
	if err != nil {
		return nil, err
	}
	in, err := parseModelVersion([]byte(record))
	if err != nil {
		return nil, err
	}
	m, modelExists, err := t.model(in.Name)
	if err != nil {
		return nil, err
	}
	if modelExists && m.Owner != t.caller.mspID {
		return nil, notAuthorized("model %q belongs to another organisation; %s may not register versions of it",
			in.Name, t.caller.mspID)
	}
	stored, found, err := t.version(in.Name, in.Version)
	if err != nil {
		return nil, err
	}
	if found {
		if err := sameRegistration(stored, in); err != nil {
			return nil, err
		}
		return stored, nil
	}
	s, err := t.settings()
	if err != nil {
		return nil, err
	}
	datasets, err := t.datasetRefs(in.Datasets, s)
	if err != nil {
		return nil, err
	}
	if !modelExists {
		m = &Model{Grants: []string{}, LastChange: t.change(), Name: in.Name, Owner: t.caller.mspID,
			RegisteredAt: t.time, RegisteredTxID: t.id}
		if err := t.putJSON(modelKey(in.Name), m); err != nil {
			return nil, err
		}
	}
	v := t.newModelVersion(in, datasets, m.Owner, s.ApprovalOrgs)
	if err := t.putJSON(modelVersionKey(v.Name, v.Version), v); err != nil {
		return nil, err
	}
	if err := t.putJSON(digestKey(v.ModelDigest, v.Name, v.Version), ModelRef{Name: v.Name, Version: v.Version}); err != nil {
		return nil, err
	}
	if err := t.emitVersion(EventModelVersionRegistered, v, ""); err != nil {
		return nil, err
	}
	return v, nil
}

// sameRegistration returns nil when in holds what stored was registered
// with, and a CONFLICT otherwise.
func sameRegistration(stored *ModelVersion, in *ModelVersionInput) error {
	if stored.ModelDigest != in.ModelDigest {
		return conflict("model %q version %q is already registered with another digest", in.Name, in.Version)
	}
	was, errWas := canonicalJSON(stored.input())
	now, errNow := canonicalJSON(in)
	if errWas != nil || errNow != nil || !bytes.Equal(was, now) {
		return conflict("model %q version %q is already registered with other content", in.Name, in.Version)
	}
	return nil
}

// input returns the fields of v that RegisterModelVersion took.
func (v *ModelVersion) input() *ModelVersionInput {
	datasets := make([]DatasetRefInput, len(v.Datasets))
	for i, d := range v.Datasets {
		datasets[i] = DatasetRefInput{Name: d.Name, SHA256: d.SHA256, Source: d.Source}
	}
	return &ModelVersionInput{
		Datasets: datasets, Framework: v.Framework, Libraries: v.Libraries, Manifest: v.Manifest,
		ManifestDigest: v.ManifestDigest, Metrics: v.Metrics, MLflow: v.MLflow, ModelDigest: v.ModelDigest,
		Name: v.Name, Params: v.Params, Storage: v.Storage, Version: v.Version,
	}
}

// datasetRefs flags the datasets the registrant's organisation has not
// claimed as the reference describes them (no claim on the sha256, or a
// claim with another name or source), or refuses them when strictDatasets
// is on.
func (t *tx) datasetRefs(refs []DatasetRefInput, s *Settings) ([]DatasetRef, error) {
	out := make([]DatasetRef, len(refs))
	for i, ref := range refs {
		claim, claimed, err := t.datasetClaim(ref.SHA256, t.caller.mspID)
		if err != nil {
			return nil, err
		}
		var differ []string
		if claimed { // the schema summary is not part of a reference: the claim's own never differs
			differ = claim.differences(&DatasetInput{Name: ref.Name, SchemaSummary: claim.SchemaSummary, SHA256: ref.SHA256, Source: ref.Source})
		}
		registered := claimed && len(differ) == 0
		if !registered && s.StrictDatasets {
			if !claimed {
				return nil, invalidf("datasets", "dataset %s is not registered by %s (strictDatasets is on)", ref.SHA256, t.caller.mspID)
			}
			return nil, invalidf("datasets", "dataset %s is registered by %s with another description (differs in %s; strictDatasets is on)",
				ref.SHA256, t.caller.mspID, strings.Join(differ, ", "))
		}
		out[i] = DatasetRef{Name: ref.Name, Registered: registered, SHA256: ref.SHA256, Source: ref.Source}
	}
	return out, nil
}

// newModelVersion builds a REGISTERED version; approvalOrgs is the approval
// set at its registration, recorded in it.
func (t *tx) newModelVersion(in *ModelVersionInput, datasets []DatasetRef, owner string, approvalOrgs []string) *ModelVersion {
	return &ModelVersion{
		ApprovalOrgs:   approvalOrgs,
		Approvals:      []Approval{},
		Datasets:       datasets,
		Deployments:    []Deployment{},
		Framework:      in.Framework,
		LastChange:     t.change(),
		Libraries:      in.Libraries,
		Manifest:       in.Manifest,
		ManifestDigest: in.ManifestDigest,
		Metrics:        in.Metrics,
		MLflow:         in.MLflow,
		ModelDigest:    in.ModelDigest,
		Name:           in.Name,
		Owner:          owner,
		Params:         in.Params,
		RegisteredAt:   t.time,
		RegisteredTxID: t.id,
		Registrant:     t.caller.actor(),
		Status:         StatusRegistered,
		Storage:        in.Storage,
		Version:        in.Version,
	}
}

// saveVersion stores a changed version and emits its event.
func (t *tx) saveVersion(event string, v *ModelVersion, environment string) error {
	v.LastChange = t.change()
	if err := t.putJSON(modelVersionKey(v.Name, v.Version), v); err != nil {
		return err
	}
	return t.emitVersion(event, v, environment)
}

func (t *tx) emitVersion(event string, v *ModelVersion, environment string) error {
	return t.emit(event, t.versionEvent(v, environment))
}

// versionEvent is the payload of a ModelVersion* event of this transaction.
func (t *tx) versionEvent(v *ModelVersion, environment string) ModelVersionEvent {
	return ModelVersionEvent{Environment: environment, MSPID: t.caller.mspID, Name: v.Name,
		Status: v.Status, TxID: t.id, Version: v.Version}
}

// GetModelVersion returns a model version the caller may read.
func (c *Contract) GetModelVersion(ctx contractapi.TransactionContextInterface, name, version string) (*ModelVersion, error) {
	t, err := begin(ctx, "GetModelVersion", allRoles()...)
	if err != nil {
		return nil, err
	}
	if err := validateNameAndVersion(name, version); err != nil {
		return nil, err
	}
	v, _, _, err := t.readableVersion(name, version)
	return v, err
}

// GetModel returns a registered model (its owner organisation, read
// grants and policy) the caller may read. Approvers and evaluators of an
// organisation in the approval set may read it too: the policy gates the
// versions they review.
func (c *Contract) GetModel(ctx contractapi.TransactionContextInterface, name string) (*Model, error) {
	t, err := begin(ctx, "GetModel", allRoles()...)
	if err != nil {
		return nil, err
	}
	if err := validateModelName("name", name); err != nil {
		return nil, err
	}
	if t.caller.isReviewer() {
		m, found, err := t.model(name)
		if err != nil {
			return nil, err
		}
		s, err := t.settings()
		if err != nil {
			return nil, err
		}
		if found && slices.Contains(s.ApprovalOrgs, t.caller.mspID) {
			return m, nil
		}
	}
	return t.readableModel(name)
}

func validateNameAndVersion(name, version string) error {
	if err := validateModelName("name", name); err != nil {
		return err
	}
	return validateVersion("version", version)
}

// ListModelVersions returns a page of the versions of a model (of every
// model when name is empty) that the caller may read, in name then numeric
// version order. Pass the returned bookmark to get the next page.
//
// Nothing in the answer names a record the caller may not read: the
// contract scans the ledger in chunks, leaves out the unreadable records and
// keeps scanning until the page is full or the ledger ends; the bookmark is
// the key of the last record returned (the next page starts after it), or
// "" when no readable record follows; fetched is the number of records
// returned. A named model that does not exist, or of which the caller may
// read no version, is NOT_FOUND (for an approver who may read only some of
// its versions: no readable version after the bookmark).
func (c *Contract) ListModelVersions(ctx contractapi.TransactionContextInterface, name string, pageSize int32, bookmark string) (*ModelVersionPage, error) {
	t, err := begin(ctx, "ListModelVersions", allRoles()...)
	if err != nil {
		return nil, err
	}
	var attributes []string
	if name != "" {
		if err := validateModelName("name", name); err != nil {
			return nil, err
		}
		attributes = []string{name}
	}
	if err := validatePageSize(pageSize); err != nil {
		return nil, err
	}
	if err := validateBookmark(bookmark, objectModelVersion, attributes); err != nil {
		return nil, err
	}
	s, err := t.settings()
	if err != nil {
		return nil, err
	}
	// partial: the caller may read only some versions of the named model
	// (an approver's right to the versions awaiting its decision).
	partial := false
	if name != "" {
		m, found, err := t.model(name)
		if err != nil {
			return nil, err
		}
		if !found || (!t.caller.canReadModel(m) && !t.caller.isDeciding(s)) {
			return nil, notFound("model %q", name)
		}
		partial = !t.caller.canReadModel(m)
	}
	page, err := t.listVersions(attributes, pageSize, bookmark, s)
	if err != nil {
		return nil, err
	}
	if partial && len(page.Records) == 0 {
		return nil, notFound("model %q", name)
	}
	return page, nil
}

// scanChunk is the page size of the ledger queries after the first one of
// a listing.
const scanChunk = 1000

// listVersions collects up to pageSize versions the caller may read, after
// the record keyed after (from the start when after is empty). It reads the
// ledger in chunks until the page is full and one more readable record is
// found (then the bookmark is the key of the last record of the page), or
// the ledger ends (then the bookmark is empty).
func (t *tx) listVersions(attributes []string, pageSize int32, after string, s *Settings) (*ModelVersionPage, error) {
	models := map[string]*Model{}
	page := &ModelVersionPage{Records: []ModelVersion{}}
	last, more := "", false
	visit := func(key string, v *ModelVersion) (bool, error) {
		if key == after { // the last record of the previous page
			return true, nil
		}
		m, err := t.cachedModel(models, v.Name)
		if err != nil {
			return false, err
		}
		if !t.caller.canReadVersion(m, v, s) {
			return true, nil
		}
		if len(page.Records) == int(pageSize) {
			more = true
			return false, nil
		}
		page.Records, last = append(page.Records, *v), key
		return true, nil
	}
	// The first chunk holds the bookmarked record (skipped), the page and
	// one record more, so that a caller who may read every record needs one
	// query per page.
	start, chunk := after, pageSize+1
	if after != "" {
		chunk++
	}
	for {
		next, err := t.scanVersions(attributes, chunk, start, visit)
		if err != nil {
			return nil, err
		}
		if more || next == "" || next == start { // the last test guards against a ledger that does not advance
			break
		}
		start, chunk = next, scanChunk
	}
	if more {
		page.Bookmark = last
	}
	page.Fetched = int32(len(page.Records))
	return page, nil
}

// scanVersions runs one paginated query and passes each version to visit
// until visit returns false. It returns the ledger's bookmark (the key the
// next chunk starts at, empty at the end), or "" when visit stopped.
func (t *tx) scanVersions(attributes []string, chunk int32, start string, visit func(string, *ModelVersion) (bool, error)) (string, error) {
	it, meta, err := t.stub.GetStateByPartialCompositeKeyWithPagination(objectModelVersion, attributes, chunk, start)
	if err != nil {
		return "", ledgerError("list", objectModelVersion, err)
	}
	defer it.Close()
	for it.HasNext() {
		kv, err := it.Next()
		if err != nil {
			return "", ledgerError("list", objectModelVersion, err)
		}
		var v ModelVersion
		if err := json.Unmarshal(kv.GetValue(), &v); err != nil {
			return "", ledgerError("decode", kv.GetKey(), err)
		}
		goOn, err := visit(kv.GetKey(), &v)
		if err != nil || !goOn {
			return "", err
		}
	}
	return meta.GetBookmark(), nil
}

func (t *tx) cachedModel(cache map[string]*Model, name string) (*Model, error) {
	if m, ok := cache[name]; ok {
		return m, nil
	}
	m, found, err := t.model(name)
	if err != nil {
		return nil, err
	}
	if !found {
		return nil, ledgerError("read", modelKey(name), errMissingModel)
	}
	cache[name] = m
	return m, nil
}

// validateBookmark refuses a bookmark that does not belong to the listing
// (a bookmark is a ledger key of the listing: for ListModelVersions the key
// of the last record of the previous page, for ListAccessLog the key the
// next page starts at).
func validateBookmark(bookmark, object string, attributes []string) error {
	prefix := compositeKey(object, attributes...)
	if bookmark != "" && (len(bookmark) < len(prefix) || bookmark[:len(prefix)] != prefix) {
		return invalid("bookmark", "does not belong to this listing")
	}
	return nil
}

// FindByDigest returns the versions with the given model digest that the
// caller may read, in name then numeric version order.
func (c *Contract) FindByDigest(ctx contractapi.TransactionContextInterface, modelDigest string) ([]ModelRef, error) {
	t, err := begin(ctx, "FindByDigest", allRoles()...)
	if err != nil {
		return nil, err
	}
	if err := validateDigest("modelDigest", modelDigest); err != nil {
		return nil, err
	}
	it, err := t.stub.GetStateByPartialCompositeKey(objectDigest, []string{modelDigest})
	if err != nil {
		return nil, ledgerError("list", objectDigest, err)
	}
	defer it.Close()
	s, err := t.settings()
	if err != nil {
		return nil, err
	}
	models := map[string]*Model{}
	refs := []ModelRef{}
	for it.HasNext() {
		kv, err := it.Next()
		if err != nil {
			return nil, ledgerError("list", objectDigest, err)
		}
		var ref ModelRef
		if err := json.Unmarshal(kv.GetValue(), &ref); err != nil {
			return nil, ledgerError("decode", kv.GetKey(), err)
		}
		v, found, err := t.version(ref.Name, ref.Version)
		if err != nil {
			return nil, err
		}
		if !found {
			return nil, ledgerError("read", modelVersionKey(ref.Name, ref.Version), errMissingVersion)
		}
		m, err := t.cachedModel(models, ref.Name)
		if err != nil {
			return nil, err
		}
		if t.caller.canReadVersion(m, v, s) {
			refs = append(refs, ref)
		}
	}
	return refs, nil
}

// GetHistory returns every change of a version the caller may read, oldest
// first in commit order: transaction id and time (the client's transaction
// timestamp), and, from the record's lastChange, the action (the function
// that made it), the actor and the resulting status.
func (c *Contract) GetHistory(ctx contractapi.TransactionContextInterface, name, version string) ([]HistoryEntry, error) {
	t, err := begin(ctx, "GetHistory", allRoles()...)
	if err != nil {
		return nil, err
	}
	if err := validateNameAndVersion(name, version); err != nil {
		return nil, err
	}
	if _, _, _, err := t.readableVersion(name, version); err != nil {
		return nil, err
	}
	key := modelVersionKey(name, version)
	it, err := t.stub.GetHistoryForKey(key)
	if err != nil {
		return nil, ledgerError("read history of", key, err)
	}
	defer it.Close()
	entries := []HistoryEntry{}
	for it.HasNext() {
		km, err := it.Next()
		if err != nil {
			return nil, ledgerError("read history of", key, err)
		}
		entry := HistoryEntry{IsDelete: km.GetIsDelete(), Time: formatTimestamp(km.GetTimestamp()), TxID: km.GetTxId()}
		if !entry.IsDelete {
			var v ModelVersion
			if err := json.Unmarshal(km.GetValue(), &v); err != nil {
				return nil, ledgerError("decode history of", key, err)
			}
			actor := v.LastChange.Actor
			entry.Action, entry.Actor, entry.Status = v.LastChange.Action, &actor, v.Status
		}
		entries = append(entries, entry)
	}
	// Fabric 2.x returns a key's history newest first, in commit order
	// (block, then transaction within the block); reversing it gives commit
	// order oldest first. The times are the timestamps the submitting
	// clients asserted, which peers do not check, so they are not sorted on.
	slices.Reverse(entries)
	return entries, nil
}

package registry

import (
	"encoding/json"

	"github.com/hyperledger/fabric-contract-api-go/v2/contractapi"
)

// deniedReason is the same whether the version does not exist or the caller
// may not read it, so that a denial tells nothing about the version.
const deniedReason = "model version not found or no read access"

// AuthorizeArtifactAccess checks that the caller may read a version and,
// if the version exists, appends an entry to its access log either way.
// When granted it returns the storage pointer, the digests and the status;
// when denied, the reason (the same whether the version does not exist or
// the caller may not read it). Emits ArtifactAccess when it logs. The entry
// is recorded only when the call is submitted: an evaluate call of it gets
// the same answer and logs nothing (and the read functions return the
// storage pointer too), so the log holds the accesses made through
// ModelLedger's tools, not every possible one.
//
// Each entry takes the next number of its version's sequence, a counter
// read and written by the same transaction, so the log lists in commit
// order: two concurrent accesses to one version conflict (Fabric commits
// one, the other fails MVCC_READ_CONFLICT and must be resubmitted).
func (c *Contract) AuthorizeArtifactAccess(ctx contractapi.TransactionContextInterface, name, version, purpose string) (*ArtifactAccess, error) {
	t, err := begin(ctx, "AuthorizeArtifactAccess", allRoles()...)
	if err != nil {
		return nil, err
	}
	if err := validateNameAndVersion(name, version); err != nil {
		return nil, err
	}
	if err := validateNote("purpose", purpose, maxNoteChars, false); err != nil {
		return nil, err
	}
	result := &ArtifactAccess{Decision: AccessDenied, Name: name, Purpose: purpose, Reason: deniedReason, TxID: t.id, Version: version}
	v, found, err := t.version(name, version)
	if err != nil {
		return nil, err
	}
	if !found { // no entry for a version that does not exist
		return result, nil
	}
	_, _, readable, err := t.mayRead(v)
	if err != nil {
		return nil, err
	}
	if readable {
		storage := v.Storage
		result.Decision, result.ManifestDigest, result.ModelDigest, result.Reason = AccessGranted, v.ManifestDigest, v.ModelDigest, ""
		result.Status, result.Storage = v.Status, &storage
	}
	sequence, err := t.nextAccessSequence(name, version)
	if err != nil {
		return nil, err
	}
	entry := AccessLogEntry{Actor: t.caller.actor(), Decision: result.Decision, Name: name, Purpose: purpose,
		Reason: result.Reason, Time: t.time, TxID: t.id, Version: version}
	if err := t.putJSON(accessKey(name, version, sequence), entry); err != nil {
		return nil, err
	}
	event := ArtifactAccessEvent{Decision: result.Decision, MSPID: t.caller.mspID, Name: name, TxID: t.id, Version: version}
	if err := t.emit(EventArtifactAccess, event); err != nil {
		return nil, err
	}
	return result, nil
}

// nextAccessSequence reads the version's access-log counter, counts one
// more entry and stores the new count, which it returns (1 for the first
// entry).
func (t *tx) nextAccessSequence(name, version string) (int64, error) {
	key := accessSequenceKey(name, version)
	var count int64
	if _, err := t.getJSON(key, &count); err != nil {
		return 0, err
	}
	count++
	if err := t.putJSON(key, count); err != nil {
		return 0, err
	}
	return count, nil
}

// ListAccessLog returns a page of the access-log entries of a version (of
// every version of the model when version is empty), by version, then in
// commit order (entries written before 1.3.0 first, in the order of their
// transaction timestamps).
// Auditors may read every log; other roles only the logs of their
// organisation's models.
func (c *Contract) ListAccessLog(ctx contractapi.TransactionContextInterface, name, version string, pageSize int32, bookmark string) (*AccessLogPage, error) {
	t, err := begin(ctx, "ListAccessLog", allRoles()...)
	if err != nil {
		return nil, err
	}
	attributes, err := accessLogAttributes(name, version)
	if err != nil {
		return nil, err
	}
	if err := validatePageSize(pageSize); err != nil {
		return nil, err
	}
	if err := validateBookmark(bookmark, objectAccess, attributes); err != nil {
		return nil, err
	}
	if t.caller.role != RoleAuditor {
		m, err := t.readableModel(name)
		if err != nil {
			return nil, err
		}
		if m.Owner != t.caller.mspID {
			return nil, notAuthorized("only auditors and the owner organisation of model %q may read its access log", name)
		}
	}
	return t.listAccessLog(attributes, pageSize, bookmark)
}

func accessLogAttributes(name, version string) ([]string, error) {
	if err := validateModelName("name", name); err != nil {
		return nil, err
	}
	if version == "" {
		return []string{name}, nil
	}
	if err := validateVersion("version", version); err != nil {
		return nil, err
	}
	return []string{name, padVersion(version)}, nil
}

func (t *tx) listAccessLog(attributes []string, pageSize int32, bookmark string) (*AccessLogPage, error) {
	it, meta, err := t.stub.GetStateByPartialCompositeKeyWithPagination(objectAccess, attributes, pageSize, bookmark)
	if err != nil {
		return nil, ledgerError("list", objectAccess, err)
	}
	defer it.Close()
	page := &AccessLogPage{Bookmark: meta.GetBookmark(), Fetched: meta.GetFetchedRecordsCount(), Records: []AccessLogEntry{}}
	for it.HasNext() {
		kv, err := it.Next()
		if err != nil {
			return nil, ledgerError("list", objectAccess, err)
		}
		var entry AccessLogEntry
		if err := json.Unmarshal(kv.GetValue(), &entry); err != nil {
			return nil, ledgerError("decode", kv.GetKey(), err)
		}
		page.Records = append(page.Records, entry)
	}
	return page, nil
}

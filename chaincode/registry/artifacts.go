package registry

import (
	"encoding/json"
	"slices"

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
// The entry gets a key of its own, accessentry[name, version, txId], and
// the transaction writes the version's head key accesshead[name, version]
// without reading it: no access reads a key that another access writes, so
// concurrent accesses to a version never conflict (neither does a denied
// access with a granted one). ListAccessLog lists the entries in the order
// the head's writes were committed.
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
	entry := AccessLogEntry{Actor: t.caller.actor(), Decision: result.Decision, Name: name, Purpose: purpose,
		Reason: result.Reason, Time: t.time, TxID: t.id, Version: version}
	if err := t.putJSON(accessEntryKey(name, version, t.id), entry); err != nil {
		return nil, err
	}
	if err := t.putJSON(accessHeadKey(name, padVersion(version)), t.id); err != nil {
		return nil, err
	}
	event := ArtifactAccessEvent{Decision: result.Decision, MSPID: t.caller.mspID, Name: name, TxID: t.id, Version: version}
	if err := t.emit(EventArtifactAccess, event); err != nil {
		return nil, err
	}
	return result, nil
}

// ListAccessLog returns a page of the access-log entries of a version (of
// every version of the model when version is empty), by version, then in
// commit order: first the entries of the older layouts (1.2.0's, in the
// order of their transaction timestamps, then those an unreleased build of
// 1.3.0 numbered), then the entries since, in the order the version's head
// key was written (its history). The bookmark is the key of the first
// entry of the next page. Auditors may read every log; other roles only the
// logs of their organisation's models.
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
	start, err := t.accessBookmark(attributes, bookmark)
	if err != nil {
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
	return t.listAccessLog(attributes, pageSize, start)
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

// accessPosition is where a page of the access log starts: at the version
// (padded) and, within it, at an entry of the older layouts (its key) or at
// an entry of the current one (its txId). The zero position is the start.
type accessPosition struct {
	version string
	oldKey  string
	txID    string
}

// accessBookmark reads a bookmark of ListAccessLog: the key of an entry of
// the listing, of either layout.
func (t *tx) accessBookmark(attributes []string, bookmark string) (accessPosition, error) {
	if bookmark == "" {
		return accessPosition{}, nil
	}
	for _, object := range []string{objectAccess, objectAccessEntry} {
		if validateBookmark(bookmark, object, attributes) != nil {
			continue
		}
		_, keyAttributes, err := t.stub.SplitCompositeKey(bookmark)
		if err != nil || len(keyAttributes) < 3 {
			break
		}
		if object == objectAccess {
			return accessPosition{version: keyAttributes[1], oldKey: bookmark}, nil
		}
		if len(keyAttributes) == 3 {
			return accessPosition{version: keyAttributes[1], txID: keyAttributes[2]}, nil
		}
	}
	return accessPosition{}, invalid("bookmark", "does not belong to this listing")
}

// accessItem is an entry of the listing with its key.
type accessItem struct {
	key     string
	version string // as in keys (padded)
	entry   AccessLogEntry
}

func (t *tx) listAccessLog(attributes []string, pageSize int32, start accessPosition) (*AccessLogPage, error) {
	heads, err := t.accessHeads(attributes, start.version)
	if err != nil {
		return nil, err
	}
	oldStart := start.oldKey
	if oldStart == "" && start.version != "" {
		oldStart = compositeKey(objectAccess, attributes[0], start.version)
	}
	old := &oldAccessEntries{t: t, attributes: attributes, next: oldStart, chunk: pageSize + 1}
	want := int(pageSize) + 1 // one more than the page: its key is the bookmark
	var items []accessItem
	for len(items) < want {
		next, err := old.peek()
		if err != nil {
			return nil, err
		}
		var version string
		switch {
		case next != nil && (len(heads) == 0 || next.version <= heads[0]):
			version = next.version
		case len(heads) > 0:
			version = heads[0]
		default:
			return accessPage(items, want), nil
		}
		// The older layouts' entries of the version, unless the page starts
		// at an entry of the current layout (after them).
		for next != nil && next.version == version && len(items) < want {
			if start.txID == "" || version != start.version {
				items = append(items, *next)
			}
			old.pop()
			if next, err = old.peek(); err != nil {
				return nil, err
			}
		}
		if len(items) < want && len(heads) > 0 && heads[0] == version {
			from := ""
			if version == start.version {
				from = start.txID
			}
			entries, err := t.accessEntries(attributes[0], version, from, want-len(items))
			if err != nil {
				return nil, err
			}
			items, heads = append(items, entries...), heads[1:]
		}
	}
	return accessPage(items, want), nil
}

// accessPage makes the page of items, of which there are want (one more
// than the page: its key is the bookmark) or fewer (the last page).
func accessPage(items []accessItem, want int) *AccessLogPage {
	page := &AccessLogPage{Records: []AccessLogEntry{}}
	if len(items) == want {
		page.Bookmark, items = items[want-1].key, items[:want-1]
	}
	for _, item := range items {
		page.Records = append(page.Records, item.entry)
	}
	page.Fetched = int32(len(page.Records))
	return page
}

// accessHeads returns the versions (padded) of the listing that have
// entries of the current layout, from version from on, in order.
func (t *tx) accessHeads(attributes []string, from string) ([]string, error) {
	it, err := t.stub.GetStateByPartialCompositeKey(objectAccessHead, attributes)
	if err != nil {
		return nil, ledgerError("list", objectAccessHead, err)
	}
	defer it.Close()
	var versions []string
	for it.HasNext() {
		kv, err := it.Next()
		if err != nil {
			return nil, ledgerError("list", objectAccessHead, err)
		}
		_, keyAttributes, err := t.stub.SplitCompositeKey(kv.GetKey())
		if err != nil || len(keyAttributes) != 2 {
			return nil, ledgerError("decode", kv.GetKey(), errBadKey)
		}
		if keyAttributes[1] >= from {
			versions = append(versions, keyAttributes[1])
		}
	}
	return versions, nil
}

// accessEntries returns up to limit entries of the current layout of a
// version, in commit order, from the entry of transaction from on (from
// the first when from is empty). The order is that of the writes of the
// version's head key, which Fabric's history returns newest first by block
// and transaction within the block; GetHistoryForKey is run by this
// evaluate function only, never by a write.
func (t *tx) accessEntries(name, paddedVersion, from string, limit int) ([]accessItem, error) {
	head := accessHeadKey(name, paddedVersion)
	it, err := t.stub.GetHistoryForKey(head)
	if err != nil {
		return nil, ledgerError("read history of", head, err)
	}
	defer it.Close()
	var txIDs []string
	for it.HasNext() {
		km, err := it.Next()
		if err != nil {
			return nil, ledgerError("read history of", head, err)
		}
		txIDs = append(txIDs, km.GetTxId())
	}
	slices.Reverse(txIDs)
	first := 0
	if from != "" {
		if first = slices.Index(txIDs, from); first < 0 {
			return nil, invalid("bookmark", "does not belong to this listing")
		}
	}
	var items []accessItem
	for _, txID := range txIDs[first:] {
		if len(items) == limit {
			break
		}
		key := compositeKey(objectAccessEntry, name, paddedVersion, txID)
		item := accessItem{key: key, version: paddedVersion}
		found, err := t.getJSON(key, &item.entry)
		if err != nil {
			return nil, err
		}
		if !found {
			return nil, ledgerError("read", key, errMissingAccessEntry)
		}
		items = append(items, item)
	}
	return items, nil
}

// oldAccessEntries reads the entries of the older layouts of the listing in
// key order, a chunk at a time, from the key next on.
type oldAccessEntries struct {
	t          *tx
	attributes []string
	next       string // the key the next chunk starts at
	chunk      int32
	buffer     []accessItem
	done       bool
}

// peek returns the next entry without consuming it; nil at the end.
func (o *oldAccessEntries) peek() (*accessItem, error) {
	if len(o.buffer) == 0 && !o.done {
		if err := o.fetch(); err != nil {
			return nil, err
		}
	}
	if len(o.buffer) == 0 {
		return nil, nil
	}
	return &o.buffer[0], nil
}

func (o *oldAccessEntries) pop() {
	o.buffer = o.buffer[1:]
}

func (o *oldAccessEntries) fetch() error {
	started := o.next
	it, meta, err := o.t.stub.GetStateByPartialCompositeKeyWithPagination(objectAccess, o.attributes, o.chunk, o.next)
	if err != nil {
		return ledgerError("list", objectAccess, err)
	}
	defer it.Close()
	for it.HasNext() {
		kv, err := it.Next()
		if err != nil {
			return ledgerError("list", objectAccess, err)
		}
		_, keyAttributes, err := o.t.stub.SplitCompositeKey(kv.GetKey())
		if err != nil || len(keyAttributes) < 3 {
			return ledgerError("decode", kv.GetKey(), errBadKey)
		}
		item := accessItem{key: kv.GetKey(), version: keyAttributes[1]}
		if err := json.Unmarshal(kv.GetValue(), &item.entry); err != nil {
			return ledgerError("decode", kv.GetKey(), err)
		}
		o.buffer = append(o.buffer, item)
	}
	o.next = meta.GetBookmark()
	o.done = o.next == "" || o.next == started // the last test guards against a ledger that does not advance
	return nil
}

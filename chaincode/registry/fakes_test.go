package registry

import (
	"crypto/x509"
	"errors"
	"fmt"
	"reflect"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/hyperledger/fabric-chaincode-go/v2/pkg/cid"
	"github.com/hyperledger/fabric-chaincode-go/v2/shim"
	"github.com/hyperledger/fabric-contract-api-go/v2/contractapi"
	"github.com/hyperledger/fabric-protos-go-apiv2/ledger/queryresult"
	"github.com/hyperledger/fabric-protos-go-apiv2/peer"
	"google.golang.org/protobuf/types/known/timestamppb"
)

// This file holds hand-written fakes of the Fabric interfaces the contract
// uses, and a harness that runs each contract call as one transaction.

// fakeEvent is an event a committed transaction emitted.
type fakeEvent struct {
	Name    string
	Payload string
}

// fakeLedger is the committed world state, its history and the events of
// committed transactions.
type fakeLedger struct {
	t       *testing.T
	state   map[string][]byte
	history map[string][]*queryresult.KeyModification
	events  []fakeEvent
	txCount int
	// failKeys makes GetState of these keys fail (ledger errors).
	failKeys map[string]bool
	// failRange makes range, history and pagination queries fail.
	failRange bool
	// failWrites makes PutState and SetEvent fail.
	failWrites bool
	// nextTime, when set, is the timestamp the client of the next
	// transaction asserts (then it is cleared); otherwise each transaction
	// is one second after the previous one.
	nextTime *time.Time
}

func newFakeLedger(t *testing.T) *fakeLedger {
	return &fakeLedger{
		t:        t,
		state:    map[string][]byte{},
		history:  map[string][]*queryresult.KeyModification{},
		failKeys: map[string]bool{},
	}
}

// snapshot copies the committed state, to compare before and after a call.
func (l *fakeLedger) snapshot() map[string]string {
	out := make(map[string]string, len(l.state))
	for k, v := range l.state {
		out[k] = string(v)
	}
	return out
}

// fakeStub is the stub of one transaction. Writes are buffered and applied
// by commit only if the function succeeds. Range, history and pagination
// queries fail the test when the function is a submit (write) function.
type fakeStub struct {
	shim.ChaincodeStubInterface // unimplemented methods panic

	ledger   *fakeLedger
	function string
	submit   bool
	txID     string
	ts       *timestamppb.Timestamp
	writes   map[string][]byte
	deletes  map[string]bool
	events   []fakeEvent
	creator  []byte          // for cid, in tests that go through contractapi
	args     []string        // function and parameters, idem
	reads    int             // state reads and queries
	queries  int             // range, history and pagination queries
	readKeys map[string]bool // the keys GetState read: the read set Fabric validates
}

func (l *fakeLedger) newStub(function string, submit bool) *fakeStub {
	l.txCount++
	at := time.Date(2026, 3, 1, 10, 0, 0, 123456789, time.UTC).Add(time.Duration(l.txCount) * time.Second)
	if l.nextTime != nil {
		at, l.nextTime = *l.nextTime, nil
	}
	return &fakeStub{
		ledger:   l,
		function: function,
		submit:   submit,
		txID:     fmt.Sprintf("tx%04d", l.txCount),
		ts:       timestamppb.New(at),
		writes:   map[string][]byte{},
		deletes:  map[string]bool{},
		readKeys: map[string]bool{},
	}
}

func (s *fakeStub) GetTxID() string      { return s.txID }
func (s *fakeStub) GetChannelID() string { return "modelledger" }

func (s *fakeStub) GetTxTimestamp() (*timestamppb.Timestamp, error) { return s.ts, nil }

func (s *fakeStub) GetCreator() ([]byte, error) { return s.creator, nil }

func (s *fakeStub) GetFunctionAndParameters() (string, []string) {
	if len(s.args) == 0 {
		return "", nil
	}
	return s.args[0], s.args[1:]
}

// GetState returns the committed value: like Fabric, a transaction does not
// read its own writes.
func (s *fakeStub) GetState(key string) ([]byte, error) {
	s.reads++
	s.readKeys[key] = true
	if key == "" {
		return nil, errors.New("empty key")
	}
	if s.ledger.failKeys[key] {
		return nil, errors.New("injected read failure")
	}
	return s.ledger.state[key], nil
}

func (s *fakeStub) PutState(key string, value []byte) error {
	if !s.submit {
		s.ledger.t.Errorf("evaluate function %s wrote key %q", s.function, key)
	}
	if key == "" || len(value) == 0 || s.ledger.failWrites {
		return errors.New("injected write failure")
	}
	s.writes[key] = append([]byte(nil), value...)
	delete(s.deletes, key)
	return nil
}

func (s *fakeStub) DelState(key string) error {
	if !s.submit {
		s.ledger.t.Errorf("evaluate function %s deleted key %q", s.function, key)
	}
	delete(s.writes, key)
	s.deletes[key] = true
	return nil
}

func (s *fakeStub) SetEvent(name string, payload []byte) error {
	if s.ledger.failWrites {
		return errors.New("injected event failure")
	}
	s.events = append(s.events, fakeEvent{Name: name, Payload: string(payload)})
	return nil
}

func (s *fakeStub) CreateCompositeKey(objectType string, attributes []string) (string, error) {
	return shim.CreateCompositeKey(objectType, attributes)
}

func (s *fakeStub) SplitCompositeKey(key string) (string, []string, error) {
	parts := strings.Split(strings.TrimSuffix(strings.TrimPrefix(key, "\x00"), "\x00"), "\x00")
	return parts[0], parts[1:], nil
}

// queryAllowed fails the test when a submit function runs a query that
// Fabric does not re-validate (phantom reads) or that is read-only.
func (s *fakeStub) queryAllowed(what string) error {
	s.reads++
	s.queries++
	if s.submit {
		s.ledger.t.Errorf("submit function %s ran %s", s.function, what)
		return errors.New("range query in a submit function")
	}
	if s.ledger.failRange {
		return errors.New("injected query failure")
	}
	return nil
}

func (s *fakeStub) GetStateByPartialCompositeKey(objectType string, attributes []string) (shim.StateQueryIteratorInterface, error) {
	if err := s.queryAllowed("GetStateByPartialCompositeKey"); err != nil {
		return nil, err
	}
	keys, err := s.keysWithPrefix(objectType, attributes, "")
	if err != nil {
		return nil, err
	}
	return s.iterator(keys), nil
}

func (s *fakeStub) GetStateByPartialCompositeKeyWithPagination(objectType string, attributes []string, pageSize int32, bookmark string) (shim.StateQueryIteratorInterface, *peer.QueryResponseMetadata, error) {
	if err := s.queryAllowed("GetStateByPartialCompositeKeyWithPagination"); err != nil {
		return nil, nil, err
	}
	keys, err := s.keysWithPrefix(objectType, attributes, bookmark)
	if err != nil {
		return nil, nil, err
	}
	next := ""
	if len(keys) > int(pageSize) {
		next = keys[pageSize]
		keys = keys[:pageSize]
	}
	meta := &peer.QueryResponseMetadata{FetchedRecordsCount: int32(len(keys)), Bookmark: next}
	return s.iterator(keys), meta, nil
}

func (s *fakeStub) GetHistoryForKey(key string) (shim.HistoryQueryIteratorInterface, error) {
	if err := s.queryAllowed("GetHistoryForKey"); err != nil {
		return nil, err
	}
	// Newest first in commit order, as the real peer does since Fabric 2.0
	// (FAB-16303: by block height, then transaction within the block); the
	// fake commits one transaction per block, in call order.
	mods := s.ledger.history[key]
	reversed := make([]*queryresult.KeyModification, len(mods))
	for i, m := range mods {
		reversed[len(mods)-1-i] = m
	}
	return &fakeHistoryIterator{mods: reversed}, nil
}

// keysWithPrefix returns the committed keys of a partial composite key, in
// order, from bookmark on.
func (s *fakeStub) keysWithPrefix(objectType string, attributes []string, bookmark string) ([]string, error) {
	prefix, err := shim.CreateCompositeKey(objectType, attributes)
	if err != nil {
		return nil, err
	}
	var keys []string
	for k := range s.ledger.state {
		if strings.HasPrefix(k, prefix) && k >= bookmark {
			keys = append(keys, k)
		}
	}
	sort.Strings(keys)
	return keys, nil
}

func (s *fakeStub) iterator(keys []string) *fakeStateIterator {
	kvs := make([]*queryresult.KV, len(keys))
	for i, k := range keys {
		kvs[i] = &queryresult.KV{Namespace: "registry", Key: k, Value: s.ledger.state[k]}
	}
	return &fakeStateIterator{kvs: kvs}
}

// commit applies the buffered writes and events of a successful call.
func (s *fakeStub) commit() {
	keys := make([]string, 0, len(s.writes)+len(s.deletes))
	for k := range s.writes {
		keys = append(keys, k)
	}
	for k := range s.deletes {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		mod := &queryresult.KeyModification{TxId: s.txID, Timestamp: s.ts}
		if s.deletes[k] {
			delete(s.ledger.state, k)
			mod.IsDelete = true
		} else {
			s.ledger.state[k] = s.writes[k]
			mod.Value = s.writes[k]
		}
		s.ledger.history[k] = append(s.ledger.history[k], mod)
	}
	s.ledger.events = append(s.ledger.events, s.events...)
}

func (s *fakeStub) wrote() bool { return len(s.writes)+len(s.deletes) > 0 }

type fakeStateIterator struct {
	kvs    []*queryresult.KV
	closed bool
}

func (it *fakeStateIterator) HasNext() bool { return len(it.kvs) > 0 }
func (it *fakeStateIterator) Close() error  { it.closed = true; return nil }
func (it *fakeStateIterator) Next() (*queryresult.KV, error) {
	if len(it.kvs) == 0 {
		return nil, errors.New("no more results")
	}
	kv := it.kvs[0]
	it.kvs = it.kvs[1:]
	return kv, nil
}

type fakeHistoryIterator struct {
	mods []*queryresult.KeyModification
}

func (it *fakeHistoryIterator) HasNext() bool { return len(it.mods) > 0 }
func (it *fakeHistoryIterator) Close() error  { return nil }
func (it *fakeHistoryIterator) Next() (*queryresult.KeyModification, error) {
	if len(it.mods) == 0 {
		return nil, errors.New("no more results")
	}
	m := it.mods[0]
	it.mods = it.mods[1:]
	return m, nil
}

// fakeIdentity is a cid.ClientIdentity with a chosen MSP id, role
// attribute and certificate.
type fakeIdentity struct {
	mspID   string
	role    string
	hasRole bool
	cert    *x509.Certificate
	mspErr  error
}

// identity returns an identity of an organisation with a role and a
// certificate whose DER bytes are unique to both.
func identity(mspID, role string) *fakeIdentity {
	return &fakeIdentity{
		mspID:   mspID,
		role:    role,
		hasRole: true,
		cert:    &x509.Certificate{Raw: []byte("certificate of " + role + "@" + mspID)},
	}
}

func (f *fakeIdentity) GetID() (string, error) { return "x509::CN=" + f.role + "::CN=ca", nil }

func (f *fakeIdentity) GetMSPID() (string, error) { return f.mspID, f.mspErr }

func (f *fakeIdentity) GetAttributeValue(name string) (string, bool, error) {
	if name != RoleAttribute || !f.hasRole {
		return "", false, nil
	}
	return f.role, true, nil
}

func (f *fakeIdentity) AssertAttributeValue(name, value string) error {
	if v, ok, _ := f.GetAttributeValue(name); !ok || v != value {
		return errors.New("attribute mismatch")
	}
	return nil
}

func (f *fakeIdentity) GetX509Certificate() (*x509.Certificate, error) { return f.cert, nil }

// fakeContext is the transaction context the contract functions receive.
type fakeContext struct {
	stub     *fakeStub
	identity cid.ClientIdentity
}

func (c *fakeContext) GetStub() shim.ChaincodeStubInterface  { return c.stub }
func (c *fakeContext) GetClientIdentity() cid.ClientIdentity { return c.identity }

// harness runs contract functions as transactions on a fake ledger.
type harness struct {
	t        *testing.T
	ledger   *fakeLedger
	contract *Contract
	evaluate map[string]bool
	last     *fakeStub // the stub of the last call
}

func newHarness(t *testing.T) *harness {
	t.Helper()
	c := New()
	evaluate := map[string]bool{}
	for _, name := range c.GetEvaluateTransactions() {
		evaluate[name] = true
	}
	return &harness{t: t, ledger: newFakeLedger(t), contract: c, evaluate: evaluate}
}

// use makes the harness report to a subtest.
func (h *harness) use(t *testing.T) {
	h.t, h.ledger.t = t, t
}

// invoke calls the contract function by name, as contractapi does, in a new
// transaction: its writes and event are committed only if it succeeds. It
// checks the transaction rules: a refusal writes and emits nothing, a
// successful call that writes emits exactly one event, one that does not
// write emits none.
func (h *harness) invoke(who cid.ClientIdentity, function string, args ...any) (any, error) {
	h.t.Helper()
	stub, result, err := h.endorse(who, function, args...)
	if err == nil {
		stub.commit()
	}
	return result, err
}

// endorse runs the contract function as invoke does, without committing
// its writes (see commitBlock).
func (h *harness) endorse(who cid.ClientIdentity, function string, args ...any) (*fakeStub, any, error) {
	h.t.Helper()
	method := reflect.ValueOf(h.contract).MethodByName(function)
	if !method.IsValid() {
		h.t.Fatalf("no contract function %s", function)
	}
	stub := h.ledger.newStub(function, !h.evaluate[function])
	h.last = stub
	in := []reflect.Value{reflect.ValueOf(&fakeContext{stub: stub, identity: who})}
	for _, a := range args {
		in = append(in, reflect.ValueOf(a))
	}
	out := method.Call(in)
	var err error
	if e, ok := out[len(out)-1].Interface().(error); ok {
		err = e
	}
	var result any
	if len(out) == 2 {
		result = out[0].Interface()
	}
	if err != nil {
		if ClassOf(err) != "" && (stub.wrote() || len(stub.events) > 0) {
			h.t.Errorf("%s refused (%v) after writing %d keys and emitting %d events", function, err, len(stub.writes), len(stub.events))
		}
		return stub, result, err
	}
	switch {
	case stub.wrote() && len(stub.events) != 1:
		h.t.Errorf("%s wrote %d keys and emitted %d events, want exactly 1", function, len(stub.writes), len(stub.events))
	case !stub.wrote() && len(stub.events) != 0:
		h.t.Errorf("%s wrote nothing but emitted %d events", function, len(stub.events))
	}
	return stub, result, nil
}

// commitBlock validates and commits transactions endorsed together (none
// of them saw the others' writes), in order, as a Fabric peer validates a
// block: a transaction that read a key an earlier one of the block wrote
// is invalidated (MVCC_READ_CONFLICT) and changes nothing. It returns the
// ids of the invalidated transactions.
func (h *harness) commitBlock(stubs ...*fakeStub) []string {
	written := map[string]bool{}
	var invalid []string
	for _, s := range stubs {
		conflict := false
		for key := range s.readKeys {
			conflict = conflict || written[key]
		}
		if conflict {
			invalid = append(invalid, s.txID)
			continue
		}
		for key := range s.writes {
			written[key] = true
		}
		for key := range s.deletes {
			written[key] = true
		}
		s.commit()
	}
	return invalid
}

// ok invokes a function that must succeed and returns its result.
func (h *harness) ok(who cid.ClientIdentity, function string, args ...any) any {
	h.t.Helper()
	result, err := h.invoke(who, function, args...)
	if err != nil {
		h.t.Fatalf("%s: unexpected error: %v", function, err)
	}
	return result
}

// refused invokes a function that must fail with exactly want, and checks
// that the ledger and its events did not change.
func (h *harness) refused(who cid.ClientIdentity, want, function string, args ...any) {
	h.t.Helper()
	before, events := h.ledger.snapshot(), len(h.ledger.events)
	_, err := h.invoke(who, function, args...)
	if err == nil {
		h.t.Fatalf("%s succeeded, want error %q", function, want)
	}
	if err.Error() != want {
		h.t.Errorf("%s error:\n got: %s\nwant: %s", function, err.Error(), want)
	}
	if after := h.ledger.snapshot(); !reflect.DeepEqual(before, after) {
		h.t.Errorf("%s refused but changed the ledger", function)
	}
	if len(h.ledger.events) != events {
		h.t.Errorf("%s refused but emitted an event", function)
	}
}

// lastEvent returns the last committed event.
func (h *harness) lastEvent() fakeEvent {
	h.t.Helper()
	if len(h.ledger.events) == 0 {
		h.t.Fatal("no event was emitted")
	}
	return h.ledger.events[len(h.ledger.events)-1]
}

// The fakes satisfy the interfaces the contract is called with.
var (
	_ contractapi.TransactionContextInterface = (*fakeContext)(nil)
	_ cid.ClientIdentity                      = (*fakeIdentity)(nil)
	_ shim.StateQueryIteratorInterface        = (*fakeStateIterator)(nil)
	_ shim.HistoryQueryIteratorInterface      = (*fakeHistoryIterator)(nil)
)

// actor is the Actor the contract records for this identity.
func (f *fakeIdentity) actor() Actor {
	return Actor{CertFingerprint: digest(string(f.cert.Raw)), MSPID: f.mspID, Role: f.role}
}

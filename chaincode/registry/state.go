package registry

import (
	"encoding/json"

	"github.com/hyperledger/fabric-chaincode-go/v2/shim"
	"github.com/hyperledger/fabric-contract-api-go/v2/contractapi"
	"google.golang.org/protobuf/types/known/timestamppb"
)

// timeLayout is RFC 3339 in UTC with nanoseconds always written out (nine
// digits), so that times compare as strings.
const timeLayout = "2006-01-02T15:04:05.000000000Z07:00"

// tx is one running transaction function: the caller (already authorised)
// and the transaction's id and time.
type tx struct {
	function string
	stub     shim.ChaincodeStubInterface
	caller   caller
	id       string
	time     string
}

// begin authorises the caller for function and reads the transaction's id
// and time. It reads no state.
func begin(ctx contractapi.TransactionContextInterface, function string, allowed ...string) (*tx, error) {
	c, err := authorize(ctx, function, allowed...)
	if err != nil {
		return nil, err
	}
	stub := ctx.GetStub()
	ts, err := stub.GetTxTimestamp()
	if err != nil {
		return nil, ledgerError("read timestamp of", stub.GetTxID(), err)
	}
	return &tx{function: function, stub: stub, caller: c, id: stub.GetTxID(), time: formatTimestamp(ts)}, nil
}

func formatTimestamp(ts *timestamppb.Timestamp) string {
	return ts.AsTime().UTC().Format(timeLayout)
}

// change describes this transaction as the last change of a record.
func (t *tx) change() Change {
	return Change{Action: t.function, Actor: t.caller.actor(), Time: t.time, TxID: t.id}
}

// getJSON reads key into v with a point read and reports whether it exists.
func (t *tx) getJSON(key string, v any) (bool, error) {
	data, err := t.stub.GetState(key)
	if err != nil {
		return false, ledgerError("read", key, err)
	}
	if len(data) == 0 { // Fabric returns nil (or empty) for a missing key
		return false, nil
	}
	if err := json.Unmarshal(data, v); err != nil {
		return false, ledgerError("decode", key, err)
	}
	return true, nil
}

func (t *tx) putJSON(key string, v any) error {
	data, err := canonicalJSON(v)
	if err != nil {
		return ledgerError("encode", key, err)
	}
	if err := t.stub.PutState(key, data); err != nil {
		return ledgerError("write", key, err)
	}
	return nil
}

// emit sets the transaction's one event.
func (t *tx) emit(name string, payload any) error {
	data, err := canonicalJSON(payload)
	if err != nil {
		return ledgerError("encode event", name, err)
	}
	if err := t.stub.SetEvent(name, data); err != nil {
		return ledgerError("set event", name, err)
	}
	return nil
}

// settings reads the channel settings; unset settings read as the defaults
// (empty approval set, strictDatasets off).
func (t *tx) settings() (*Settings, error) {
	s := &Settings{}
	if _, err := t.getJSON(settingsKey, s); err != nil {
		return nil, err
	}
	s.ApprovalOrgs = nonNil(s.ApprovalOrgs)
	return s, nil
}

func (t *tx) model(name string) (*Model, bool, error) {
	m := &Model{}
	found, err := t.getJSON(modelKey(name), m)
	return m, found, err
}

func (t *tx) version(name, version string) (*ModelVersion, bool, error) {
	v := &ModelVersion{}
	found, err := t.getJSON(modelVersionKey(name, version), v)
	return v, found, err
}

// readableVersion loads a version the caller may read, with its model and
// the settings; a missing or unreadable version is NOT_FOUND.
func (t *tx) readableVersion(name, version string) (*ModelVersion, *Model, *Settings, error) {
	v, found, err := t.version(name, version)
	if err != nil {
		return nil, nil, nil, err
	}
	if !found {
		return nil, nil, nil, versionNotFound(name, version)
	}
	m, s, readable, err := t.mayRead(v)
	if err != nil {
		return nil, nil, nil, err
	}
	if !readable {
		return nil, nil, nil, versionNotFound(name, version)
	}
	return v, m, s, nil
}

// mayRead loads the model of an existing version and the settings, and
// tells whether the caller may read the version.
func (t *tx) mayRead(v *ModelVersion) (*Model, *Settings, bool, error) {
	m, found, err := t.model(v.Name)
	if err != nil {
		return nil, nil, false, err
	}
	if !found {
		return nil, nil, false, ledgerError("read", modelKey(v.Name), errMissingModel)
	}
	s, err := t.settings()
	if err != nil {
		return nil, nil, false, err
	}
	return m, s, t.caller.canReadVersion(m, v, s), nil
}

// readableModel loads a model the caller may read; a missing or unreadable
// model is NOT_FOUND.
func (t *tx) readableModel(name string) (*Model, error) {
	m, found, err := t.model(name)
	if err != nil {
		return nil, err
	}
	if !found || !t.caller.canReadModel(m) {
		return nil, notFound("model %q", name)
	}
	return m, nil
}

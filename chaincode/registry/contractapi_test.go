package registry

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"math/big"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/hyperledger/fabric-chaincode-go/v2/pkg/attrmgr"
	"github.com/hyperledger/fabric-contract-api-go/v2/contractapi"
	"github.com/hyperledger/fabric-contract-api-go/v2/metadata"
	"github.com/hyperledger/fabric-protos-go-apiv2/msp"
	"google.golang.org/protobuf/proto"
)

func TestNewChaincodeAcceptsTheContract(t *testing.T) {
	if _, err := contractapi.NewChaincode(&Contract{}); err != nil {
		t.Fatalf("NewChaincode(&Contract{}): %v", err)
	}
	if _, err := contractapi.NewChaincode(New()); err != nil {
		t.Fatalf("NewChaincode(New()): %v", err)
	}
}

// creatorOf returns the serialized identity of a transaction creator whose
// certificate, issued by a test CA, carries the role attribute as a Fabric
// CA does.
func creatorOf(t *testing.T, mspID, role string) []byte {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	template := &x509.Certificate{
		SerialNumber: big.NewInt(time.Now().UnixNano()),
		Subject:      pkix.Name{CommonName: role + "@" + mspID},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(time.Hour),
	}
	if role != "" {
		attrs := &attrmgr.Attributes{Attrs: map[string]string{RoleAttribute: role, "hf.EnrollmentID": role}}
		if err := attrmgr.New().AddAttributesToCert(attrs, template); err != nil {
			t.Fatal(err)
		}
		// CreateCertificate writes ExtraExtensions, not Extensions.
		template.ExtraExtensions, template.Extensions = template.Extensions, nil
	}
	der, err := x509.CreateCertificate(rand.Reader, template, template, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	id := &msp.SerializedIdentity{Mspid: mspID, IdBytes: pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})}
	creator, err := proto.Marshal(id)
	if err != nil {
		t.Fatal(err)
	}
	return creator
}

// chaincodeHarness runs calls through contractapi's Invoke, as the peer
// does: argument conversion, the real cid identity and the validation of
// returned values against the metadata schema.
type chaincodeHarness struct {
	*harness
	cc *contractapi.ContractChaincode
}

func newChaincodeHarness(t *testing.T) *chaincodeHarness {
	cc, err := contractapi.NewChaincode(New())
	if err != nil {
		t.Fatal(err)
	}
	return &chaincodeHarness{harness: newHarness(t), cc: cc}
}

// call invokes a function and returns its status, payload and message;
// the transaction commits when the status is 200.
func (c *chaincodeHarness) call(creator []byte, function string, args ...string) (int32, string, string) {
	c.t.Helper()
	name := function[strings.LastIndex(function, ":")+1:]
	stub := c.ledger.newStub(name, !c.evaluate[name] && !strings.HasPrefix(function, "org.hyperledger.fabric:"))
	stub.creator = creator
	stub.args = append([]string{function}, args...)
	resp := c.cc.Invoke(stub)
	if resp.Status == 200 {
		stub.commit()
	}
	return resp.Status, string(resp.Payload), resp.Message
}

func (c *chaincodeHarness) mustCall(creator []byte, function string, args ...string) string {
	c.t.Helper()
	status, payload, message := c.call(creator, function, args...)
	if status != 200 {
		c.t.Fatalf("%s: status %d: %s", function, status, message)
	}
	return payload
}

func TestMetadataTagsEvaluateFunctions(t *testing.T) {
	c := newChaincodeHarness(t)
	payload := c.mustCall(nil, "org.hyperledger.fabric:GetMetadata")
	var md metadata.ContractChaincodeMetadata
	if err := json.Unmarshal([]byte(payload), &md); err != nil {
		t.Fatal(err)
	}
	contract, ok := md.Contracts[ContractName]
	if !ok || !contract.Default {
		t.Fatalf("contract %q missing or not the default: %v", ContractName, md.Contracts)
	}
	if contract.Info == nil || contract.Info.Version != ContractVersion {
		t.Errorf("contract info %+v", contract.Info)
	}
	var names []string
	evaluate := map[string]bool{}
	for _, name := range New().GetEvaluateTransactions() {
		evaluate[name] = true
	}
	for _, tx := range contract.Transactions {
		names = append(names, tx.Name)
		want := "SUBMIT"
		if evaluate[tx.Name] {
			want = "EVALUATE"
		}
		if !contains(tx.Tag, want) {
			t.Errorf("%s tagged %v, want %s", tx.Name, tx.Tag, want)
		}
	}
	want := sortedNames(functionCalls(t))
	sort.Strings(names)
	if strings.Join(names, ",") != strings.Join(want, ",") {
		t.Errorf("transactions\n got %v\nwant %v", names, want)
	}
}

// TestEveryFunctionThroughContractAPI runs a scenario through Invoke: every
// function's return value must pass contractapi's schema validation, and
// refusals come back with the contract's message.
func TestEveryFunctionThroughContractAPI(t *testing.T) {
	c := newChaincodeHarness(t)
	scientist := creatorOf(t, "Org1MSP", RoleDataScientist)
	approver1 := creatorOf(t, "Org1MSP", RoleApprover)
	approver2 := creatorOf(t, "Org2MSP", RoleApprover)
	operator := creatorOf(t, "Org1MSP", RoleOperator)
	admin := creatorOf(t, "Org1MSP", RoleAdmin)
	auditor := creatorOf(t, "Org3MSP", RoleAuditor)
	outsider := creatorOf(t, "Org2MSP", RoleDataScientist)
	record := sampleRecord(t, "fraud", "3")
	modelDigest := sampleInput("fraud", "3").ModelDigest

	if got := c.mustCall(auditor, "GetSettings"); got != `{"approvalOrgs":[],"strictDatasets":false}` {
		t.Errorf("GetSettings = %s", got)
	}
	c.mustCall(admin, "SetSettings", settingsJSON(false, "Org1MSP"))
	c.mustCall(creatorOf(t, "Org2MSP", RoleAdmin), "SetSettings", settingsJSON(false, "Org1MSP", "Org2MSP"))
	c.mustCall(auditor, "GetSettings")
	c.mustCall(scientist, "RegisterDataset", toJSON(t, DatasetInput{Name: "tx", SHA256: datasetTx, Source: "s3://d"}))
	c.mustCall(auditor, "GetDataset", datasetTx)
	c.mustCall(auditor, "GetDatasetClaims", datasetTx)
	registered := c.mustCall(scientist, "registry:RegisterModelVersion", record)
	if !strings.Contains(registered, `"status":"REGISTERED"`) {
		t.Errorf("RegisterModelVersion = %s", registered)
	}
	// A stored record comes back byte for byte (contractapi marshals it
	// again, with HTML escaping, which this record does not need).
	if stored := c.stored(modelVersionKey("fraud", "3")); registered != stored {
		t.Errorf("returned and stored records differ:\n%s\n%s", registered, stored)
	}
	c.mustCall(scientist, "RegisterModelVersion", record)
	// The evaluation gate: a policy (a bound of 0 included), a failing and a passing evaluation.
	evaluator := creatorOf(t, "Org2MSP", RoleEvaluator)
	policy := c.mustCall(admin, "SetModelPolicy", "fraud", policyJSON(1, true, rangeThreshold("auc", 0, 1), maxThreshold("loss", 0.5)))
	if !strings.Contains(policy, `"thresholds":[{"max":1,"metric":"auc","min":0},{"max":0.5,"metric":"loss"}],"version":1`) {
		t.Errorf("SetModelPolicy = %s", policy)
	}
	c.mustCall(creatorOf(t, "Org2MSP", RoleRegistrar), "RegisterDataset",
		toJSON(t, DatasetInput{Name: "holdout", SHA256: holdOut, Source: "s3://d/holdout"}))
	failed := c.mustCall(evaluator, "RecordEvaluation", "fraud", "3", evaluationJSON(holdOut, "run-1", Metric{"auc", 0.95}))
	if !strings.Contains(failed, `"failures":["metric loss is missing"]`) || !strings.Contains(failed, `"result":"FAILED"`) {
		t.Errorf("RecordEvaluation = %s", failed)
	}
	c.mustCall(evaluator, "RecordEvaluation", "fraud", "3", evaluationJSON(holdOut, "run-2", Metric{"auc", 0.95}, Metric{"loss", 0.1}))
	if got := c.mustCall(auditor, "ListEvaluations", "fraud", "3"); !strings.HasPrefix(got, `[{"artifactsDigest":`) ||
		!strings.Contains(got, `"result":"PASSED"`) {
		t.Errorf("ListEvaluations = %s", got)
	}
	if got := c.mustCall(auditor, "GetModel", "fraud"); !strings.Contains(got, `"policy":{`) {
		t.Errorf("GetModel = %s", got)
	}
	c.mustCall(approver1, "ApproveModelVersion", "fraud", "3", "ok")
	c.mustCall(approver2, "ApproveModelVersion", "fraud", "3", "ok")
	c.mustCall(operator, "RecordDeployment", "fraud", "3", "prod", "https://prod.example/fraud")
	c.mustCall(auditor, "GetDeployment", "prod", "fraud")
	c.mustCall(admin, "GrantAccess", "fraud", "Org2MSP")
	c.mustCall(outsider, "GetModelVersion", "fraud", "3")
	c.mustCall(admin, "RevokeAccess", "fraud", "Org2MSP")
	c.mustCall(operator, "AuthorizeArtifactAccess", "fraud", "3", "deploy")
	if got := c.mustCall(outsider, "AuthorizeArtifactAccess", "fraud", "3", ""); !strings.Contains(got, `"decision":"DENIED"`) {
		t.Errorf("outsider access: %s", got)
	}
	c.mustCall(auditor, "ListModelVersions", "", "10", "")
	c.mustCall(auditor, "ListModelVersions", "fraud", "1", "")
	if got := c.mustCall(auditor, "FindByDigest", modelDigest); got != `[{"name":"fraud","version":"3"}]` {
		t.Errorf("FindByDigest = %s", got)
	}
	if got := c.mustCall(outsider, "FindByDigest", modelDigest); got != "[]" {
		t.Errorf("FindByDigest by an outsider = %s", got)
	}
	c.mustCall(auditor, "GetHistory", "fraud", "3")
	c.mustCall(auditor, "ListAccessLog", "fraud", "", "10", "")
	c.mustCall(admin, "RevokeModelVersion", "fraud", "3", "superseded")
	revoked := c.mustCall(auditor, "GetModelVersion", "fraud", "3")
	if !strings.Contains(revoked, `"revocation":{`) {
		t.Errorf("revoked record %s", revoked)
	}
	c.mustCall(auditor, "GetHistory", "fraud", "3")
	// A version registered before 1.3.0 has no approvalOrgs: the field is optional.
	var legacy map[string]any
	if err := json.Unmarshal([]byte(c.stored(modelVersionKey("fraud", "3"))), &legacy); err != nil || legacy["approvalOrgs"] == nil {
		t.Fatalf("stored record %v (%v)", legacy, err)
	}
	delete(legacy, "approvalOrgs")
	c.ledger.state[modelVersionKey("fraud", "3")] = []byte(toJSON(t, legacy))
	c.mustCall(auditor, "GetModelVersion", "fraud", "3")
	// Removal votes: with Org3 in the set, Org1's vote to remove Org2 is one of two.
	c.mustCall(creatorOf(t, "Org3MSP", RoleAdmin), "SetSettings", settingsJSON(false, "Org1MSP", "Org2MSP", "Org3MSP"))
	c.mustCall(admin, "ProposeApprovalSetRemoval", "Org2MSP", "testing the schema")
	if got := c.mustCall(auditor, "GetApprovalSetRemoval", "Org2MSP"); !strings.Contains(got, `"needed":2,"removed":false`) {
		t.Errorf("GetApprovalSetRemoval = %s", got)
	}

	refusals := []struct {
		creator  []byte
		function string
		args     []string
		want     string
	}{
		{outsider, "GetModelVersion", []string{"fraud", "3"}, `NOT_FOUND: model "fraud" version "3"`},
		{outsider, "GetDeployment", []string{"prod", "fraud"}, `NOT_FOUND: deployment of model "fraud" in environment "prod"`},
		{auditor, "RegisterModelVersion", []string{record},
			`NOT_AUTHORIZED: role "auditor" of Org3MSP may not call RegisterModelVersion (allowed: data_scientist, registrar)`},
		{creatorOf(t, "Org1MSP", ""), "GetSettings", nil, "NOT_AUTHORIZED: identity of Org1MSP has no modelledger.role attribute"},
		{[]byte("not an identity"), "GetSettings", nil, "NOT_AUTHORIZED: the caller's identity cannot be read"},
		{operator, "RecordDeployment", []string{"fraud", "3", "dev", "https://dev"},
			`CONFLICT: model "fraud" version "3" is REVOKED; only APPROVED or DEPLOYED versions can be deployed`},
		{auditor, "ListModelVersions", []string{"", "0", ""}, "INVALID: pageSize: must be from 1 to 1000"},
		{evaluator, "RecordEvaluation", []string{"fraud", "3", evaluationJSON(holdOut, "run-3", Metric{"auc", 1})},
			`NOT_FOUND: model "fraud" version "3"`},
		{admin, "SetModelPolicy", []string{"fraud", "{}"}, "INVALID: requiredPasses: must be from 1 to 10"},
	}
	for i, r := range refusals {
		t.Run(strconv.Itoa(i)+"/"+r.function, func(t *testing.T) {
			c.use(t)
			status, _, message := c.call(r.creator, r.function, r.args...)
			if status != 500 || message != r.want {
				t.Errorf("status %d message %q, want 500 %q", status, message, r.want)
			}
		})
	}
}

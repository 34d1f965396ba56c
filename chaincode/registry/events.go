package registry

// Event names. Every successful transaction that writes emits exactly one
// event; a refused call or an idempotent repeat emits none.
const (
	EventModelVersionRegistered = "ModelVersionRegistered"
	EventDatasetRegistered      = "DatasetRegistered"
	EventModelVersionApproved   = "ModelVersionApproved"
	EventModelVersionRejected   = "ModelVersionRejected"
	EventModelVersionRevoked    = "ModelVersionRevoked"
	EventModelVersionDeployed   = "ModelVersionDeployed"
	EventAccessGranted          = "AccessGranted"
	EventAccessRevoked          = "AccessRevoked"
	EventArtifactAccess         = "ArtifactAccess"
	EventSettingsChanged        = "SettingsChanged"
	EventRemovalProposed        = "ApprovalSetRemovalProposed"
	EventMemberRemoved          = "ApprovalSetMemberRemoved"
	EventModelVersionEvaluated  = "ModelVersionEvaluated"
	EventModelPolicyChanged     = "ModelPolicyChanged"
)

// ModelVersionEvent is the payload of the ModelVersion* events. MSPID is the
// caller's organisation; Environment is set for ModelVersionDeployed only,
// Result (PASSED, FAILED or NO_POLICY) for ModelVersionEvaluated only.
type ModelVersionEvent struct {
	Environment string `json:"environment,omitempty"`
	MSPID       string `json:"mspId"`
	Name        string `json:"name"`
	Result      string `json:"result,omitempty"`
	Status      string `json:"status"`
	TxID        string `json:"txId"`
	Version     string `json:"version"`
}

// ModelPolicyEvent is the payload of ModelPolicyChanged. MSPID is the
// caller's organisation (the owner's); PolicyVersion the new version.
type ModelPolicyEvent struct {
	MSPID         string `json:"mspId"`
	Name          string `json:"name"`
	PolicyVersion int    `json:"policyVersion"`
	TxID          string `json:"txId"`
}

// DatasetEvent is the payload of DatasetRegistered.
type DatasetEvent struct {
	MSPID  string `json:"mspId"`
	Name   string `json:"name"`
	SHA256 string `json:"sha256"`
	TxID   string `json:"txId"`
}

// AccessEvent is the payload of AccessGranted and AccessRevoked. MSPID is
// the organisation whose read access changed.
type AccessEvent struct {
	MSPID string `json:"mspId"`
	Name  string `json:"name"`
	TxID  string `json:"txId"`
}

// ArtifactAccessEvent is the payload of ArtifactAccess. MSPID is the
// caller's organisation.
type ArtifactAccessEvent struct {
	Decision string `json:"decision"`
	MSPID    string `json:"mspId"`
	Name     string `json:"name"`
	TxID     string `json:"txId"`
	Version  string `json:"version"`
}

// SettingsEvent is the payload of SettingsChanged.
type SettingsEvent struct {
	ApprovalOrgs   []string `json:"approvalOrgs"`
	StrictDatasets bool     `json:"strictDatasets"`
	TxID           string   `json:"txId"`
}

// RemovalEvent is the payload of ApprovalSetRemovalProposed (a vote that
// does not yet remove the organisation) and ApprovalSetMemberRemoved (the
// vote that does). MSPID is the organisation voted out; Votes the MSP ids
// of the organisations that voted for it; ApprovalOrgs the approval set
// after the call.
type RemovalEvent struct {
	ApprovalOrgs []string `json:"approvalOrgs"`
	MSPID        string   `json:"mspId"`
	Needed       int      `json:"needed"`
	TxID         string   `json:"txId"`
	Votes        []string `json:"votes"`
}

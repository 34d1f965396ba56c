package registry

import "encoding/json"

// The ledger records and the values functions return. Every struct declares
// its fields in alphabetical order of their JSON names, so that the JSON the
// contract writes has its keys in alphabetical order; lists are stored in the
// order the contract sorts them. Fields tagged metadata:",optional" may be
// absent from the JSON (contractapi validates returned values against a
// schema generated from these types, where every other field is required).

// Model version statuses.
const (
	// StatusRegistered is the status of a version awaiting decisions.
	StatusRegistered = "REGISTERED"
	// StatusApproved means every organisation of the approval set approved.
	StatusApproved = "APPROVED"
	// StatusRejected means an organisation rejected the version.
	StatusRejected = "REJECTED"
	// StatusDeployed means at least one deployment was recorded.
	StatusDeployed = "DEPLOYED"
	// StatusRevoked is final.
	StatusRevoked = "REVOKED"
)

// Approval decisions.
const (
	// DecisionApproved is an organisation's approval.
	DecisionApproved = "APPROVED"
	// DecisionRejected is an organisation's rejection.
	DecisionRejected = "REJECTED"
)

// Evaluation results, computed on-chain against the model's policy.
const (
	// EvaluationPassed means every threshold of the policy in force was met.
	EvaluationPassed = "PASSED"
	// EvaluationFailed means a threshold was missed or its metric absent.
	EvaluationFailed = "FAILED"
	// EvaluationNoPolicy means the model had no policy when it was evaluated.
	EvaluationNoPolicy = "NO_POLICY"
)

// Artifact access decisions.
const (
	// AccessGranted is logged when the caller may read the version.
	AccessGranted = "GRANTED"
	// AccessDenied is logged otherwise.
	AccessDenied = "DENIED"
)

// Actor identifies the caller of a transaction, as read from its certificate.
type Actor struct {
	CertFingerprint string `json:"certFingerprint"`
	MSPID           string `json:"mspId"`
	Role            string `json:"role"`
}

// Change describes the transaction that last changed a record.
type Change struct {
	Action string `json:"action"`
	Actor  Actor  `json:"actor"`
	Time   string `json:"time"`
	TxID   string `json:"txId"`
}

// Framework is the ML framework a model was trained with.
type Framework struct {
	Name    string `json:"name"`
	Version string `json:"version"`
}

// Library is a library the model depends on.
type Library struct {
	Name    string `json:"name"`
	Version string `json:"version"`
}

// ManifestFile is one file of the model's artifact.
type ManifestFile struct {
	Path   string `json:"path"`
	SHA256 string `json:"sha256"`
	Size   int64  `json:"size"`
}

// Manifest lists every file of the model's artifact, sorted by path.
type Manifest struct {
	Files []ManifestFile `json:"files"`
}

// Param is a training hyperparameter.
type Param struct {
	Key   string `json:"key"`
	Value string `json:"value"`
}

// Metric is an evaluation metric.
type Metric struct {
	Key   string  `json:"key"`
	Value float64 `json:"value"`
}

// MLflow points at the MLflow run and model the version comes from, and names
// the MLflow user who registered it (as MLflow reported it; not an identity the
// ledger checks).
type MLflow struct {
	ModelID string `json:"modelId"`
	RunID   string `json:"runId"`
	Source  string `json:"source"`
	User    string `json:"user"`
}

// Storage points at the artifact in the object store.
type Storage struct {
	Bucket    string `json:"bucket"`
	Key       string `json:"key"`
	SHA256    string `json:"sha256"`
	VersionID string `json:"versionId"`
}

// DatasetRefInput is a training dataset as RegisterModelVersion takes it.
type DatasetRefInput struct {
	Name   string `json:"name"`
	SHA256 string `json:"sha256"`
	Source string `json:"source"`
}

// DatasetRef is a training dataset as stored in a ModelVersion. Registered
// is true when the registrant's organisation had claimed the dataset with
// the reference's name and source when the model was registered; false (a
// flag) when it had no claim on the sha256, or one with another name or
// source.
type DatasetRef struct {
	Name       string `json:"name"`
	Registered bool   `json:"registered"`
	SHA256     string `json:"sha256"`
	Source     string `json:"source"`
}

// ModelVersionInput is the argument of RegisterModelVersion.
type ModelVersionInput struct {
	Datasets       []DatasetRefInput `json:"datasets"`
	Framework      Framework         `json:"framework"`
	Libraries      []Library         `json:"libraries"`
	Manifest       Manifest          `json:"manifest"`
	ManifestDigest string            `json:"manifestDigest"`
	Metrics        []Metric          `json:"metrics"`
	MLflow         MLflow            `json:"mlflow"`
	ModelDigest    string            `json:"modelDigest"`
	Name           string            `json:"name"`
	Params         []Param           `json:"params"`
	Storage        Storage           `json:"storage"`
	Version        string            `json:"version"`
}

// Approval is one organisation's decision on a version: MSPID is the
// deciding organisation (a version holds one approval per organisation,
// sorted by MSPID), Actor the identity that recorded it.
type Approval struct {
	Actor    Actor  `json:"actor"`
	Comment  string `json:"comment"`
	Decision string `json:"decision"`
	MSPID    string `json:"mspId"`
	Time     string `json:"time"`
	TxID     string `json:"txId"`
}

// Deployment is one deployment of a version, as listed in the version.
type Deployment struct {
	Actor       Actor  `json:"actor"`
	Endpoint    string `json:"endpoint"`
	Environment string `json:"environment"`
	Time        string `json:"time"`
	TxID        string `json:"txId"`
}

// Revocation records why and by whom a version was revoked.
type Revocation struct {
	Actor  Actor  `json:"actor"`
	Reason string `json:"reason"`
	Time   string `json:"time"`
	TxID   string `json:"txId"`
}

// MetricThresholdInput is a threshold as SetModelPolicy takes it: a
// minimum, a maximum or both (at least one) on a named metric.
type MetricThresholdInput struct {
	Max    *float64 `json:"max,omitempty"`
	Metric string   `json:"metric"`
	Min    *float64 `json:"min,omitempty"`
}

// MetricThreshold is a threshold as stored in a ModelPolicy. Its JSON is
// that of MetricThresholdInput: a bound that is not set is absent, and a
// bound of 0 is written. In Go, HasMax and HasMin tell which bounds are
// set (contractapi accepts no pointer to a number in a returned record, so
// the bounds are numbers and their presence is kept beside them).
type MetricThreshold struct {
	Max    float64 `json:"max,omitempty" metadata:",optional"`
	Metric string  `json:"metric"`
	Min    float64 `json:"min,omitempty" metadata:",optional"`
	HasMax bool    `json:"-" metadata:"-"`
	HasMin bool    `json:"-" metadata:"-"`
}

// MarshalJSON writes the threshold as its input: the bounds that are set.
func (th MetricThreshold) MarshalJSON() ([]byte, error) {
	return json.Marshal(th.input())
}

// UnmarshalJSON reads the threshold from its input's JSON.
func (th *MetricThreshold) UnmarshalJSON(data []byte) error {
	var in MetricThresholdInput
	if err := json.Unmarshal(data, &in); err != nil {
		return err
	}
	*th = in.threshold()
	return nil
}

func (th MetricThreshold) input() MetricThresholdInput {
	in := MetricThresholdInput{Metric: th.Metric}
	if th.HasMax {
		in.Max = &th.Max
	}
	if th.HasMin {
		in.Min = &th.Min
	}
	return in
}

func (in MetricThresholdInput) threshold() MetricThreshold {
	th := MetricThreshold{Metric: in.Metric, HasMax: in.Max != nil, HasMin: in.Min != nil}
	if in.Max != nil {
		th.Max = *in.Max
	}
	if in.Min != nil {
		th.Min = *in.Min
	}
	return th
}

// ModelPolicyInput is the argument of SetModelPolicy.
type ModelPolicyInput struct {
	IndependentEvaluator bool                   `json:"independentEvaluator"`
	RequiredPasses       int                    `json:"requiredPasses"`
	Thresholds           []MetricThresholdInput `json:"thresholds"`
}

// ModelPolicy is the evaluation policy of a model, stored in its Model
// record. Version counts its changes from 1; thresholds are sorted by
// metric.
type ModelPolicy struct {
	IndependentEvaluator bool              `json:"independentEvaluator"`
	LastChange           Change            `json:"lastChange"`
	RequiredPasses       int               `json:"requiredPasses"`
	Thresholds           []MetricThreshold `json:"thresholds"`
	Version              int               `json:"version"`
}

// EvaluationInput is the argument of RecordEvaluation.
type EvaluationInput struct {
	ArtifactsDigest   string   `json:"artifactsDigest"`
	ArtifactsLocation string   `json:"artifactsLocation"`
	DatasetSHA256     string   `json:"datasetSha256"`
	Metrics           []Metric `json:"metrics"`
	RunID             string   `json:"runId"`
}

// Evaluation is one evaluation of a version on a hold-out dataset, as
// stored in the version (in commit order). Evaluator comes from the
// certificate; Result and Failures were computed by the contract against
// Policy, the model's policy when it was recorded (absent: none was in
// force, and Result is NO_POLICY).
type Evaluation struct {
	ArtifactsDigest   string       `json:"artifactsDigest"`
	ArtifactsLocation string       `json:"artifactsLocation"`
	DatasetSHA256     string       `json:"datasetSha256"`
	Evaluator         Actor        `json:"evaluator"`
	Failures          []string     `json:"failures"`
	Metrics           []Metric     `json:"metrics"`
	Policy            *ModelPolicy `json:"policy,omitempty" metadata:",optional"`
	Result            string       `json:"result"`
	RunID             string       `json:"runId"`
	Time              string       `json:"time"`
	TxID              string       `json:"txId"`
}

// ModelVersion is the ledger record of one registered model version.
// ApprovalOrgs is the approval set when it was registered (sorted); it is
// absent from versions registered before 1.3.0 or while the settings were
// unset. Evaluations are absent until the first one is recorded.
type ModelVersion struct {
	ApprovalOrgs   []string     `json:"approvalOrgs,omitempty" metadata:",optional"`
	Approvals      []Approval   `json:"approvals"`
	Datasets       []DatasetRef `json:"datasets"`
	Deployments    []Deployment `json:"deployments"`
	Evaluations    []Evaluation `json:"evaluations,omitempty" metadata:",optional"`
	Framework      Framework    `json:"framework"`
	LastChange     Change       `json:"lastChange"`
	Libraries      []Library    `json:"libraries"`
	Manifest       Manifest     `json:"manifest"`
	ManifestDigest string       `json:"manifestDigest"`
	Metrics        []Metric     `json:"metrics"`
	MLflow         MLflow       `json:"mlflow"`
	ModelDigest    string       `json:"modelDigest"`
	Name           string       `json:"name"`
	Owner          string       `json:"owner"`
	Params         []Param      `json:"params"`
	RegisteredAt   string       `json:"registeredAt"`
	RegisteredTxID string       `json:"registeredTxId"`
	Registrant     Actor        `json:"registrant"`
	Revocation     *Revocation  `json:"revocation,omitempty" metadata:",optional"`
	Status         string       `json:"status"`
	Storage        Storage      `json:"storage"`
	Version        string       `json:"version"`
}

// Model is the ledger record of a model name: its owner organisation, the
// organisations granted read access to all its versions (sorted) and its
// evaluation policy (absent: no policy).
type Model struct {
	Grants         []string     `json:"grants"`
	LastChange     Change       `json:"lastChange"`
	Name           string       `json:"name"`
	Owner          string       `json:"owner"`
	Policy         *ModelPolicy `json:"policy,omitempty" metadata:",optional"`
	RegisteredAt   string       `json:"registeredAt"`
	RegisteredTxID string       `json:"registeredTxId"`
}

// DatasetInput is the argument of RegisterDataset.
type DatasetInput struct {
	Name          string `json:"name"`
	SchemaSummary string `json:"schemaSummary"`
	SHA256        string `json:"sha256"`
	Source        string `json:"source"`
}

// Dataset is the ledger record of a registered dataset, keyed by sha256.
type Dataset struct {
	Name           string `json:"name"`
	Owner          string `json:"owner"`
	RegisteredAt   string `json:"registeredAt"`
	RegisteredTxID string `json:"registeredTxId"`
	Registrant     Actor  `json:"registrant"`
	SchemaSummary  string `json:"schemaSummary"`
	SHA256         string `json:"sha256"`
	Source         string `json:"source"`
}

// EnvironmentDeployment is the ledger record of what an environment runs
// for a model name.
type EnvironmentDeployment struct {
	Actor       Actor  `json:"actor"`
	Endpoint    string `json:"endpoint"`
	Environment string `json:"environment"`
	Name        string `json:"name"`
	Time        string `json:"time"`
	TxID        string `json:"txId"`
	Version     string `json:"version"`
}

// DeployedVersion is what GetDeployment returns: the deployment and the
// current status of the deployed version.
type DeployedVersion struct {
	Actor       Actor  `json:"actor"`
	Endpoint    string `json:"endpoint"`
	Environment string `json:"environment"`
	Name        string `json:"name"`
	Status      string `json:"status"`
	Time        string `json:"time"`
	TxID        string `json:"txId"`
	Version     string `json:"version"`
}

// SettingsInput is the argument of SetSettings.
type SettingsInput struct {
	ApprovalOrgs   []string `json:"approvalOrgs"`
	StrictDatasets bool     `json:"strictDatasets"`
}

// Settings are the channel settings. LastChange is absent until the first
// SetSettings.
type Settings struct {
	ApprovalOrgs   []string `json:"approvalOrgs"`
	LastChange     *Change  `json:"lastChange,omitempty" metadata:",optional"`
	StrictDatasets bool     `json:"strictDatasets"`
}

// RemovalVote is the vote of one organisation (by one of its admins) to
// remove another from the approval set.
type RemovalVote struct {
	Actor  Actor  `json:"actor"`
	MSPID  string `json:"mspId"`
	Reason string `json:"reason"`
	Time   string `json:"time"`
	TxID   string `json:"txId"`
}

// ApprovalSetRemoval is the proposal to remove an organisation (MSPID) from
// the approval set. ApprovalOrgs is the approval set when the proposal
// opened (sorted, MSPID included) and SettingsTxID the transaction that had
// last changed the settings then: the proposal is open only while the
// settings are unchanged since. Votes are those of the other organisations
// of that set (one per organisation, sorted by MSPID); Needed is the number
// of votes that removes MSPID, a majority of the whole set. Removed tells
// whether the last vote removed it (the proposal is then deleted from the
// ledger).
type ApprovalSetRemoval struct {
	ApprovalOrgs []string      `json:"approvalOrgs"`
	MSPID        string        `json:"mspId"`
	Needed       int           `json:"needed"`
	Removed      bool          `json:"removed"`
	SettingsTxID string        `json:"settingsTxId"`
	Votes        []RemovalVote `json:"votes"`
}

// ModelRef names a model version.
type ModelRef struct {
	Name    string `json:"name"`
	Version string `json:"version"`
}

// ModelVersionPage is one page of ListModelVersions. Fetched is the number
// of records returned; the bookmark names only a record of an earlier page
// (nothing about records the caller may not read).
type ModelVersionPage struct {
	Bookmark string         `json:"bookmark"`
	Fetched  int32          `json:"fetched"`
	Records  []ModelVersion `json:"records"`
}

// HistoryEntry is one change of a model version.
type HistoryEntry struct {
	Action   string `json:"action,omitempty" metadata:",optional"`
	Actor    *Actor `json:"actor,omitempty" metadata:",optional"`
	IsDelete bool   `json:"isDelete"`
	Status   string `json:"status,omitempty" metadata:",optional"`
	Time     string `json:"time"`
	TxID     string `json:"txId"`
}

// AccessLogEntry is the ledger record of one AuthorizeArtifactAccess call.
type AccessLogEntry struct {
	Actor    Actor  `json:"actor"`
	Decision string `json:"decision"`
	Name     string `json:"name"`
	Purpose  string `json:"purpose"`
	Reason   string `json:"reason,omitempty" metadata:",optional"`
	Time     string `json:"time"`
	TxID     string `json:"txId"`
	Version  string `json:"version"`
}

// AccessLogPage is one page of ListAccessLog.
type AccessLogPage struct {
	Bookmark string           `json:"bookmark"`
	Fetched  int32            `json:"fetched"`
	Records  []AccessLogEntry `json:"records"`
}

// ArtifactAccess is what AuthorizeArtifactAccess returns. The digests,
// status and storage pointer are present only when access is granted; the
// reason only when it is denied.
type ArtifactAccess struct {
	Decision       string   `json:"decision"`
	ManifestDigest string   `json:"manifestDigest,omitempty" metadata:",optional"`
	ModelDigest    string   `json:"modelDigest,omitempty" metadata:",optional"`
	Name           string   `json:"name"`
	Purpose        string   `json:"purpose"`
	Reason         string   `json:"reason,omitempty" metadata:",optional"`
	Status         string   `json:"status,omitempty" metadata:",optional"`
	Storage        *Storage `json:"storage,omitempty" metadata:",optional"`
	TxID           string   `json:"txId"`
	Version        string   `json:"version"`
}

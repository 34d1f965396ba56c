// Package registry is the ModelLedger registry contract: model versions,
// datasets, evaluation policies and evaluations, approvals, deployments, read
// grants, the artifact access log and the channel settings, as specified in
// CONTRACT.md.
//
// Every function first authorises the caller from its certificate (MSP id,
// modelledger.role attribute, fingerprint), before reading any state. Write
// functions use point reads only; the evaluate functions are the only ones
// that run range, history or paginated queries. Refusals are errors of four
// classes (see Error).
package registry

import (
	"github.com/hyperledger/fabric-contract-api-go/v2/contractapi"
	"github.com/hyperledger/fabric-contract-api-go/v2/metadata"
)

// ContractName is the name the contract is registered under; as the only
// contract of the chaincode it is also the default one, so functions can be
// called with or without the "registry:" prefix.
const ContractName = "registry"

// ContractVersion is the version of the interface in CONTRACT.md.
const ContractVersion = "1.4.0"

// Contract is the registry contract. Its exported methods are the chaincode
// functions.
type Contract struct {
	contractapi.Contract
}

// New returns the contract with its name and metadata info set.
func New() *Contract {
	return &Contract{Contract: contractapi.Contract{
		Name: ContractName,
		Info: metadata.InfoMetadata{
			Title:       "ModelLedger registry",
			Description: "Model versions, datasets, evaluations, approvals, deployments and artifact access of ModelLedger",
			Version:     ContractVersion,
		},
	}}
}

// GetEvaluateTransactions names the read-only functions, tagged "evaluate"
// in the contract metadata.
func (c *Contract) GetEvaluateTransactions() []string {
	return []string{
		"FindByDigest",
		"GetApprovalSetRemoval",
		"GetDataset",
		"GetDatasetClaims",
		"GetDeployment",
		"GetHistory",
		"GetModel",
		"GetModelVersion",
		"GetSettings",
		"ListAccessLog",
		"ListEvaluations",
		"ListModelVersions",
	}
}

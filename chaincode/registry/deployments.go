package registry

import (
	"sort"

	"github.com/hyperledger/fabric-contract-api-go/v2/contractapi"
)

// maxDeploymentEnvironments caps the environments a version lists in its
// deployments (one entry per environment), so the record stays bounded.
const maxDeploymentEnvironments = 100

// RecordDeployment records that an environment now runs a version, which
// must be APPROVED or DEPLOYED; only operators of the model's owner
// organisation may record it (a read grant gives no deploy right; a caller
// who may not read the version gets NOT_FOUND). The version becomes
// DEPLOYED and its deployments list holds its latest deployment to each
// environment. When the model has a policy, the version must have the
// passing evaluations the policy version in force requires (see gate).
// Recording what the environment already runs at the same endpoint is
// idempotent. Emits ModelVersionDeployed.
func (c *Contract) RecordDeployment(ctx contractapi.TransactionContextInterface, name, version, environment, endpoint string) (*ModelVersion, error) {
	t, err := begin(ctx, "RecordDeployment", RoleOperator)
	if err != nil {
		return nil, err
	}
	if err := validateDeployment(name, version, environment, endpoint); err != nil {
		return nil, err
	}
	v, m, _, err := t.readableVersion(name, version)
	if err != nil {
		return nil, err
	}
	if v.Owner != t.caller.mspID {
		return nil, notAuthorized("only operators of %s, the owner of model %q, may record its deployments", v.Owner, name)
	}
	if v.Status != StatusApproved && v.Status != StatusDeployed {
		return nil, conflict("model %q version %q is %s; only APPROVED or DEPLOYED versions can be deployed",
			name, version, v.Status)
	}
	var current EnvironmentDeployment
	found, err := t.getJSON(deploymentKey(environment, name), &current)
	if err != nil {
		return nil, err
	}
	if found && current.Version == version && current.Endpoint == endpoint {
		return v, nil
	}
	if err := gate(m, v); err != nil {
		return nil, err
	}
	others := otherEnvironments(v.Deployments, environment)
	if len(others) >= maxDeploymentEnvironments {
		return nil, conflict("model %q version %q is already deployed to %d environments, the most one version may list",
			name, version, maxDeploymentEnvironments)
	}
	d := EnvironmentDeployment{Actor: t.caller.actor(), Endpoint: endpoint, Environment: environment,
		Name: name, Time: t.time, TxID: t.id, Version: version}
	if err := t.putJSON(deploymentKey(environment, name), d); err != nil {
		return nil, err
	}
	v.Deployments = append(others, Deployment{Actor: d.Actor, Endpoint: endpoint, Environment: environment,
		Time: t.time, TxID: t.id})
	sort.Slice(v.Deployments, func(i, j int) bool { return v.Deployments[i].Environment < v.Deployments[j].Environment })
	v.Status = StatusDeployed
	if err := t.saveVersion(EventModelVersionDeployed, v, environment); err != nil {
		return nil, err
	}
	return v, nil
}

// otherEnvironments returns the deployments of a version to environments
// other than environment (a new slice).
func otherEnvironments(deployments []Deployment, environment string) []Deployment {
	out := make([]Deployment, 0, len(deployments)+1)
	for _, d := range deployments {
		if d.Environment != environment {
			out = append(out, d)
		}
	}
	return out
}

func validateDeployment(name, version, environment, endpoint string) error {
	if err := validateNameAndVersion(name, version); err != nil {
		return err
	}
	if err := validateEnvironment("environment", environment); err != nil {
		return err
	}
	return validateLine("endpoint", endpoint, maxURIChars, true)
}

// GetDeployment returns the version an environment runs for a model, with
// that version's current status. It is NOT_FOUND when nothing was deployed,
// when the caller may not read the model, or when the deployed version was
// revoked since.
func (c *Contract) GetDeployment(ctx contractapi.TransactionContextInterface, environment, name string) (*DeployedVersion, error) {
	t, err := begin(ctx, "GetDeployment", allRoles()...)
	if err != nil {
		return nil, err
	}
	if err := validateEnvironment("environment", environment); err != nil {
		return nil, err
	}
	if err := validateModelName("name", name); err != nil {
		return nil, err
	}
	var d EnvironmentDeployment
	found, err := t.getJSON(deploymentKey(environment, name), &d)
	if err != nil {
		return nil, err
	}
	if !found {
		return nil, notFound("deployment of model %q in environment %q", name, environment)
	}
	v, _, _, err := t.readableVersion(name, d.Version)
	if ClassOf(err) == NotFound {
		return nil, notFound("deployment of model %q in environment %q", name, environment)
	}
	if err != nil {
		return nil, err
	}
	if v.Status == StatusRevoked {
		return nil, notFound("deployment of model %q in environment %q (version %q was revoked)", name, environment, d.Version)
	}
	return &DeployedVersion{Actor: d.Actor, Endpoint: d.Endpoint, Environment: d.Environment, Name: d.Name,
		Status: v.Status, Time: d.Time, TxID: d.TxID, Version: d.Version}, nil
}

package registry

import (
	"github.com/hyperledger/fabric-contract-api-go/v2/contractapi"
)

// RecordEvaluation records an evaluation of a version (a JSON
// EvaluationInput) on a hold-out dataset, by an evaluator who may read the
// version. The evaluator is the caller, from its certificate. The contract
// judges the metrics against the model's policy in force (PASSED, FAILED,
// or NO_POLICY when the model has none) and stores that policy with the
// evaluation. It refuses, changing nothing: a version that is REVOKED or
// REJECTED; an evaluator of the registrant's organisation when the policy
// requires an independent one; a hold-out dataset that is one of the
// version's training datasets, or that neither the evaluator's
// organisation nor the model's owner registered; a run the evaluator's
// organisation already recorded for this version; an organisation's 11th
// evaluation of a version under the policy in force; a version that
// already lists 100 evaluations. Returns the version, the new evaluation last.
// Emits ModelVersionEvaluated.
func (c *Contract) RecordEvaluation(ctx contractapi.TransactionContextInterface, name, version, evaluation string) (*ModelVersion, error) {
	t, err := begin(ctx, "RecordEvaluation", RoleEvaluator)
	if err != nil {
		return nil, err
	}
	if err := validateNameAndVersion(name, version); err != nil {
		return nil, err
	}
	in, err := parseEvaluation([]byte(evaluation))
	if err != nil {
		return nil, err
	}
	v, m, _, err := t.readableVersion(name, version)
	if err != nil {
		return nil, err
	}
	if err := t.mayEvaluate(m, v, in); err != nil {
		return nil, err
	}
	if err := t.holdOutRegistered(in.DatasetSHA256, m.Owner); err != nil {
		return nil, err
	}
	result, failures := judge(m.Policy, in.Metrics)
	v.Evaluations = append(v.Evaluations, Evaluation{
		ArtifactsDigest:   in.ArtifactsDigest,
		ArtifactsLocation: in.ArtifactsLocation,
		DatasetSHA256:     in.DatasetSHA256,
		Evaluator:         t.caller.actor(),
		Failures:          failures,
		Metrics:           in.Metrics,
		Policy:            m.Policy,
		Result:            result,
		RunID:             in.RunID,
		Time:              t.time,
		TxID:              t.id,
	})
	v.LastChange = t.change()
	if err := t.putJSON(modelVersionKey(v.Name, v.Version), v); err != nil {
		return nil, err
	}
	event := t.versionEvent(v, "")
	event.Result = result
	if err := t.emit(EventModelVersionEvaluated, event); err != nil {
		return nil, err
	}
	return v, nil
}

// mayEvaluate applies the rules of RecordEvaluation that need no further
// ledger read: the version's status, the policy's independence, the
// hold-out set against the training sets, the run already recorded and
// the cap on evaluations.
func (t *tx) mayEvaluate(m *Model, v *ModelVersion, in *EvaluationInput) error {
	if v.Status == StatusRevoked || v.Status == StatusRejected {
		return conflict("model %q version %q is %s; evaluations are not recorded for REVOKED or REJECTED versions",
			v.Name, v.Version, v.Status)
	}
	if p := m.Policy; p != nil && p.IndependentEvaluator && t.caller.mspID == v.Registrant.MSPID {
		return notAuthorized("policy version %d of model %q requires an evaluator of another organisation than %s, which registered version %q",
			p.Version, v.Name, v.Registrant.MSPID, v.Version)
	}
	for _, d := range v.Datasets {
		if d.SHA256 == in.DatasetSHA256 {
			return conflict("dataset %s is a training dataset of model %q version %q (%s): a hold-out set must not be one",
				in.DatasetSHA256, v.Name, v.Version, d.Name)
		}
	}
	current := policyVersion(m.Policy)
	mine := 0
	for _, e := range v.Evaluations {
		if e.Evaluator.MSPID != t.caller.mspID {
			continue
		}
		if e.RunID == in.RunID {
			return conflict("%s already recorded run %q as an evaluation of model %q version %q (transaction %s)",
				t.caller.mspID, in.RunID, v.Name, v.Version, e.TxID)
		}
		if policyVersion(e.Policy) == current {
			mine++
		}
	}
	if mine >= maxOrgEvaluations {
		return conflict("%s already recorded %d evaluations of model %q version %q under its policy in force, the most one organisation may record",
			t.caller.mspID, maxOrgEvaluations, v.Name, v.Version)
	}
	if len(v.Evaluations) >= maxEvaluations {
		return conflict("model %q version %q already lists %d evaluations, the most one version may list",
			v.Name, v.Version, maxEvaluations)
	}
	return nil
}

// holdOutRegistered refuses a hold-out dataset that neither the
// evaluator's organisation nor the model's owner organisation registered
// (point reads of their claims only: a submit function runs no range
// query).
func (t *tx) holdOutRegistered(sha256, owner string) error {
	orgs := []string{t.caller.mspID}
	if owner != t.caller.mspID {
		orgs = append(orgs, owner)
	}
	for _, org := range orgs {
		_, found, err := t.datasetClaim(sha256, org)
		if err != nil || found {
			return err
		}
	}
	if len(orgs) == 1 {
		return notFound("dataset %s is not registered (by %s, the evaluator's organisation and the model's owner)",
			sha256, owner)
	}
	return notFound("dataset %s is not registered (by %s, the evaluator's organisation, or %s, the model's owner)",
		sha256, t.caller.mspID, owner)
}

// ListEvaluations returns the evaluations of a version the caller may
// read, in the order they were committed.
func (c *Contract) ListEvaluations(ctx contractapi.TransactionContextInterface, name, version string) ([]Evaluation, error) {
	t, err := begin(ctx, "ListEvaluations", allRoles()...)
	if err != nil {
		return nil, err
	}
	if err := validateNameAndVersion(name, version); err != nil {
		return nil, err
	}
	v, _, _, err := t.readableVersion(name, version)
	if err != nil {
		return nil, err
	}
	return nonNil(v.Evaluations), nil
}

// policyVersion is the version of a policy, 0 for none.
func policyVersion(p *ModelPolicy) int {
	if p == nil {
		return 0
	}
	return p.Version
}

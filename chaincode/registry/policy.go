package registry

import (
	"fmt"
	"slices"
	"strconv"

	"github.com/hyperledger/fabric-contract-api-go/v2/contractapi"
)

// SetModelPolicy sets the evaluation policy of a model (a JSON
// ModelPolicyInput): thresholds on named metrics, how many passing
// evaluations a version needs before it can be approved and deployed, and
// whether its evaluators must belong to another organisation than its
// registrant's. Only admins of the owner organisation may set it. Each
// change gets the next policy version (from 1); setting the policy in force
// again is idempotent. Emits ModelPolicyChanged.
func (c *Contract) SetModelPolicy(ctx contractapi.TransactionContextInterface, name, policy string) (*Model, error) {
	t, err := begin(ctx, "SetModelPolicy", RoleAdmin)
	if err != nil {
		return nil, err
	}
	if err := validateModelName("name", name); err != nil {
		return nil, err
	}
	in, err := parsePolicy([]byte(policy))
	if err != nil {
		return nil, err
	}
	m, err := t.readableModel(name)
	if err != nil {
		return nil, err
	}
	if m.Owner != t.caller.mspID {
		return nil, notAuthorized("only the owner organisation of model %q may set its policy", name)
	}
	if m.Policy.sameAs(in) {
		return m, nil
	}
	version := 1
	if m.Policy != nil {
		version = m.Policy.Version + 1
	}
	m.LastChange = t.change()
	m.Policy = &ModelPolicy{IndependentEvaluator: in.IndependentEvaluator, LastChange: m.LastChange,
		RequiredPasses: in.RequiredPasses, Thresholds: thresholds(in.Thresholds), Version: version}
	if err := t.putJSON(modelKey(name), m); err != nil {
		return nil, err
	}
	if err := t.emit(EventModelPolicyChanged, ModelPolicyEvent{MSPID: t.caller.mspID, Name: name,
		PolicyVersion: version, TxID: t.id}); err != nil {
		return nil, err
	}
	return m, nil
}

func thresholds(in []MetricThresholdInput) []MetricThreshold {
	out := make([]MetricThreshold, len(in))
	for i, th := range in {
		out[i] = th.threshold()
	}
	return out
}

// sameAs tells whether p (nil: no policy) holds what in sets (thresholds
// sorted, as parsePolicy returns them).
func (p *ModelPolicy) sameAs(in *ModelPolicyInput) bool {
	return p != nil && p.IndependentEvaluator == in.IndependentEvaluator && p.RequiredPasses == in.RequiredPasses &&
		slices.Equal(p.Thresholds, thresholds(in.Thresholds))
}

// judge computes the result of an evaluation with metrics (sorted by key)
// under policy p (nil: none in force): NO_POLICY, PASSED, or FAILED with one
// line per threshold missed or metric absent, in the order of the
// thresholds (sorted by metric).
func judge(p *ModelPolicy, metrics []Metric) (string, []string) {
	if p == nil {
		return EvaluationNoPolicy, []string{}
	}
	failures := []string{}
	for _, th := range p.Thresholds {
		i, found := slices.BinarySearchFunc(metrics, th.Metric, func(m Metric, key string) int {
			switch {
			case m.Key < key:
				return -1
			case m.Key > key:
				return 1
			}
			return 0
		})
		if !found {
			failures = append(failures, fmt.Sprintf("metric %s is missing", th.Metric))
			continue
		}
		value := metrics[i].Value
		if th.HasMin && value < th.Min {
			failures = append(failures, fmt.Sprintf("metric %s = %s is below the minimum %s",
				th.Metric, formatNumber(value), formatNumber(th.Min)))
		}
		if th.HasMax && value > th.Max {
			failures = append(failures, fmt.Sprintf("metric %s = %s is above the maximum %s",
				th.Metric, formatNumber(value), formatNumber(th.Max)))
		}
	}
	if len(failures) > 0 {
		return EvaluationFailed, failures
	}
	return EvaluationPassed, failures
}

// formatNumber writes a metric value or bound in the fewest digits that
// read back as the same float64.
func formatNumber(v float64) string {
	return strconv.FormatFloat(v, 'g', -1, 64)
}

// gate refuses to approve or deploy a version of a model with a policy
// that does not have the passing evaluations the policy version in force
// requires. Only evaluations judged by that policy version count: a pass
// under an earlier version does not. Passes count once per evaluator
// organisation: an organisation that records more passing runs, on the
// same data or on other data, does not add passes. Without a policy
// nothing is gated.
func gate(m *Model, v *ModelVersion) error {
	p := m.Policy
	if p == nil {
		return nil
	}
	passes := countedPasses(v, p.Version)
	if passes >= p.RequiredPasses {
		return nil
	}
	reason := fmt.Sprintf("model %q version %q has %d of the %d passing evaluations that policy version %d requires",
		v.Name, v.Version, passes, p.RequiredPasses, p.Version)
	if n := len(v.Evaluations); n > 0 && v.Evaluations[n-1].Result == EvaluationFailed && len(v.Evaluations[n-1].Failures) > 0 {
		reason += "; the latest evaluation FAILED: " + v.Evaluations[n-1].Failures[0]
	}
	return conflict("%s", reason)
}

// countedPasses counts the distinct evaluator organisations among the
// evaluations of v that PASSED under policy version policyVersion: more
// passes by one organisation, on any data, count once.
func countedPasses(v *ModelVersion, policyVersion int) int {
	var orgs []string
	for _, e := range v.Evaluations {
		if e.Result != EvaluationPassed || e.Policy == nil || e.Policy.Version != policyVersion {
			continue
		}
		if !slices.Contains(orgs, e.Evaluator.MSPID) {
			orgs = append(orgs, e.Evaluator.MSPID)
		}
	}
	return len(orgs)
}

package registry

import (
	"encoding/json"
	"strconv"
	"strings"
	"testing"
)

// Evaluators of the test network.
var (
	org1Evaluator = identity("Org1MSP", RoleEvaluator)
	org2Evaluator = identity("Org2MSP", RoleEvaluator)
	org3Evaluator = identity("Org3MSP", RoleEvaluator)
)

// holdOut is the hold-out dataset of the evaluations.
var holdOut = digest("dataset holdout-2026-11")

func minThreshold(metric string, min float64) MetricThresholdInput {
	return MetricThresholdInput{Metric: metric, Min: &min}
}

func maxThreshold(metric string, max float64) MetricThresholdInput {
	return MetricThresholdInput{Metric: metric, Max: &max}
}

func rangeThreshold(metric string, min, max float64) MetricThresholdInput {
	return MetricThresholdInput{Max: &max, Metric: metric, Min: &min}
}

// policyJSON is the argument of SetModelPolicy.
func policyJSON(passes int, independent bool, thresholds ...MetricThresholdInput) string {
	b, _ := json.Marshal(ModelPolicyInput{IndependentEvaluator: independent, RequiredPasses: passes, Thresholds: thresholds})
	return string(b)
}

// evaluationJSON is the argument of RecordEvaluation.
func evaluationJSON(dataset, runID string, metrics ...Metric) string {
	b, _ := json.Marshal(EvaluationInput{ArtifactsDigest: digest("artifacts " + runID),
		ArtifactsLocation: "s3://evaluations/" + runID + "?versionId=1", DatasetSHA256: dataset,
		Metrics: metrics, RunID: runID})
	return string(b)
}

// registerHoldOut registers the hold-out dataset as who's organisation.
func (h *harness) registerHoldOut(who *fakeIdentity) {
	h.t.Helper()
	h.ok(who, "RegisterDataset", toJSON(h.t, DatasetInput{Name: "holdout-2026-11", SHA256: holdOut, Source: "s3://data/holdout.parquet"}))
}

// evaluationSetup sets the approval set to Org1 and Org2, registers
// fraud 3 as Org1 and the hold-out dataset as Org2.
func (h *harness) evaluationSetup() {
	h.t.Helper()
	h.joinApprovalSet(false, "Org1MSP", "Org2MSP")
	h.register("fraud", "3")
	h.registerHoldOut(org2Scientist)
}

// evaluateFraud3 records an evaluation of fraud 3 by Org2's evaluator.
func (h *harness) evaluateFraud3(runID string, metrics ...Metric) *ModelVersion {
	h.t.Helper()
	return h.ok(org2Evaluator, "RecordEvaluation", "fraud", "3", evaluationJSON(holdOut, runID, metrics...)).(*ModelVersion)
}

func lastEvaluation(v *ModelVersion) Evaluation {
	return v.Evaluations[len(v.Evaluations)-1]
}

func TestSetModelPolicyIsVersioned(t *testing.T) {
	h := newHarness(t)
	h.register("fraud", "3")
	if m := h.ok(org1Auditor, "GetModel", "fraud").(*Model); m.Policy != nil || strings.Contains(toJSON(t, m), "policy") {
		t.Fatalf("a model without policy: %s", toJSON(t, m))
	}
	m := h.ok(org1Admin, "SetModelPolicy", "fraud", policyJSON(2, true, minThreshold("f1", 0.8), rangeThreshold("auc", 0.9, 1))).(*Model)
	p := m.Policy
	if p == nil || p.Version != 1 || p.RequiredPasses != 2 || !p.IndependentEvaluator || len(p.Thresholds) != 2 ||
		p.Thresholds[0].Metric != "auc" || p.Thresholds[1].Metric != "f1" {
		t.Fatalf("policy %s", toJSON(t, p))
	}
	if p.LastChange != m.LastChange || m.LastChange.Action != "SetModelPolicy" || m.LastChange.Actor != org1Admin.actor() {
		t.Errorf("lastChange %+v, policy's %+v", m.LastChange, p.LastChange)
	}
	if h.stored(modelKey("fraud")) != toJSON(t, m) {
		t.Error("the stored model is not the returned one")
	}
	if ev := h.lastEvent(); ev.Name != EventModelPolicyChanged ||
		ev.Payload != `{"mspId":"Org1MSP","name":"fraud","policyVersion":1,"txId":"`+h.last.txID+`"}` {
		t.Errorf("event %s %s", ev.Name, ev.Payload)
	}
	if got := h.ok(org1Scientist, "GetModel", "fraud").(*Model); toJSON(t, got) != toJSON(t, m) {
		t.Errorf("GetModel %s", toJSON(t, got))
	}

	// The same policy again, thresholds in another order: idempotent.
	events := len(h.ledger.events)
	again := h.ok(org1Admin, "SetModelPolicy", "fraud", policyJSON(2, true, rangeThreshold("auc", 0.9, 1), minThreshold("f1", 0.8))).(*Model)
	if h.last.wrote() || len(h.ledger.events) != events || toJSON(t, again) != toJSON(t, m) {
		t.Error("setting the policy in force again changed something")
	}
	// Any difference is a new version: a bound, the passes, independence.
	changes := []string{
		policyJSON(2, true, minThreshold("f1", 0.8), minThreshold("auc", 0.9)),
		policyJSON(2, true, minThreshold("f1", 0.8), rangeThreshold("auc", 0.91, 1)),
		policyJSON(1, true, minThreshold("f1", 0.8), minThreshold("auc", 0.91)),
		policyJSON(1, false, minThreshold("f1", 0.8), minThreshold("auc", 0.91)),
		policyJSON(1, false, minThreshold("f1", 0.8)),
		policyJSON(1, false, maxThreshold("f1", 0.8)),
	}
	for i, policy := range changes {
		m = h.ok(org1Admin, "SetModelPolicy", "fraud", policy).(*Model)
		if m.Policy.Version != i+2 || m.Policy.LastChange.TxID != h.last.txID {
			t.Errorf("change %d: policy %s", i, toJSON(t, m.Policy))
		}
		if want := `"policyVersion":` + strconv.Itoa(i+2); !strings.Contains(h.lastEvent().Payload, want) {
			t.Errorf("event %s", h.lastEvent().Payload)
		}
	}
}

func TestSetModelPolicyRefusals(t *testing.T) {
	h := newHarness(t)
	h.register("fraud", "3")
	policy := policyJSON(1, false, minThreshold("auc", 0.9))
	h.refused(org1Admin, `NOT_FOUND: model "nope"`, "SetModelPolicy", "nope", policy)
	h.refused(org2Admin, `NOT_FOUND: model "fraud"`, "SetModelPolicy", "fraud", policy)
	h.grant("fraud", "Org2MSP")
	h.refused(org2Admin, `NOT_AUTHORIZED: only the owner organisation of model "fraud" may set its policy`,
		"SetModelPolicy", "fraud", policy)
	h.refused(org1Approver, `NOT_AUTHORIZED: role "approver" of Org1MSP may not call SetModelPolicy (allowed: admin)`,
		"SetModelPolicy", "fraud", policy)
	h.refused(org1Admin, `INVALID: name: must not be blank`, "SetModelPolicy", " ", policy)

	tests := []struct{ policy, want string }{
		{`{"requiredPasses":0,"thresholds":[{"metric":"auc","min":0.9}],"independentEvaluator":false}`,
			"INVALID: requiredPasses: must be from 1 to 10"},
		{`{"requiredPasses":11,"thresholds":[{"metric":"auc","min":0.9}],"independentEvaluator":false}`,
			"INVALID: requiredPasses: must be from 1 to 10"},
		{`{"requiredPasses":1.5,"thresholds":[{"metric":"auc","min":0.9}]}`, "INVALID: requiredPasses: must be an integer"},
		{`{"requiredPasses":1}`, "INVALID: thresholds: must list 1 to 50 thresholds"},
		{`{"requiredPasses":1,"thresholds":[]}`, "INVALID: thresholds: must list 1 to 50 thresholds"},
		{`{"requiredPasses":1,"thresholds":[{"metric":"auc"}]}`, "INVALID: thresholds[0]: must set min, max or both"},
		{`{"requiredPasses":1,"thresholds":[{"metric":"auc","min":0.9,"max":0.8}]}`,
			"INVALID: thresholds[0]: min must not be greater than max"},
		{`{"requiredPasses":1,"thresholds":[{"metric":"auc","min":null}]}`, "INVALID: thresholds[0].min: must be a finite number"},
		{`{"requiredPasses":1,"thresholds":[{"metric":"auc","min":"0.9"}]}`, "INVALID: thresholds[0].min: must be a finite number"},
		{`{"requiredPasses":1,"thresholds":[{"metric":"","max":1}]}`,
			"INVALID: thresholds[0].metric: must be 1 to 250 characters of ASCII letters, digits, '_', '-', '.', '/', ':' and space"},
		{`{"requiredPasses":1,"thresholds":[{"metric":"auc","max":1},{"metric":"auc","min":0}]}`,
			"INVALID: thresholds[1].metric: duplicates thresholds[0].metric"},
		{`{"requiredPasses":1,"thresholds":[{"metric":"auc","max":1}],"quorum":2}`, "INVALID: quorum: unknown field"},
		{`{"requiredPasses":1,"thresholds":[{"metric":"auc","max":1}],"independentEvaluator":"yes"}`,
			"INVALID: independentEvaluator: must be true or false"},
		{`[]`, "INVALID: policy: must be an object"},
	}
	for _, tc := range tests {
		h.refused(org1Admin, tc.want, "SetModelPolicy", "fraud", tc.policy)
	}
	many := make([]MetricThresholdInput, maxThresholds+1)
	for i := range many {
		many[i] = minThreshold("m"+strconv.Itoa(i), 0)
	}
	h.refused(org1Admin, "INVALID: thresholds: must list 1 to 50 thresholds", "SetModelPolicy", "fraud", policyJSON(1, false, many...))
	h.ok(org1Admin, "SetModelPolicy", "fraud", policyJSON(maxRequiredPasses, false, many[:maxThresholds]...))
}

func TestEvaluationResultIsComputedOnChain(t *testing.T) {
	h := newHarness(t)
	h.evaluationSetup()

	// No policy: NO_POLICY, and no policy stored with the evaluation.
	v := h.evaluateFraud3("run-0", Metric{Key: "auc", Value: 0.5})
	e := lastEvaluation(v)
	if e.Result != EvaluationNoPolicy || e.Policy != nil || len(e.Failures) != 0 || e.Failures == nil {
		t.Fatalf("evaluation without policy %s", toJSON(t, e))
	}
	if strings.Contains(toJSON(t, e), `"policy"`) {
		t.Errorf("an evaluation without policy names one: %s", toJSON(t, e))
	}

	policy := h.ok(org1Admin, "SetModelPolicy", "fraud", policyJSON(1, false,
		minThreshold("auc", 0.9), maxThreshold("logloss", 0.3), rangeThreshold("f1", 0.7, 0.99))).(*Model).Policy
	tests := []struct {
		metrics  []Metric
		result   string
		failures []string
	}{
		{[]Metric{{"auc", 0.9}, {"logloss", 0.3}, {"f1", 0.7}}, EvaluationPassed, nil},
		{[]Metric{{"f1", 0.99}, {"logloss", 0}, {"auc", 1}, {"extra", -5}}, EvaluationPassed, nil},
		{[]Metric{{"auc", 0.89}, {"logloss", 0.3}, {"f1", 0.8}}, EvaluationFailed,
			[]string{"metric auc = 0.89 is below the minimum 0.9"}},
		{[]Metric{{"auc", 0.95}, {"logloss", 0.31}, {"f1", 0.8}}, EvaluationFailed,
			[]string{"metric logloss = 0.31 is above the maximum 0.3"}},
		{[]Metric{{"auc", 0.95}, {"logloss", 0.1}, {"f1", 0.995}}, EvaluationFailed,
			[]string{"metric f1 = 0.995 is above the maximum 0.99"}},
		{[]Metric{{"auc", 0.95}, {"logloss", 0.1}, {"f1", 1e-5}}, EvaluationFailed,
			[]string{"metric f1 = 1e-05 is below the minimum 0.7"}},
		{[]Metric{{"logloss", 12345678901}, {"f1", 0.8}}, EvaluationFailed,
			[]string{"metric auc is missing", "metric logloss = 1.2345678901e+10 is above the maximum 0.3"}},
		{[]Metric{{"other", 1}}, EvaluationFailed,
			[]string{"metric auc is missing", "metric f1 is missing", "metric logloss is missing"}},
	}
	for i, tc := range tests {
		run := "run-" + strconv.Itoa(i+1)
		v := h.evaluateFraud3(run, tc.metrics...)
		e := lastEvaluation(v)
		if len(v.Evaluations) != i+2 || e.RunID != run || e.TxID != h.last.txID {
			t.Fatalf("case %d: evaluation %s is not last", i, toJSON(t, e))
		}
		if e.Result != tc.result || strings.Join(e.Failures, "|") != strings.Join(tc.failures, "|") || e.Failures == nil {
			t.Errorf("case %d: result %s, failures %q; want %s, %q", i, e.Result, e.Failures, tc.result, tc.failures)
		}
		if toJSON(t, e.Policy) != toJSON(t, policy) {
			t.Errorf("case %d: judged by %s, want %s", i, toJSON(t, e.Policy), toJSON(t, policy))
		}
		if ev := h.lastEvent(); ev.Name != EventModelVersionEvaluated ||
			ev.Payload != `{"mspId":"Org2MSP","name":"fraud","result":"`+tc.result+`","status":"REGISTERED","txId":"`+h.last.txID+`","version":"3"}` {
			t.Errorf("case %d: event %s %s", i, ev.Name, ev.Payload)
		}
	}

	// The stored record is the returned one; the evaluation's fields.
	v = h.ok(org2Evaluator, "RecordEvaluation", "fraud", "3",
		evaluationJSON(holdOut, "run-last", Metric{"f1", 0.8}, Metric{"auc", 0.95}, Metric{"logloss", 0.2})).(*ModelVersion)
	if h.stored(modelVersionKey("fraud", "3")) != toJSON(t, v) {
		t.Error("the stored version is not the returned one")
	}
	want := Evaluation{ArtifactsDigest: digest("artifacts run-last"), ArtifactsLocation: "s3://evaluations/run-last?versionId=1",
		DatasetSHA256: holdOut, Evaluator: org2Evaluator.actor(), Failures: []string{},
		Metrics: []Metric{{"auc", 0.95}, {"f1", 0.8}, {"logloss", 0.2}}, Policy: policy, Result: EvaluationPassed,
		RunID: "run-last", Time: v.LastChange.Time, TxID: h.last.txID}
	if toJSON(t, lastEvaluation(v)) != toJSON(t, want) {
		t.Errorf("evaluation\n got %s\nwant %s", toJSON(t, lastEvaluation(v)), toJSON(t, want))
	}
	if v.Status != StatusRegistered || v.LastChange.Action != "RecordEvaluation" || v.LastChange.Actor != org2Evaluator.actor() {
		t.Errorf("status %s, lastChange %+v", v.Status, v.LastChange)
	}
	list := h.ok(org1Auditor, "ListEvaluations", "fraud", "3").([]Evaluation)
	if toJSON(t, list) != toJSON(t, v.Evaluations) {
		t.Errorf("ListEvaluations %s", toJSON(t, list))
	}
}

func TestRecordEvaluationRefusals(t *testing.T) {
	h := newHarness(t)
	h.evaluationSetup()
	ok := evaluationJSON(holdOut, "run-1", Metric{"auc", 0.95})

	h.refused(org1Scientist, `NOT_AUTHORIZED: role "data_scientist" of Org1MSP may not call RecordEvaluation (allowed: evaluator)`,
		"RecordEvaluation", "fraud", "3", ok)
	// An evaluator that may not read the version: NOT_FOUND, as if it did not exist.
	h.refused(org3Evaluator, `NOT_FOUND: model "fraud" version "3"`, "RecordEvaluation", "fraud", "3", ok)
	h.refused(org2Evaluator, `NOT_FOUND: model "fraud" version "9"`, "RecordEvaluation", "fraud", "9", ok)
	// The hold-out set is a training dataset of the version.
	h.refused(org2Evaluator, `CONFLICT: dataset `+datasetTx+` is a training dataset of model "fraud" version "3" (transactions-2026-10): a hold-out set must not be one`,
		"RecordEvaluation", "fraud", "3", evaluationJSON(datasetTx, "run-1", Metric{"auc", 0.95}))
	// ... even when it is registered.
	h.ok(org2Scientist, "RegisterDataset", toJSON(t, DatasetInput{Name: "tx", SHA256: datasetTx, Source: "s3://d"}))
	h.refused(org2Evaluator, `CONFLICT: dataset `+datasetTx+` is a training dataset of model "fraud" version "3" (transactions-2026-10): a hold-out set must not be one`,
		"RecordEvaluation", "fraud", "3", evaluationJSON(datasetTx, "run-1", Metric{"auc", 0.95}))
	// A hold-out set nobody registered, or that only a third organisation registered.
	unknown := digest("unknown")
	h.refused(org2Evaluator, `NOT_FOUND: dataset `+unknown+` is not registered (by Org2MSP, the evaluator's organisation, or Org1MSP, the model's owner)`,
		"RecordEvaluation", "fraud", "3", evaluationJSON(unknown, "run-1", Metric{"auc", 0.95}))
	h.ok(identity("Org3MSP", RoleRegistrar), "RegisterDataset", toJSON(t, DatasetInput{Name: "u", SHA256: unknown, Source: "s3://u"}))
	h.refused(org2Evaluator, `NOT_FOUND: dataset `+unknown+` is not registered (by Org2MSP, the evaluator's organisation, or Org1MSP, the model's owner)`,
		"RecordEvaluation", "fraud", "3", evaluationJSON(unknown, "run-1", Metric{"auc", 0.95}))
	h.refused(org1Evaluator, `NOT_FOUND: dataset `+unknown+` is not registered (by Org1MSP, the evaluator's organisation and the model's owner)`,
		"RecordEvaluation", "fraud", "3", evaluationJSON(unknown, "run-1", Metric{"auc", 0.95}))
	// The model owner's claim counts too.
	h.ok(org1Scientist, "RegisterDataset", toJSON(t, DatasetInput{Name: "u", SHA256: unknown, Source: "s3://u"}))
	h.ok(org2Evaluator, "RecordEvaluation", "fraud", "3", evaluationJSON(unknown, "run-u", Metric{"auc", 0.95}))

	// A run is recorded once per organisation.
	h.ok(org2Evaluator, "RecordEvaluation", "fraud", "3", ok)
	first := h.last.txID
	h.refused(org2Evaluator, `CONFLICT: Org2MSP already recorded run "run-1" as an evaluation of model "fraud" version "3" (transaction `+first+`)`,
		"RecordEvaluation", "fraud", "3", evaluationJSON(holdOut, "run-1", Metric{"auc", 0.5}))
	h.registerHoldOut(org1Scientist)
	h.ok(org1Evaluator, "RecordEvaluation", "fraud", "3", ok) // another organisation's run of that id

	// Independence: an evaluator of the registrant's organisation is refused.
	h.ok(org1Admin, "SetModelPolicy", "fraud", policyJSON(1, true, minThreshold("auc", 0.9)))
	h.refused(org1Evaluator, `NOT_AUTHORIZED: policy version 1 of model "fraud" requires an evaluator of another organisation than Org1MSP, which registered version "3"`,
		"RecordEvaluation", "fraud", "3", evaluationJSON(holdOut, "run-2", Metric{"auc", 0.95}))
	h.ok(org2Evaluator, "RecordEvaluation", "fraud", "3", evaluationJSON(holdOut, "run-2", Metric{"auc", 0.95}))
	h.ok(org1Admin, "SetModelPolicy", "fraud", policyJSON(1, false, minThreshold("auc", 0.9)))
	h.ok(org1Evaluator, "RecordEvaluation", "fraud", "3", evaluationJSON(holdOut, "run-2", Metric{"auc", 0.95}))

	// Invalid arguments.
	tests := []struct{ evaluation, want string }{
		{`{"artifactsDigest":"x","artifactsLocation":"","datasetSha256":"` + holdOut + `","metrics":[{"key":"auc","value":1}],"runId":"r"}`,
			"INVALID: artifactsDigest: must be 64 lowercase hex characters"},
		{`{"artifactsDigest":"` + holdOut + `","artifactsLocation":"a\nb","datasetSha256":"` + holdOut + `","metrics":[{"key":"auc","value":1}],"runId":"r"}`,
			"INVALID: artifactsLocation: must not contain control characters"},
		{`{"artifactsDigest":"` + holdOut + `","artifactsLocation":"","datasetSha256":"X","metrics":[{"key":"auc","value":1}],"runId":"r"}`,
			"INVALID: datasetSha256: must be 64 lowercase hex characters"},
		{`{"artifactsDigest":"` + holdOut + `","artifactsLocation":"","datasetSha256":"` + holdOut + `","metrics":[],"runId":"r"}`,
			"INVALID: metrics: must list 1 to 100 metrics"},
		{`{"artifactsDigest":"` + holdOut + `","artifactsLocation":"","datasetSha256":"` + holdOut + `","metrics":[{"key":"auc","value":1},{"key":"auc","value":2}],"runId":"r"}`,
			"INVALID: metrics[1].key: duplicates metrics[0].key"},
		{`{"artifactsDigest":"` + holdOut + `","artifactsLocation":"","datasetSha256":"` + holdOut + `","metrics":[{"key":"auc","value":1}],"runId":" "}`,
			"INVALID: runId: must not be blank"},
		{`{"artifactsDigest":"` + holdOut + `","artifactsLocation":"","datasetSha256":"` + holdOut + `","metrics":[{"key":"auc","value":1}],"runId":"r","result":"PASSED"}`,
			"INVALID: result: unknown field"},
		{`{"metrics":[{"key":"auc","value":1e999}]}`, "INVALID: metrics[0].value: must be a finite number"},
	}
	for _, tc := range tests {
		h.refused(org2Evaluator, tc.want, "RecordEvaluation", "fraud", "3", tc.evaluation)
	}
	metrics := make([]Metric, maxMetrics+1)
	for i := range metrics {
		metrics[i] = Metric{Key: "m" + strconv.Itoa(i), Value: 1}
	}
	h.refused(org2Evaluator, "INVALID: metrics: must list 1 to 100 metrics", "RecordEvaluation", "fraud", "3",
		evaluationJSON(holdOut, "run-x", metrics...))

	// Rejected and revoked versions are not evaluated.
	h.ok(org2Approver, "RejectModelVersion", "fraud", "3", "no")
	h.grant("fraud", "Org2MSP") // so that Org2's evaluator may still read it
	h.refused(org2Evaluator, `CONFLICT: model "fraud" version "3" is REJECTED; evaluations are not recorded for REVOKED or REJECTED versions`,
		"RecordEvaluation", "fraud", "3", evaluationJSON(holdOut, "run-9", Metric{"auc", 0.95}))
	h.register("fraud", "4")
	h.ok(org1Admin, "RevokeModelVersion", "fraud", "4", "superseded")
	h.refused(org2Evaluator, `CONFLICT: model "fraud" version "4" is REVOKED; evaluations are not recorded for REVOKED or REJECTED versions`,
		"RecordEvaluation", "fraud", "4", evaluationJSON(holdOut, "run-9", Metric{"auc", 0.95}))
}

func TestEvaluationsAreCapped(t *testing.T) {
	h := newHarness(t)
	h.evaluationSetup()
	// One organisation records at most maxOrgEvaluations on a version...
	for i := 0; i < maxOrgEvaluations; i++ {
		h.evaluateFraud3("run-"+strconv.Itoa(i), Metric{"auc", 0.9})
	}
	h.refused(org2Evaluator, `CONFLICT: Org2MSP already recorded 10 evaluations of model "fraud" version "3" under its policy in force, the most one organisation may record`,
		"RecordEvaluation", "fraud", "3", evaluationJSON(holdOut, "run-more", Metric{"auc", 0.9}))
	// ...under the policy in force: a new policy version lets it evaluate again...
	h.ok(org1Admin, "SetModelPolicy", "fraud", policyJSON(1, false, minThreshold("auc", 0.5)))
	if e := lastEvaluation(h.evaluateFraud3("run-policy-1", Metric{"auc", 0.9})); e.Result != EvaluationPassed {
		t.Errorf("the first evaluation under the new policy: %s", e.Result)
	}
	// ...and another organisation still may.
	h.registerHoldOut(org3Evaluator)
	h.grant("fraud", "Org3MSP")
	h.ok(org3Evaluator, "RecordEvaluation", "fraud", "3", evaluationJSON(holdOut, "run-org3", Metric{"auc", 0.9}))

	// And a version lists at most maxEvaluations, from every organisation together.
	key := modelVersionKey("fraud", "3")
	var v ModelVersion
	if err := json.Unmarshal(h.ledger.state[key], &v); err != nil {
		t.Fatal(err)
	}
	for len(v.Evaluations) < maxEvaluations {
		e := v.Evaluations[0]
		e.Evaluator.MSPID = "Org" + strconv.Itoa(100+len(v.Evaluations)) + "MSP"
		v.Evaluations = append(v.Evaluations, e)
	}
	h.ledger.state[key] = []byte(toJSON(t, v))
	h.refused(org1Evaluator, `CONFLICT: model "fraud" version "3" already lists 100 evaluations, the most one version may list`,
		"RecordEvaluation", "fraud", "3", evaluationJSON(holdOut, "run-org1", Metric{"auc", 0.9}))
}

func TestEvaluatorsReadLikeReviewers(t *testing.T) {
	h := newHarness(t)
	h.evaluationSetup()
	h.register("fraud", "4")
	h.register("fraud", "5")
	// Org2's evaluator may read the versions awaiting Org2's decision...
	h.ok(org2Evaluator, "GetModelVersion", "fraud", "3")
	h.ok(org2Evaluator, "ListEvaluations", "fraud", "3")
	page := h.ok(org2Evaluator, "ListModelVersions", "fraud", int32(10), "").(*ModelVersionPage)
	if page.Fetched != 3 {
		t.Errorf("an evaluator of the approval set lists %d versions", page.Fetched)
	}
	if a := h.ok(org2Evaluator, "AuthorizeArtifactAccess", "fraud", "3", "evaluate").(*ArtifactAccess); a.Decision != AccessGranted {
		t.Errorf("artifact access %s", a.Decision)
	}
	// ...and the APPROVED and DEPLOYED ones (a new policy version may call for another evaluation before
	// the next deployment), but no longer those REJECTED or REVOKED.
	for _, who := range []*fakeIdentity{org1Approver, org2Approver} {
		h.ok(who, "ApproveModelVersion", "fraud", "3", "")
		h.ok(who, "ApproveModelVersion", "fraud", "5", "")
	}
	h.ok(org2Evaluator, "RecordEvaluation", "fraud", "3", evaluationJSON(holdOut, "run-1", Metric{"auc", 0.9}))
	h.ok(org2Approver, "RejectModelVersion", "fraud", "4", "no")
	h.refused(org2Evaluator, `NOT_FOUND: model "fraud" version "4"`, "GetModelVersion", "fraud", "4")
	h.refused(org2Evaluator, `NOT_FOUND: model "fraud" version "4"`, "ListEvaluations", "fraud", "4")
	h.ok(org1Operator, "RecordDeployment", "fraud", "3", "prod", "https://prod")
	h.ok(org2Evaluator, "RecordEvaluation", "fraud", "3", evaluationJSON(holdOut, "run-2", Metric{"auc", 0.9}))
	h.ok(org2Evaluator, "ListEvaluations", "fraud", "3")
	h.ok(org1Admin, "RevokeModelVersion", "fraud", "5", "x")
	if page := h.ok(org2Evaluator, "ListModelVersions", "fraud", int32(10), "").(*ModelVersionPage); page.Fetched != 1 ||
		page.Records[0].Version != "3" {
		t.Errorf("an evaluator lists %s after the rejection, the deployment and the revocation", toJSON(t, page))
	}
	// An evaluator of an organisation outside the approval set reads nothing.
	h.refused(org3Evaluator, `NOT_FOUND: model "fraud"`, "ListModelVersions", "fraud", int32(10), "")
	// Readers of the model read every evaluation, whatever the status.
	for _, who := range []*fakeIdentity{org1Evaluator, org1Scientist, org3Auditor} {
		if list := h.ok(who, "ListEvaluations", "fraud", "3").([]Evaluation); len(list) != 2 {
			t.Errorf("%s lists %d evaluations", who.role, len(list))
		}
	}
	if list := h.ok(org1Operator, "ListEvaluations", "fraud", "4").([]Evaluation); list == nil || len(list) != 0 {
		t.Errorf("a version without evaluations lists %v", list)
	}
}

func TestApprovalNeedsThePassesOfThePolicyInForce(t *testing.T) {
	h := newHarness(t)
	h.evaluationSetup()
	h.ok(org1Admin, "SetModelPolicy", "fraud", policyJSON(2, true, minThreshold("auc", 0.9)))

	h.refused(org1Approver, `CONFLICT: model "fraud" version "3" has 0 of the 2 passing evaluations that policy version 1 requires`,
		"ApproveModelVersion", "fraud", "3", "")
	h.evaluateFraud3("run-1", Metric{"auc", 0.95})
	h.refused(org1Approver, `CONFLICT: model "fraud" version "3" has 1 of the 2 passing evaluations that policy version 1 requires`,
		"ApproveModelVersion", "fraud", "3", "")
	h.evaluateFraud3("run-2", Metric{"auc", 0.85})
	h.refused(org1Approver, `CONFLICT: model "fraud" version "3" has 1 of the 2 passing evaluations that policy version 1 requires; the latest evaluation FAILED: metric auc = 0.85 is below the minimum 0.9`,
		"ApproveModelVersion", "fraud", "3", "")
	// Rejection is never gated (tested on another version below).
	// More passing runs of one organisation count once, on the same hold-out set or on another...
	h.evaluateFraud3("run-3", Metric{"auc", 0.91})
	other := digest("holdout-2")
	h.ok(org2Evaluator, "RegisterDataset", toJSON(t, DatasetInput{Name: "holdout-2", SHA256: other, Source: "s3://data/holdout-2.parquet"}))
	h.ok(org2Evaluator, "RecordEvaluation", "fraud", "3", evaluationJSON(other, "run-3b", Metric{"auc", 0.92}))
	h.refused(org1Approver, `CONFLICT: model "fraud" version "3" has 1 of the 2 passing evaluations that policy version 1 requires`,
		"ApproveModelVersion", "fraud", "3", "")
	// ...a pass by another organisation counts (Org3, granted read access; the policy asks for independence
	// from Org1, the registrant).
	h.grant("fraud", "Org3MSP")
	h.registerHoldOut(org3Evaluator)
	h.ok(org3Evaluator, "RecordEvaluation", "fraud", "3", evaluationJSON(holdOut, "run-org3", Metric{"auc", 0.95}))
	h.ok(org1Approver, "ApproveModelVersion", "fraud", "3", "")

	// A new policy version: the passes judged by version 1 no longer count.
	h.ok(org1Admin, "SetModelPolicy", "fraud", policyJSON(1, true, minThreshold("auc", 0.92)))
	h.refused(org2Approver, `CONFLICT: model "fraud" version "3" has 0 of the 1 passing evaluations that policy version 2 requires`,
		"ApproveModelVersion", "fraud", "3", "")
	// A failing evaluation under version 2, then a pass.
	h.evaluateFraud3("run-4", Metric{"auc", 0.91})
	h.refused(org2Approver, `CONFLICT: model "fraud" version "3" has 0 of the 1 passing evaluations that policy version 2 requires; the latest evaluation FAILED: metric auc = 0.91 is below the minimum 0.92`,
		"ApproveModelVersion", "fraud", "3", "")
	h.evaluateFraud3("run-5", Metric{"auc", 0.93})
	if v := h.ok(org2Approver, "ApproveModelVersion", "fraud", "3", "").(*ModelVersion); v.Status != StatusApproved {
		t.Fatalf("status %s", v.Status)
	}
	// Setting policy version 2 again changes nothing: the pass still counts.
	h.ok(org1Admin, "SetModelPolicy", "fraud", policyJSON(1, true, minThreshold("auc", 0.92)))
	h.ok(org1Operator, "RecordDeployment", "fraud", "3", "prod", "https://prod")

	// Rejection and revocation are never gated.
	h.register("fraud", "4")
	h.ok(org2Approver, "RejectModelVersion", "fraud", "4", "not evaluated")
	h.register("fraud", "5")
	h.ok(org1Admin, "RevokeModelVersion", "fraud", "5", "not evaluated")
}

func TestRepeatedApprovalIsGated(t *testing.T) {
	h := newHarness(t)
	h.joinApprovalSet(false, "Org1MSP", "Org2MSP", "Org3MSP")
	h.register("fraud", "3")
	h.registerHoldOut(org2Scientist)
	h.ok(org1Approver, "ApproveModelVersion", "fraud", "3", "")
	h.ok(org2Approver, "ApproveModelVersion", "fraud", "3", "")
	h.ok(org1Admin, "SetModelPolicy", "fraud", policyJSON(1, false, minThreshold("auc", 0.9)))
	// A repeat that completes nothing stays idempotent.
	events := len(h.ledger.events)
	h.ok(org1Approver, "ApproveModelVersion", "fraud", "3", "")
	if h.last.wrote() || len(h.ledger.events) != events {
		t.Error("an idempotent repeat wrote")
	}
	// Org3 leaves: the repeat that would complete approval is gated.
	h.ok(org3Admin, "SetSettings", settingsJSON(false, "Org1MSP", "Org2MSP"))
	h.refused(org1Approver, `CONFLICT: model "fraud" version "3" has 0 of the 1 passing evaluations that policy version 1 requires`,
		"ApproveModelVersion", "fraud", "3", "")
	h.evaluateFraud3("run-1", Metric{"auc", 0.95})
	if v := h.ok(org1Approver, "ApproveModelVersion", "fraud", "3", "").(*ModelVersion); v.Status != StatusApproved {
		t.Errorf("status %s", v.Status)
	}
}

func TestDeploymentIsGated(t *testing.T) {
	h := newHarness(t)
	h.approved("fraud", "3") // without policy: as in 1.3.0
	h.registerHoldOut(org2Scientist)
	h.ok(org1Operator, "RecordDeployment", "fraud", "3", "dev", "https://dev")
	h.register("fraud", "4")
	h.ok(org1Approver, "ApproveModelVersion", "fraud", "4", "")
	h.ok(org2Approver, "ApproveModelVersion", "fraud", "4", "")

	// A policy set after approval gates the deployment of an APPROVED version...
	h.ok(org1Admin, "SetModelPolicy", "fraud", policyJSON(1, false, minThreshold("auc", 0.9)))
	h.refused(org1Operator, `CONFLICT: model "fraud" version "4" has 0 of the 1 passing evaluations that policy version 1 requires`,
		"RecordDeployment", "fraud", "4", "prod", "https://prod")
	// ...and of a DEPLOYED one to another environment; recording what an
	// environment already runs stays idempotent.
	h.refused(org1Operator, `CONFLICT: model "fraud" version "3" has 0 of the 1 passing evaluations that policy version 1 requires`,
		"RecordDeployment", "fraud", "3", "prod", "https://prod")
	h.ok(org1Operator, "RecordDeployment", "fraud", "3", "dev", "https://dev")
	if h.last.wrote() {
		t.Error("an idempotent deployment wrote")
	}
	h.ok(org2Evaluator, "RecordEvaluation", "fraud", "4", evaluationJSON(holdOut, "run-1", Metric{"auc", 0.8}))
	h.refused(org1Operator, `CONFLICT: model "fraud" version "4" has 0 of the 1 passing evaluations that policy version 1 requires; the latest evaluation FAILED: metric auc = 0.8 is below the minimum 0.9`,
		"RecordDeployment", "fraud", "4", "prod", "https://prod")
	h.ok(org2Evaluator, "RecordEvaluation", "fraud", "4", evaluationJSON(holdOut, "run-2", Metric{"auc", 0.95}))
	v := h.ok(org1Operator, "RecordDeployment", "fraud", "4", "prod", "https://prod").(*ModelVersion)
	if v.Status != StatusDeployed || len(v.Evaluations) != 2 {
		t.Errorf("status %s, %d evaluations", v.Status, len(v.Evaluations))
	}
}

func TestHistoryShowsEvaluations(t *testing.T) {
	h := newHarness(t)
	h.evaluationSetup()
	h.evaluateFraud3("run-1", Metric{"auc", 0.95})
	entries := h.ok(org1Auditor, "GetHistory", "fraud", "3").([]HistoryEntry)
	if len(entries) != 2 {
		t.Fatalf("%d history entries", len(entries))
	}
	if e := entries[1]; e.Action != "RecordEvaluation" || *e.Actor != org2Evaluator.actor() || e.Status != StatusRegistered {
		t.Errorf("history entry %+v", e)
	}
}

func TestVersionsWithoutEvaluationsKeepTheirBytes(t *testing.T) {
	h := newHarness(t)
	v := h.register("fraud", "3")
	stored := h.stored(modelVersionKey("fraud", "3"))
	if strings.Contains(stored, "evaluations") || toJSON(t, v) != stored {
		t.Errorf("a version without evaluations is stored as %s", stored)
	}
	if m := h.stored(modelKey("fraud")); strings.Contains(m, "policy") {
		t.Errorf("a model without policy is stored as %s", m)
	}
}

// TestEvaluationLedgerFailures: failures of the peer in the new functions
// surface as ledger errors, not refusals.
func TestEvaluationLedgerFailures(t *testing.T) {
	h := newHarness(t)
	h.evaluationSetup()
	policy := policyJSON(1, false, minThreshold("auc", 0.9))
	evaluation := evaluationJSON(holdOut, "run-1", Metric{"auc", 0.95})
	expectFailure := func(who *fakeIdentity, function string, args ...any) {
		t.Helper()
		_, err := h.invoke(who, function, args...)
		if err == nil || ClassOf(err) != "" || !strings.HasPrefix(err.Error(), "ledger: ") {
			t.Errorf("%s: got %v, want a ledger error", function, err)
		}
	}
	h.ledger.failKeys = map[string]bool{modelKey("fraud"): true}
	expectFailure(org1Admin, "SetModelPolicy", "fraud", policy)
	expectFailure(org2Evaluator, "RecordEvaluation", "fraud", "3", evaluation)
	expectFailure(org2Evaluator, "ListEvaluations", "fraud", "3")
	h.ledger.failKeys = map[string]bool{modelVersionKey("fraud", "3"): true}
	expectFailure(org2Evaluator, "RecordEvaluation", "fraud", "3", evaluation)
	expectFailure(org2Evaluator, "ListEvaluations", "fraud", "3")
	h.ledger.failKeys = map[string]bool{datasetKey(holdOut, "Org2MSP"): true}
	expectFailure(org2Evaluator, "RecordEvaluation", "fraud", "3", evaluation)
	other := digest("other")
	h.ledger.failKeys = map[string]bool{datasetKey(other, "Org1MSP"): true}
	expectFailure(org2Evaluator, "RecordEvaluation", "fraud", "3", evaluationJSON(other, "run-1", Metric{"auc", 0.95}))
	h.ledger.failKeys = map[string]bool{}
	h.ledger.failWrites = true
	expectFailure(org1Admin, "SetModelPolicy", "fraud", policy)
	expectFailure(org2Evaluator, "RecordEvaluation", "fraud", "3", evaluation)
	h.ledger.failWrites = false
	h.ok(org1Admin, "SetModelPolicy", "fraud", policy)
	h.ok(org2Evaluator, "RecordEvaluation", "fraud", "3", evaluation)
}

// TestPoliciesAndEvaluationsRoundTrip: a stored policy and evaluation read
// back as written (a bound of 0 stays set, an absent bound stays absent).
func TestPoliciesAndEvaluationsRoundTrip(t *testing.T) {
	h := newHarness(t)
	h.evaluationSetup()
	m := h.ok(org1Admin, "SetModelPolicy", "fraud", policyJSON(1, false, maxThreshold("bias", 0), minThreshold("auc", 0))).(*Model)
	var back Model
	if err := json.Unmarshal([]byte(h.stored(modelKey("fraud"))), &back); err != nil {
		t.Fatal(err)
	}
	th := back.Policy.Thresholds
	if len(th) != 2 || !th[0].HasMin || th[0].HasMax || th[0].Min != 0 || th[1].HasMin || !th[1].HasMax || th[1].Max != 0 {
		t.Errorf("thresholds read back as %+v", th)
	}
	if toJSON(t, back) != toJSON(t, m) {
		t.Errorf("model read back as %s", toJSON(t, back))
	}
	v := h.evaluateFraud3("run-1", Metric{"auc", -1}, Metric{"bias", 0.1})
	if e := lastEvaluation(v); e.Result != EvaluationFailed ||
		strings.Join(e.Failures, "|") != "metric auc = -1 is below the minimum 0|metric bias = 0.1 is above the maximum 0" {
		t.Errorf("evaluation %s", toJSON(t, e))
	}
	var th0 MetricThreshold
	if err := json.Unmarshal([]byte(`{"metric":1}`), &th0); err == nil {
		t.Error("a threshold with a numeric metric was read")
	}
}

// TestConcurrentEvaluationsConflict: two evaluations of one version
// endorsed together (CONTRACT.md, Evaluation gate): the second one is
// invalidated and changes nothing; submitted again, it is recorded.
func TestConcurrentEvaluationsConflict(t *testing.T) {
	h := newHarness(t)
	h.evaluationSetup()
	first, _, err1 := h.endorse(org2Evaluator, "RecordEvaluation", "fraud", "3", evaluationJSON(holdOut, "run-1", Metric{"auc", 0.9}))
	second, _, err2 := h.endorse(org2Evaluator, "RecordEvaluation", "fraud", "3", evaluationJSON(holdOut, "run-2", Metric{"auc", 0.9}))
	if err1 != nil || err2 != nil {
		t.Fatal(err1, err2)
	}
	if invalid := h.commitBlock(first, second); len(invalid) != 1 || invalid[0] != second.txID {
		t.Fatalf("invalidated %v", invalid)
	}
	if list := h.ok(org1Auditor, "ListEvaluations", "fraud", "3").([]Evaluation); len(list) != 1 || list[0].RunID != "run-1" {
		t.Fatalf("evaluations %s", toJSON(t, list))
	}
	h.ok(org2Evaluator, "RecordEvaluation", "fraud", "3", evaluationJSON(holdOut, "run-2", Metric{"auc", 0.9}))
}

func TestReviewersOfTheApprovalSetReadThePolicyThatGatesThem(t *testing.T) {
	h := newHarness(t)
	h.evaluationSetup()
	h.ok(org1Admin, "SetModelPolicy", "fraud", policyJSON(1, true, minThreshold("auc", 0.9)))
	for _, who := range []*fakeIdentity{org2Approver, org2Evaluator} {
		if m := h.ok(who, "GetModel", "fraud").(*Model); m.Policy == nil || m.Policy.Version != 1 {
			t.Errorf("%s of Org2MSP reads %s", who.role, toJSON(t, m))
		}
	}
	// Other roles of Org2, and reviewers of an organisation outside the approval set, may not.
	h.refused(org2Scientist, `NOT_FOUND: model "fraud"`, "GetModel", "fraud")
	h.refused(org3Evaluator, `NOT_FOUND: model "fraud"`, "GetModel", "fraud")
	h.refused(org2Approver, `NOT_FOUND: model "nothing"`, "GetModel", "nothing")
}

package registry

import (
	"fmt"
	"strings"
	"testing"
)

func TestRecordDeployment(t *testing.T) {
	h := newHarness(t)
	h.ok(org1Admin, "SetSettings", settingsJSON(false, "Org1MSP"))
	h.register("fraud", "3")
	h.refused(org1Operator, `CONFLICT: model "fraud" version "3" is REGISTERED; only APPROVED or DEPLOYED versions can be deployed`,
		"RecordDeployment", "fraud", "3", "prod", "https://prod.example/fraud")
	h.ok(org1Approver, "ApproveModelVersion", "fraud", "3", "")

	v := h.ok(org1Operator, "RecordDeployment", "fraud", "3", "prod", "https://prod.example/fraud").(*ModelVersion)
	if v.Status != StatusDeployed || len(v.Deployments) != 1 {
		t.Fatalf("status %s, deployments %+v", v.Status, v.Deployments)
	}
	want := Deployment{Actor: org1Operator.actor(), Endpoint: "https://prod.example/fraud", Environment: "prod",
		Time: v.LastChange.Time, TxID: v.LastChange.TxID}
	if v.Deployments[0] != want {
		t.Errorf("deployment %+v, want %+v", v.Deployments[0], want)
	}
	if ev := h.lastEvent(); ev.Name != EventModelVersionDeployed ||
		ev.Payload != `{"environment":"prod","mspId":"Org1MSP","name":"fraud","status":"DEPLOYED","txId":"`+v.LastChange.TxID+`","version":"3"}` {
		t.Errorf("event %s %s", ev.Name, ev.Payload)
	}

	// The same deployment again is idempotent.
	events := len(h.ledger.events)
	h.ok(org1Operator, "RecordDeployment", "fraud", "3", "prod", "https://prod.example/fraud")
	if len(h.ledger.events) != events {
		t.Error("a repeated deployment emitted an event")
	}

	// One version to several environments.
	v = h.ok(org1Operator, "RecordDeployment", "fraud", "3", "staging", "https://staging.example/fraud").(*ModelVersion)
	if len(v.Deployments) != 2 || v.Deployments[1].Environment != "staging" {
		t.Fatalf("deployments %+v", v.Deployments)
	}
	for _, env := range []string{"prod", "staging"} {
		d := h.ok(org1Auditor, "GetDeployment", env, "fraud").(*DeployedVersion)
		if d.Version != "3" || d.Status != StatusDeployed || d.Environment != env || d.Name != "fraud" || d.Actor != org1Operator.actor() {
			t.Errorf("GetDeployment(%s) = %+v", env, d)
		}
	}

	// Another version takes over prod; staging keeps version 3.
	h.register("fraud", "4")
	h.ok(org1Approver, "ApproveModelVersion", "fraud", "4", "")
	h.ok(org1Operator, "RecordDeployment", "fraud", "4", "prod", "https://prod.example/fraud")
	if d := h.ok(org1Scientist, "GetDeployment", "prod", "fraud").(*DeployedVersion); d.Version != "4" {
		t.Errorf("prod runs version %s, want 4", d.Version)
	}
	if d := h.ok(org1Scientist, "GetDeployment", "staging", "fraud").(*DeployedVersion); d.Version != "3" {
		t.Errorf("staging runs version %s, want 3", d.Version)
	}

	// Revoking the version staging runs makes its deployment NOT_FOUND.
	h.ok(org1Admin, "RevokeModelVersion", "fraud", "3", "bias found")
	h.refused(org1Auditor, `NOT_FOUND: deployment of model "fraud" in environment "staging" (version "3" was revoked)`,
		"GetDeployment", "staging", "fraud")
	if d := h.ok(org1Auditor, "GetDeployment", "prod", "fraud").(*DeployedVersion); d.Version != "4" || d.Status != StatusDeployed {
		t.Errorf("prod: %+v", d)
	}
}

func TestDeploymentAccessRules(t *testing.T) {
	h := newHarness(t)
	h.approved("fraud", "3")
	h.ok(org1Operator, "RecordDeployment", "fraud", "3", "prod", "https://prod.example/fraud")
	// An operator who cannot read the model learns nothing about it.
	h.refused(org2Operator, `NOT_FOUND: model "fraud" version "3"`,
		"RecordDeployment", "fraud", "3", "prod", "https://org2.example/fraud")

	// A read grant gives no right to deploy: Org2's operator cannot move
	// Org1's prod deployment, to another version or another endpoint.
	h.grant("fraud", "Org2MSP")
	h.register("fraud", "4")
	h.ok(org1Approver, "ApproveModelVersion", "fraud", "4", "")
	h.ok(org2Approver, "ApproveModelVersion", "fraud", "4", "")
	notOwner := `NOT_AUTHORIZED: only operators of Org1MSP, the owner of model "fraud", may record its deployments`
	h.refused(org2Operator, notOwner, "RecordDeployment", "fraud", "4", "prod", "https://org2.example/fraud")
	h.refused(org2Operator, notOwner, "RecordDeployment", "fraud", "3", "prod", "https://org2.example/fraud")
	h.refused(org2Operator, notOwner, "RecordDeployment", "fraud", "3", "org2-prod", "https://org2.example/fraud")
	d := h.ok(org2Operator, "GetDeployment", "prod", "fraud").(*DeployedVersion)
	if d.Version != "3" || d.Endpoint != "https://prod.example/fraud" || d.Actor != org1Operator.actor() {
		t.Errorf("prod after Org2's attempts: %+v", d)
	}

	// Withdrawing the grant hides the deployment from Org2 again.
	h.ok(org1Admin, "RevokeAccess", "fraud", "Org2MSP")
	h.refused(org2Operator, `NOT_FOUND: deployment of model "fraud" in environment "prod"`,
		"GetDeployment", "prod", "fraud")
	h.ok(org3Auditor, "GetDeployment", "prod", "fraud")

	long := "https://x.example/" + strings.Repeat("p", 2048)
	tests := []struct {
		name string
		who  *fakeIdentity
		args []any
		want string
	}{
		{"scientist", org1Scientist, []any{"fraud", "3", "prod", "https://e"},
			`NOT_AUTHORIZED: role "data_scientist" of Org1MSP may not call RecordDeployment (allowed: operator)`},
		{"admin", org1Admin, []any{"fraud", "3", "prod", "https://e"},
			`NOT_AUTHORIZED: role "admin" of Org1MSP may not call RecordDeployment (allowed: operator)`},
		{"environment upper case", org1Operator, []any{"fraud", "3", "Prod", "https://e"},
			"INVALID: environment: must be 1 to 63 characters of a-z, 0-9, '.', '_' and '-', starting with a letter or digit"},
		{"environment starting with a dash", org1Operator, []any{"fraud", "3", "-prod", "https://e"},
			"INVALID: environment: must be 1 to 63 characters of a-z, 0-9, '.', '_' and '-', starting with a letter or digit"},
		{"environment too long", org1Operator, []any{"fraud", "3", strings.Repeat("e", 64), "https://e"},
			"INVALID: environment: must be 1 to 63 characters of a-z, 0-9, '.', '_' and '-', starting with a letter or digit"},
		{"endpoint blank", org1Operator, []any{"fraud", "3", "prod", " "}, "INVALID: endpoint: must not be blank"},
		{"endpoint too long", org1Operator, []any{"fraud", "3", "prod", long}, "INVALID: endpoint: must be at most 2048 characters"},
		{"endpoint control", org1Operator, []any{"fraud", "3", "prod", "https://e\n"}, "INVALID: endpoint: must not contain control characters"},
		{"unknown version", org1Operator, []any{"fraud", "7", "prod", "https://e"}, `NOT_FOUND: model "fraud" version "7"`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			h.use(t)
			h.refused(tc.who, tc.want, "RecordDeployment", tc.args...)
		})
	}
	h.use(t)
	h.refused(org1Auditor, `NOT_FOUND: deployment of model "fraud" in environment "dev"`, "GetDeployment", "dev", "fraud")
	h.refused(org1Auditor, "INVALID: environment: must be 1 to 63 characters of a-z, 0-9, '.', '_' and '-', starting with a letter or digit",
		"GetDeployment", "", "fraud")
	h.refused(org1Auditor, "INVALID: name: must not contain '/' or ':'", "GetDeployment", "prod", "a/b")
}

func TestDeploymentsListOneEntryPerEnvironment(t *testing.T) {
	h := newHarness(t)
	h.approved("fraud", "3")
	for _, env := range []string{"staging", "prod", "dev"} {
		h.ok(org1Operator, "RecordDeployment", "fraud", "3", env, "https://"+env+".example/fraud")
	}
	v := h.ok(org1Operator, "RecordDeployment", "fraud", "3", "prod", "https://prod2.example/fraud").(*ModelVersion)
	var envs []string
	for _, d := range v.Deployments {
		envs = append(envs, d.Environment)
	}
	if toJSON(t, envs) != `["dev","prod","staging"]` {
		t.Fatalf("environments %v, want one entry each, sorted", envs)
	}
	if p := v.Deployments[1]; p.Endpoint != "https://prod2.example/fraud" || p.TxID != v.LastChange.TxID || p.Time != v.LastChange.Time {
		t.Errorf("prod entry %+v is not the latest deployment", p)
	}
	// The earlier deployment to prod is in the history.
	entries := h.ok(org1Auditor, "GetHistory", "fraud", "3").([]HistoryEntry)
	deployments := 0
	for _, e := range entries {
		if e.Action == "RecordDeployment" {
			deployments++
		}
	}
	if deployments != 4 {
		t.Errorf("%d RecordDeployment history entries, want 4", deployments)
	}

	// At most 100 environments per version; redeploying to a listed one
	// still works at the cap.
	for i := len(v.Deployments); i < maxDeploymentEnvironments; i++ {
		v = h.ok(org1Operator, "RecordDeployment", "fraud", "3", fmt.Sprintf("env-%03d", i), "https://e").(*ModelVersion)
	}
	if len(v.Deployments) != maxDeploymentEnvironments {
		t.Fatalf("%d deployments", len(v.Deployments))
	}
	h.refused(org1Operator, `CONFLICT: model "fraud" version "3" is already deployed to 100 environments, the most one version may list`,
		"RecordDeployment", "fraud", "3", "one-too-many", "https://e")
	v = h.ok(org1Operator, "RecordDeployment", "fraud", "3", "staging", "https://staging2.example/fraud").(*ModelVersion)
	if len(v.Deployments) != maxDeploymentEnvironments || v.Deployments[len(v.Deployments)-1].Endpoint != "https://staging2.example/fraud" {
		t.Errorf("redeploying at the cap: %d deployments, last %+v", len(v.Deployments), v.Deployments[len(v.Deployments)-1])
	}
}

package registry

import "testing"

func TestSettings(t *testing.T) {
	h := newHarness(t)
	if s := h.ok(org1Scientist, "GetSettings").(*Settings); toJSON(t, s) != `{"approvalOrgs":[],"strictDatasets":false}` {
		t.Errorf("default settings %s", toJSON(t, s))
	}
	h.refused(org1Approver, `NOT_AUTHORIZED: role "approver" of Org1MSP may not call SetSettings (allowed: admin)`,
		"SetSettings", settingsJSON(false, "Org1MSP"))

	// The first call names the caller's own organisation alone: no admin can
	// put another or a made-up organisation in the set, even while it is empty.
	before := h.ledger.snapshot()
	h.refused(org3Admin, "NOT_AUTHORIZED: an admin of Org3MSP may not add GhostMSP to the approval set; an organisation joins it only through its own admin",
		"SetSettings", settingsJSON(true, "Org3MSP", "GhostMSP"))
	h.refused(org3Admin, "NOT_AUTHORIZED: an admin of Org3MSP may not add Org1MSP to the approval set; an organisation joins it only through its own admin",
		"SetSettings", settingsJSON(true, "Org1MSP", "Org3MSP"))
	h.refused(org3Admin, "NOT_AUTHORIZED: organisation Org3MSP is not in the approval set; only the admins of its organisations may change the settings, "+
		"and an admin of another organisation may only add its own", "SetSettings", settingsJSON(true, "Org1MSP"))
	if toJSON(t, h.ledger.snapshot()) != toJSON(t, before) {
		t.Fatal("a refused first call changed the ledger")
	}
	s := h.ok(org1Admin, "SetSettings", settingsJSON(true, "Org1MSP")).(*Settings)
	if toJSON(t, s.ApprovalOrgs) != `["Org1MSP"]` || !s.StrictDatasets || s.LastChange == nil || s.LastChange.Actor != org1Admin.actor() {
		t.Fatalf("settings %s", toJSON(t, s))
	}
	if ev := h.lastEvent(); ev.Name != EventSettingsChanged || ev.Payload != `{"approvalOrgs":["Org1MSP"],"strictDatasets":true,"txId":"`+h.last.txID+`"}` {
		t.Errorf("event %s %s", ev.Name, ev.Payload)
	}
	// Org2 joins through its own admin.
	s = h.ok(org2Admin, "SetSettings", settingsJSON(true, "Org2MSP", "Org1MSP")).(*Settings)
	if toJSON(t, s.ApprovalOrgs) != `["Org1MSP","Org2MSP"]` || !s.StrictDatasets || s.LastChange.Actor != org2Admin.actor() {
		t.Fatalf("settings %s", toJSON(t, s))
	}
	if ev := h.lastEvent(); ev.Name != EventSettingsChanged || ev.Payload != `{"approvalOrgs":["Org1MSP","Org2MSP"],"strictDatasets":true,"txId":"`+h.last.txID+`"}` {
		t.Errorf("event %s %s", ev.Name, ev.Payload)
	}
	if got := h.ok(org1Auditor, "GetSettings").(*Settings); toJSON(t, got) != toJSON(t, s) {
		t.Errorf("GetSettings = %s", toJSON(t, got))
	}

	// Once set, only admins of the approval set change the settings, and an
	// organisation joins or leaves the set only through its own admin.
	notMember := "NOT_AUTHORIZED: organisation Org3MSP is not in the approval set; only the admins of its organisations may change the settings, " +
		"and an admin of another organisation may only add its own"
	h.refused(org3Admin, notMember, "SetSettings", settingsJSON(false, "Org1MSP", "Org2MSP"))
	h.refused(org3Admin, notMember, "SetSettings", settingsJSON(true, "Org1MSP", "Org2MSP"))
	h.refused(org3Admin, "NOT_AUTHORIZED: an admin of Org3MSP may not remove Org1MSP from the approval set; only an admin of Org1MSP may",
		"SetSettings", settingsJSON(true, "Org3MSP"))
	h.refused(org3Admin, "NOT_AUTHORIZED: an admin of Org3MSP may not add GhostMSP to the approval set; an organisation joins it only through its own admin",
		"SetSettings", settingsJSON(true, "Org1MSP", "Org2MSP", "Org3MSP", "GhostMSP"))
	h.refused(org1Admin, "NOT_AUTHORIZED: an admin of Org1MSP may not add GhostMSP to the approval set; an organisation joins it only through its own admin",
		"SetSettings", settingsJSON(true, "Org1MSP", "Org2MSP", "GhostMSP"))
	h.refused(org1Admin, "NOT_AUTHORIZED: an admin of Org1MSP may not add Org3MSP to the approval set; an organisation joins it only through its own admin",
		"SetSettings", settingsJSON(true, "Org1MSP", "Org2MSP", "Org3MSP"))
	events := len(h.ledger.events)
	h.ok(org2Admin, "SetSettings", settingsJSON(true, "Org1MSP", "Org2MSP"))
	if len(h.ledger.events) != events {
		t.Error("setting the same values emitted an event")
	}
	// Any admin of the set toggles strictDatasets.
	if s = h.ok(org2Admin, "SetSettings", settingsJSON(false, "Org1MSP", "Org2MSP")).(*Settings); s.StrictDatasets {
		t.Errorf("settings %s", toJSON(t, s))
	}
	// Org3 joins through its own admin, toggling strictDatasets at once.
	s = h.ok(org3Admin, "SetSettings", settingsJSON(true, "Org1MSP", "Org2MSP", "Org3MSP")).(*Settings)
	if toJSON(t, s.ApprovalOrgs) != `["Org1MSP","Org2MSP","Org3MSP"]` || !s.StrictDatasets || s.LastChange.Actor != org3Admin.actor() {
		t.Errorf("after Org3 joined: %s", toJSON(t, s))
	}

	// No organisation can drop another from the approval set; each may leave it.
	h.refused(org1Admin, "NOT_AUTHORIZED: an admin of Org1MSP may not remove Org2MSP from the approval set; only an admin of Org2MSP may",
		"SetSettings", settingsJSON(false, "Org1MSP", "Org3MSP"))
	h.refused(org1Admin, "NOT_AUTHORIZED: an admin of Org1MSP may not remove Org2MSP from the approval set; only an admin of Org2MSP may",
		"SetSettings", settingsJSON(false, "Org1MSP"))
	h.refused(org3Admin, "NOT_AUTHORIZED: an admin of Org3MSP may not add GhostMSP to the approval set; an organisation joins it only through its own admin",
		"SetSettings", settingsJSON(false, "Org1MSP", "Org2MSP", "GhostMSP"))
	s = h.ok(org3Admin, "SetSettings", settingsJSON(false, "Org1MSP", "Org2MSP")).(*Settings)
	if toJSON(t, s.ApprovalOrgs) != `["Org1MSP","Org2MSP"]` || s.StrictDatasets {
		t.Errorf("after Org3 left: %s", toJSON(t, s))
	}
	h.refused(org3Admin, notMember, "SetSettings", settingsJSON(true, "Org1MSP", "Org2MSP"))
	h.ok(org3Admin, "SetSettings", settingsJSON(false, "Org1MSP", "Org2MSP", "Org3MSP"))

	tests := []struct{ name, settings, want string }{
		{"empty set", `{"approvalOrgs":[]}`, "INVALID: approvalOrgs: must list 1 to 64 MSP ids"},
		{"no set", `{"strictDatasets":true}`, "INVALID: approvalOrgs: must list 1 to 64 MSP ids"},
		{"duplicate", `{"approvalOrgs":["Org1MSP","Org2MSP","Org1MSP"]}`, "INVALID: approvalOrgs[2]: duplicates approvalOrgs[0]"},
		{"bad MSP id", `{"approvalOrgs":["Org1MSP","-x"]}`,
			"INVALID: approvalOrgs[1]: must be 1 to 128 characters of ASCII letters, digits, '.', '_' and '-', starting with a letter or digit"},
		{"strict as string", `{"approvalOrgs":["Org1MSP"],"strictDatasets":"yes"}`, "INVALID: strictDatasets: must be true or false"},
		{"unknown field", `{"approvalOrgs":["Org1MSP"],"quorum":1}`, "INVALID: quorum: unknown field"},
		{"not JSON", `approvalOrgs`, "INVALID: settings: is not valid JSON (invalid character 'a' looking for beginning of value, after byte 1)"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			h.use(t)
			h.refused(org1Admin, tc.want, "SetSettings", tc.settings)
		})
	}
}

package registry

import (
	"path"
	"sort"
	"strconv"
	"strings"
	"unicode/utf8"
)

// Limits of CONTRACT.md ("Limits" and "Field rules"). TestLimitsFile
// writes every max* constant of the package into sdk/registry/limits.json,
// which the Python side reads (sdk/registry/limits.py), and fails when that
// file is out of date.
const (
	maxModelNameChars     = 256
	maxVersionDigits      = 10
	maxEnvironmentChars   = 63
	maxManifestFiles      = 10000
	maxParams             = 1000
	maxMetrics            = 1000
	maxLibraries          = 200
	maxDatasetRefs        = 100
	maxManifestPathChars  = 4096
	maxFileSize           = 1 << 53
	maxMLflowKeyChars     = 250
	maxParamValueChars    = 6000
	maxLabelChars         = 256
	maxURIChars           = 2048
	maxStorageKeyChars    = 1024
	maxSchemaSummaryChars = 65536
	maxNoteChars          = 1024
	maxMSPIDChars         = 128
	maxApprovalOrgs       = 64
	maxPageSize           = 1000
	maxThresholds         = 50
	maxRequiredPasses     = 10
	maxEvaluations        = 100
	// maxOrgEvaluations caps the evaluations one organisation records on a
	// version, so no organisation can fill another's share of maxEvaluations.
	maxOrgEvaluations = 10
	// maxEvaluationMetrics caps the metrics of one evaluation, which the
	// version record holds: with maxEvaluations, the record stays far below
	// a block.
	maxEvaluationMetrics = 100
)

// parseModelVersion decodes, validates and normalises the argument of
// RegisterModelVersion: lists come back sorted and never nil, so the same
// content always marshals to the same bytes.
func parseModelVersion(data []byte) (*ModelVersionInput, error) {
	var in ModelVersionInput
	if err := decodeStrict("record", data, &in, modelVersionListLimit); err != nil {
		return nil, err
	}
	if err := validateModelVersion(&in); err != nil {
		return nil, err
	}
	normalizeModelVersion(&in)
	return &in, nil
}

// modelVersionListLimit bounds the lists of RegisterModelVersion's
// argument. decodeStrict enforces the bounds while it reads the lists, so
// an oversized list is refused before the rest of it is parsed; the other
// list rules are checked after decoding, by validateModelVersion.
func modelVersionListLimit(path string) (int, string) {
	switch path {
	case "manifest.files":
		return maxManifestFiles, "must list 1 to 10000 files"
	case "params":
		return maxParams, "must list at most 1000 params"
	case "metrics":
		return maxMetrics, "must list at most 1000 metrics"
	case "libraries":
		return maxLibraries, "must list at most 200 libraries"
	case "datasets":
		return maxDatasetRefs, "must list at most 100 datasets"
	}
	return 0, ""
}

func validateModelVersion(in *ModelVersionInput) error {
	checks := []func() error{
		func() error { return validateNewModelName("name", in.Name) },
		func() error { return validateVersion("version", in.Version) },
		func() error { return validateDigest("modelDigest", in.ModelDigest) },
		func() error { return validateDigest("manifestDigest", in.ManifestDigest) },
		func() error { return validateManifest(in.Manifest) },
		func() error { return validateFramework(in.Framework) },
		func() error { return validateLibraries(in.Libraries) },
		func() error { return validateParams(in.Params) },
		func() error { return validateMetrics(in.Metrics) },
		func() error { return validateDatasetRefs(in.Datasets) },
		func() error { return validateMLflow(in.MLflow) },
		func() error { return validateStorage(in.Storage) },
		// Last: a record is refused for its digests only when every field is well formed.
		func() error { return validateManifestDigests(in) },
	}
	return firstError(checks)
}

func firstError(checks []func() error) error {
	for _, check := range checks {
		if err := check(); err != nil {
			return err
		}
	}
	return nil
}

func normalizeModelVersion(in *ModelVersionInput) {
	in.Manifest.Files = nonNil(in.Manifest.Files)
	sort.Slice(in.Manifest.Files, func(i, j int) bool { return in.Manifest.Files[i].Path < in.Manifest.Files[j].Path })
	in.Libraries = nonNil(in.Libraries)
	sort.Slice(in.Libraries, func(i, j int) bool { return in.Libraries[i].Name < in.Libraries[j].Name })
	in.Params = nonNil(in.Params)
	sort.Slice(in.Params, func(i, j int) bool { return in.Params[i].Key < in.Params[j].Key })
	in.Metrics = nonNil(in.Metrics)
	sort.Slice(in.Metrics, func(i, j int) bool { return in.Metrics[i].Key < in.Metrics[j].Key })
	in.Datasets = nonNil(in.Datasets)
	sort.Slice(in.Datasets, func(i, j int) bool { return in.Datasets[i].SHA256 < in.Datasets[j].SHA256 })
}

// nonNil turns a nil slice into an empty one: records hold [] rather than
// null, as the contract metadata requires.
func nonNil[T any](s []T) []T {
	if s == nil {
		return []T{}
	}
	return s
}

// parseDataset decodes and validates the argument of RegisterDataset.
func parseDataset(data []byte) (*DatasetInput, error) {
	var in DatasetInput
	if err := decodeStrict("dataset", data, &in, nil); err != nil {
		return nil, err
	}
	err := firstError([]func() error{
		func() error { return validateLabel("name", in.Name) },
		func() error { return validateDigest("sha256", in.SHA256) },
		func() error { return validateLine("source", in.Source, maxURIChars, true) },
		func() error { return validateNote("schemaSummary", in.SchemaSummary, maxSchemaSummaryChars, false) },
	})
	if err != nil {
		return nil, err
	}
	return &in, nil
}

// parseSettings decodes, validates and normalises the argument of
// SetSettings.
func parseSettings(data []byte) (*SettingsInput, error) {
	var in SettingsInput
	if err := decodeStrict("settings", data, &in, nil); err != nil {
		return nil, err
	}
	if len(in.ApprovalOrgs) < 1 || len(in.ApprovalOrgs) > maxApprovalOrgs {
		return nil, invalid("approvalOrgs", "must list 1 to 64 MSP ids")
	}
	for i, org := range in.ApprovalOrgs {
		if err := validateMSPID(indexed("approvalOrgs", i), org); err != nil {
			return nil, err
		}
	}
	if err := checkUnique(in.ApprovalOrgs, func(s string) string { return s }, "approvalOrgs", ""); err != nil {
		return nil, err
	}
	sort.Strings(in.ApprovalOrgs)
	return &in, nil
}

// parsePolicy decodes, validates and normalises the argument of
// SetModelPolicy: thresholds come back sorted by metric.
func parsePolicy(data []byte) (*ModelPolicyInput, error) {
	var in ModelPolicyInput
	if err := decodeStrict("policy", data, &in, policyListLimit); err != nil {
		return nil, err
	}
	if in.RequiredPasses < 1 || in.RequiredPasses > maxRequiredPasses {
		return nil, invalid("requiredPasses", "must be from 1 to 10")
	}
	if len(in.Thresholds) < 1 {
		return nil, invalid("thresholds", "must list 1 to 50 thresholds")
	}
	for i, th := range in.Thresholds {
		p := indexed("thresholds", i)
		if err := validateMLflowKey(p+".metric", th.Metric); err != nil {
			return nil, err
		}
		if th.Min == nil && th.Max == nil {
			return nil, invalid(p, "must set min, max or both")
		}
		if th.Min != nil && th.Max != nil && *th.Min > *th.Max {
			return nil, invalid(p, "min must not be greater than max")
		}
	}
	if err := checkUnique(in.Thresholds, func(th MetricThresholdInput) string { return th.Metric }, "thresholds", ".metric"); err != nil {
		return nil, err
	}
	sort.Slice(in.Thresholds, func(i, j int) bool { return in.Thresholds[i].Metric < in.Thresholds[j].Metric })
	return &in, nil
}

// policyListLimit bounds the thresholds of SetModelPolicy's argument.
func policyListLimit(path string) (int, string) {
	if path == "thresholds" {
		return maxThresholds, "must list 1 to 50 thresholds"
	}
	return 0, ""
}

// parseEvaluation decodes, validates and normalises the argument of
// RecordEvaluation: metrics come back sorted by key.
func parseEvaluation(data []byte) (*EvaluationInput, error) {
	var in EvaluationInput
	if err := decodeStrict("evaluation", data, &in, evaluationListLimit); err != nil {
		return nil, err
	}
	err := firstError([]func() error{
		func() error { return validateDigest("artifactsDigest", in.ArtifactsDigest) },
		func() error { return validateLine("artifactsLocation", in.ArtifactsLocation, maxURIChars, false) },
		func() error { return validateDigest("datasetSha256", in.DatasetSHA256) },
		func() error {
			if len(in.Metrics) < 1 {
				return invalid("metrics", "must list 1 to 100 metrics")
			}
			return validateMetrics(in.Metrics)
		},
		func() error { return validateLine("runId", in.RunID, maxLabelChars, true) },
	})
	if err != nil {
		return nil, err
	}
	sort.Slice(in.Metrics, func(i, j int) bool { return in.Metrics[i].Key < in.Metrics[j].Key })
	return &in, nil
}

// evaluationListLimit bounds the metrics of RecordEvaluation's argument.
func evaluationListLimit(path string) (int, string) {
	if path == "metrics" {
		return maxEvaluationMetrics, "must list 1 to 100 metrics"
	}
	return 0, ""
}

func indexed(list string, i int) string {
	return list + "[" + strconv.Itoa(i) + "]"
}

// checkUnique refuses the second of two items with the same key, naming both.
func checkUnique[T any](items []T, key func(T) string, list, field string) error {
	first := make(map[string]int, len(items))
	for i, item := range items {
		k := key(item)
		if j, dup := first[k]; dup {
			return invalid(indexed(list, i)+field, "duplicates "+indexed(list, j)+field)
		}
		first[k] = i
	}
	return nil
}

// validateNewModelName applies the name class of model versions
// registered from 1.3.0 on: the rules of validateModelName, then no Unicode
// format character (category Cf, which holds the bidi controls and the
// zero-width characters) and no space character at either end, so that a
// name shows as what it is. The bridge applies the same class, written once
// in Python in sdk/registry/names.py; testdata/name_vectors.json proves both
// agree.
func validateNewModelName(p, name string) error {
	if err := validateModelName(p, name); err != nil {
		return err
	}
	first, _ := utf8.DecodeRuneInString(name)
	last, _ := utf8.DecodeLastRuneInString(name)
	switch {
	case strings.IndexFunc(name, isFormatChar) >= 0:
		return invalid(p, "must not contain Unicode format characters (Cf: bidi controls, zero-width characters)")
	case isSpaceChar(first) || isSpaceChar(last):
		return invalid(p, "must not start or end with a space")
	}
	return nil
}

// validateModelName applies MLflow's registered-model name rules, plus
// those the ledger keys need: the rules every name registered before 1.3.0
// passed. Functions that look a model up by name apply these (so that the
// versions registered before 1.3.0 stay reachable); RegisterModelVersion
// applies validateNewModelName.
func validateModelName(p, name string) error {
	switch {
	case !utf8.ValidString(name):
		return invalid(p, "must be valid UTF-8")
	case strings.TrimFunc(name, isSpaceChar) == "":
		return invalid(p, "must not be blank")
	case utf8.RuneCountInString(name) > maxModelNameChars:
		return invalid(p, "must be at most 256 characters")
	case strings.ContainsAny(name, "/:"):
		return invalid(p, "must not contain '/' or ':'")
	case hasControl(name):
		return invalid(p, "must not contain control characters")
	case strings.ContainsRune(name, utf8.MaxRune):
		return invalid(p, "must not contain U+10FFFF")
	case name == "." || strings.HasPrefix(name, ".."):
		return invalid(p, "must not be '.' or start with '..'")
	}
	return nil
}

func validateVersion(p, version string) error {
	if len(version) < 1 || len(version) > maxVersionDigits || version[0] == '0' || !allBytes(version, isDigit) {
		return invalid(p, "must be a positive decimal integer without leading zeros, at most 10 digits")
	}
	return nil
}

func validateDigest(p, digest string) error {
	if len(digest) != 64 || !allBytes(digest, isLowerHex) {
		return invalid(p, "must be 64 lowercase hex characters")
	}
	return nil
}

func validateManifest(m Manifest) error {
	if len(m.Files) < 1 || len(m.Files) > maxManifestFiles {
		return invalid("manifest.files", "must list 1 to 10000 files")
	}
	for i, f := range m.Files {
		p := indexed("manifest.files", i)
		if err := validateManifestPath(p+".path", f.Path); err != nil {
			return err
		}
		if err := validateDigest(p+".sha256", f.SHA256); err != nil {
			return err
		}
		if f.Size < 0 || f.Size > maxFileSize {
			return invalid(p+".size", "must be from 0 to 9007199254740992")
		}
	}
	return checkUnique(m.Files, func(f ManifestFile) string { return f.Path }, "manifest.files", ".path")
}

func validateManifestPath(p, file string) error {
	switch {
	case file == "":
		return invalid(p, "must not be empty")
	case utf8.RuneCountInString(file) > maxManifestPathChars:
		return invalid(p, "must be at most 4096 characters")
	case hasControl(file):
		return invalid(p, "must not contain control characters")
	case strings.Contains(file, `\`):
		return invalid(p, "must not contain backslashes")
	case strings.HasPrefix(file, "/"):
		return invalid(p, "must be relative")
	}
	for _, segment := range strings.Split(file, "/") {
		switch segment {
		case "":
			return invalid(p, "must not contain empty segments")
		case ".", "..":
			return invalid(p, "must not contain '.' or '..' segments")
		}
	}
	return nil
}

func validateFramework(f Framework) error {
	if err := validateLabel("framework.name", f.Name); err != nil {
		return err
	}
	return validateLabel("framework.version", f.Version)
}

func validateLibraries(libs []Library) error {
	for i, lib := range libs {
		p := indexed("libraries", i)
		if err := validateLabel(p+".name", lib.Name); err != nil {
			return err
		}
		if err := validateLabel(p+".version", lib.Version); err != nil {
			return err
		}
	}
	return checkUnique(libs, func(l Library) string { return l.Name }, "libraries", ".name")
}

func validateParams(params []Param) error {
	for i, param := range params {
		p := indexed("params", i)
		if err := validateMLflowKey(p+".key", param.Key); err != nil {
			return err
		}
		if utf8.RuneCountInString(param.Value) > maxParamValueChars {
			return invalid(p+".value", "must be at most 6000 characters")
		}
	}
	return checkUnique(params, func(p Param) string { return p.Key }, "params", ".key")
}

func validateMetrics(metrics []Metric) error {
	for i, metric := range metrics {
		if err := validateMLflowKey(indexed("metrics", i)+".key", metric.Key); err != nil {
			return err
		}
		// Values are finite and not subnormal: decodeStrict refuses the rest.
	}
	return checkUnique(metrics, func(m Metric) string { return m.Key }, "metrics", ".key")
}

// validateMLflowKey applies MLflow's rules for param and metric keys.
func validateMLflowKey(p, key string) error {
	if len(key) < 1 || len(key) > maxMLflowKeyChars || !allBytes(key, isMLflowKeyByte) {
		return invalid(p, "must be 1 to 250 characters of ASCII letters, digits, '_', '-', '.', '/', ':' and space")
	}
	if clean := path.Clean(key); clean != key || clean == "." || strings.HasPrefix(clean, "..") || strings.HasPrefix(clean, "/") {
		return invalid(p, "must not resolve to another name when read as a path")
	}
	return nil
}

func validateDatasetRefs(refs []DatasetRefInput) error {
	for i, ref := range refs {
		p := indexed("datasets", i)
		if err := validateLabel(p+".name", ref.Name); err != nil {
			return err
		}
		if err := validateDigest(p+".sha256", ref.SHA256); err != nil {
			return err
		}
		if err := validateLine(p+".source", ref.Source, maxURIChars, true); err != nil {
			return err
		}
	}
	return checkUnique(refs, func(r DatasetRefInput) string { return r.SHA256 }, "datasets", ".sha256")
}

func validateMLflow(m MLflow) error {
	return firstError([]func() error{
		func() error { return validateLine("mlflow.modelId", m.ModelID, maxLabelChars, false) },
		func() error { return validateLine("mlflow.runId", m.RunID, maxLabelChars, false) },
		func() error { return validateLine("mlflow.source", m.Source, maxURIChars, false) },
		func() error { return validateLine("mlflow.user", m.User, maxLabelChars, false) },
	})
}

func validateStorage(s Storage) error {
	if !isBucketName(s.Bucket) {
		return invalid("storage.bucket", "must be 3 to 63 characters of a-z, 0-9, '.' and '-', starting and ending with a letter or digit")
	}
	if err := validateLine("storage.key", s.Key, maxStorageKeyChars, true); err != nil {
		return err
	}
	if err := validateDigest("storage.sha256", s.SHA256); err != nil {
		return err
	}
	return validateLine("storage.versionId", s.VersionID, maxStorageKeyChars, false)
}

// validateLabel checks a short required one-line text: a name or a version.
func validateLabel(p, s string) error {
	return validateLine(p, s, maxLabelChars, true)
}

// validateLine checks a one-line text: at most max characters, no control
// characters, not blank when required.
func validateLine(p, s string, max int, required bool) error {
	if err := validateNote(p, s, max, required); err != nil {
		return err
	}
	if hasControl(s) {
		return invalid(p, "must not contain control characters")
	}
	return nil
}

// validateNote checks a free text: at most max characters, not blank when
// required.
func validateNote(p, s string, max int, required bool) error {
	if required && strings.TrimSpace(s) == "" {
		return invalid(p, "must not be blank")
	}
	if utf8.RuneCountInString(s) > max {
		return invalid(p, "must be at most "+strconv.Itoa(max)+" characters")
	}
	return nil
}

func validateMSPID(p, id string) error {
	if len(id) < 1 || len(id) > maxMSPIDChars || !isAlnum(id[0]) || !allBytes(id, isMSPIDByte) {
		return invalid(p, "must be 1 to 128 characters of ASCII letters, digits, '.', '_' and '-', starting with a letter or digit")
	}
	return nil
}

func validateEnvironment(p, env string) error {
	if len(env) < 1 || len(env) > maxEnvironmentChars || !isLowerAlnum(env[0]) || !allBytes(env, isEnvironmentByte) {
		return invalid(p, "must be 1 to 63 characters of a-z, 0-9, '.', '_' and '-', starting with a letter or digit")
	}
	return nil
}

func validatePageSize(pageSize int32) error {
	if pageSize < 1 || pageSize > maxPageSize {
		return invalid("pageSize", "must be from 1 to 1000")
	}
	return nil
}

func isBucketName(s string) bool {
	return len(s) >= 3 && len(s) <= 63 && isLowerAlnum(s[0]) && isLowerAlnum(s[len(s)-1]) &&
		allBytes(s, func(b byte) bool { return isLowerAlnum(b) || b == '.' || b == '-' })
}

// isFormatChar reports whether r is a Unicode format character (category
// Cf) of Unicode 15.0, written out so that the answer never depends on the
// Go release (peers built with different releases must agree, and so must
// the Python side). Cf holds every bidi control (U+061C, U+200E, U+200F,
// U+202A–U+202E, U+2066–U+2069). TestIsFormatCharIsUnicodeCf checks the
// table against the unicode package of the Go release that runs the tests.
func isFormatChar(r rune) bool {
	switch {
	case r == 0x00AD, r >= 0x0600 && r <= 0x0605, r == 0x061C, r == 0x06DD, r == 0x070F,
		r >= 0x0890 && r <= 0x0891, r == 0x08E2, r == 0x180E, r >= 0x200B && r <= 0x200F,
		r >= 0x202A && r <= 0x202E, r >= 0x2060 && r <= 0x2064, r >= 0x2066 && r <= 0x206F,
		r == 0xFEFF, r >= 0xFFF9 && r <= 0xFFFB, r == 0x110BD, r == 0x110CD,
		r >= 0x13430 && r <= 0x1343F, r >= 0x1BCA0 && r <= 0x1BCA3, r >= 0x1D173 && r <= 0x1D17A,
		r == 0xE0001, r >= 0xE0020 && r <= 0xE007F:
		return true
	}
	return false
}

// isSpaceChar reports whether r has the Unicode White_Space property (a
// stable set; the controls among them, tab to carriage return and U+0085,
// included): a name made of them only is blank.
func isSpaceChar(r rune) bool {
	switch {
	case r >= 0x0009 && r <= 0x000D, r == 0x0020, r == 0x0085, r == 0x00A0, r == 0x1680,
		r >= 0x2000 && r <= 0x200A, r == 0x2028, r == 0x2029, r == 0x202F, r == 0x205F, r == 0x3000:
		return true
	}
	return false
}

// hasControl reports whether s holds a control character (Unicode Cc, a
// fixed set, so the answer never depends on the Go release).
func hasControl(s string) bool {
	for _, r := range s {
		if r < 0x20 || (r >= 0x7f && r < 0xa0) {
			return true
		}
	}
	return false
}

func allBytes(s string, ok func(byte) bool) bool {
	for i := 0; i < len(s); i++ {
		if !ok(s[i]) {
			return false
		}
	}
	return true
}

func isDigit(b byte) bool      { return b >= '0' && b <= '9' }
func isLowerHex(b byte) bool   { return isDigit(b) || (b >= 'a' && b <= 'f') }
func isLowerAlnum(b byte) bool { return isDigit(b) || (b >= 'a' && b <= 'z') }
func isAlnum(b byte) bool      { return isLowerAlnum(b) || (b >= 'A' && b <= 'Z') }

func isMLflowKeyByte(b byte) bool { return isAlnum(b) || strings.IndexByte("_-./: ", b) >= 0 }
func isMSPIDByte(b byte) bool     { return isAlnum(b) || strings.IndexByte("._-", b) >= 0 }
func isEnvironmentByte(b byte) bool {
	return isLowerAlnum(b) || strings.IndexByte("._-", b) >= 0
}

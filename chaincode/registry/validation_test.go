package registry

import (
	"encoding/json"
	"math"
	"strconv"
	"strings"
	"testing"
)

// TestRegisterModelVersionValidation checks every input rule of
// RegisterModelVersion and its exact message.
func TestRegisterModelVersionValidation(t *testing.T) {
	long := func(n int, c string) string { return strings.Repeat(c, n) }
	set := func(path []any, key string, value any) func(map[string]any) {
		return func(m map[string]any) { sub(m, path...)[key] = value }
	}
	top := func(key string, value any) func(map[string]any) { return set(nil, key, value) }
	files := func(n int) []any {
		out := make([]any, n)
		for i := range out {
			// Short paths: 10,000 entries must fit in the 1 MiB argument.
			out[i] = map[string]any{"path": strconv.FormatInt(int64(i), 36), "sha256": digest("f"), "size": 1}
		}
		return out
	}
	list := func(n int, item func(i int) map[string]any) []any {
		out := make([]any, n)
		for i := range out {
			out[i] = item(i)
		}
		return out
	}
	params := func(n int) []any {
		return list(n, func(i int) map[string]any { return map[string]any{"key": "p" + strconv.Itoa(i), "value": "v"} })
	}
	metrics := func(n int) []any {
		return list(n, func(i int) map[string]any { return map[string]any{"key": "m" + strconv.Itoa(i), "value": 0.5} })
	}
	libraries := func(n int) []any {
		return list(n, func(i int) map[string]any { return map[string]any{"name": "lib" + strconv.Itoa(i), "version": "1"} })
	}
	datasets := func(n int) []any {
		return list(n, func(i int) map[string]any {
			return map[string]any{"name": "d", "sha256": digest("d" + strconv.Itoa(i)), "source": "s3://d"}
		})
	}
	// number sets a metric value or a file size to a literal, verbatim.
	metricValue := func(lit string) func(map[string]any) { return set([]any{"metrics", 0}, "value", json.Number(lit)) }
	tests := []struct {
		name string
		edit func(map[string]any)
		want string
	}{
		{"name blank", top("name", "  "), "INVALID: name: must not be blank"},
		{"name missing", func(m map[string]any) { delete(m, "name") }, "INVALID: name: must not be blank"},
		{"name too long", top("name", long(257, "n")), "INVALID: name: must be at most 256 characters"},
		{"name 256 characters", top("name", long(256, "é")), ""},
		{"name slash", top("name", "a/b"), "INVALID: name: must not contain '/' or ':'"},
		{"name colon", top("name", "a:b"), "INVALID: name: must not contain '/' or ':'"},
		{"name control", top("name", "a\nb"), "INVALID: name: must not contain control characters"},
		{"name max rune", top("name", "a\U0010FFFFb"), "INVALID: name: must not contain U+10FFFF"},
		{"name dot", top("name", "."), "INVALID: name: must not be '.' or start with '..'"},
		{"name dot dot", top("name", "..x"), "INVALID: name: must not be '.' or start with '..'"},
		{"name with spaces and dots", top("name", "fraud model.v2"), ""},
		{"version zero", top("version", "0"), "INVALID: version: must be a positive decimal integer without leading zeros, at most 10 digits"},
		{"version leading zero", top("version", "03"), "INVALID: version: must be a positive decimal integer without leading zeros, at most 10 digits"},
		{"version 11 digits", top("version", "12345678901"), "INVALID: version: must be a positive decimal integer without leading zeros, at most 10 digits"},
		{"version 10 digits", top("version", "9999999999"), ""},
		{"version sign", top("version", "+3"), "INVALID: version: must be a positive decimal integer without leading zeros, at most 10 digits"},
		{"version number", top("version", 3), "INVALID: version: must be a string"},
		{"modelDigest upper", top("modelDigest", strings.ToUpper(digest("m"))), "INVALID: modelDigest: must be 64 lowercase hex characters"},
		{"modelDigest short", top("modelDigest", digest("m")[:63]), "INVALID: modelDigest: must be 64 lowercase hex characters"},
		{"manifestDigest", top("manifestDigest", "sha256:"+digest("m")), "INVALID: manifestDigest: must be 64 lowercase hex characters"},
		{"manifest empty", set([]any{"manifest"}, "files", []any{}), "INVALID: manifest.files: must list 1 to 10000 files"},
		{"manifest missing", func(m map[string]any) { delete(m, "manifest") }, "INVALID: manifest.files: must list 1 to 10000 files"},
		{"manifest 10000 files", set([]any{"manifest"}, "files", files(10000)), ""},
		{"manifest 10001 files", set([]any{"manifest"}, "files", files(10001)), "INVALID: manifest.files: must list 1 to 10000 files"},
		{"manifest 10001 files with bad content", set([]any{"manifest"}, "files", append(files(10000), "not a file")), "INVALID: manifest.files: must list 1 to 10000 files"},
		{"params 1000", top("params", params(1000)), ""},
		{"params 1001", top("params", params(1001)), "INVALID: params: must list at most 1000 params"},
		{"metrics 1000", top("metrics", metrics(1000)), ""},
		{"metrics 1001", top("metrics", metrics(1001)), "INVALID: metrics: must list at most 1000 metrics"},
		{"libraries 200", top("libraries", libraries(200)), ""},
		{"libraries 201", top("libraries", libraries(201)), "INVALID: libraries: must list at most 200 libraries"},
		{"datasets 100", top("datasets", datasets(100)), ""},
		{"datasets 101", top("datasets", datasets(101)), "INVALID: datasets: must list at most 100 datasets"},
		{"file path empty", set([]any{"manifest", "files", 1}, "path", ""), "INVALID: manifest.files[1].path: must not be empty"},
		{"file path dot dot", set([]any{"manifest", "files", 1}, "path", "a/../b"), "INVALID: manifest.files[1].path: must not contain '.' or '..' segments"},
		{"file path dot", set([]any{"manifest", "files", 1}, "path", "./b"), "INVALID: manifest.files[1].path: must not contain '.' or '..' segments"},
		{"file path empty segment", set([]any{"manifest", "files", 1}, "path", "a//b"), "INVALID: manifest.files[1].path: must not contain empty segments"},
		{"file path trailing slash", set([]any{"manifest", "files", 1}, "path", "a/"), "INVALID: manifest.files[1].path: must not contain empty segments"},
		{"file path absolute", set([]any{"manifest", "files", 1}, "path", "/etc/passwd"), "INVALID: manifest.files[1].path: must be relative"},
		{"file path backslash", set([]any{"manifest", "files", 1}, "path", `a\b`), "INVALID: manifest.files[1].path: must not contain backslashes"},
		{"file path control", set([]any{"manifest", "files", 1}, "path", "a\tb"), "INVALID: manifest.files[1].path: must not contain control characters"},
		{"file path too long", set([]any{"manifest", "files", 1}, "path", long(4097, "p")), "INVALID: manifest.files[1].path: must be at most 4096 characters"},
		{"file path duplicate", set([]any{"manifest", "files", 2}, "path", "model.pkl"), "INVALID: manifest.files[2].path: duplicates manifest.files[0].path"},
		{"file sha256", set([]any{"manifest", "files", 2}, "sha256", "xyz"), "INVALID: manifest.files[2].sha256: must be 64 lowercase hex characters"},
		{"file size negative", set([]any{"manifest", "files", 0}, "size", -1), "INVALID: manifest.files[0].size: must be from 0 to 9007199254740992"},
		{"file size 2^53", set([]any{"manifest", "files", 0}, "size", int64(1)<<53), ""},
		{"file size over 2^53", set([]any{"manifest", "files", 0}, "size", int64(1)<<53+1), "INVALID: manifest.files[0].size: must be from 0 to 9007199254740992"},
		{"file size fraction", set([]any{"manifest", "files", 0}, "size", 1.5), "INVALID: manifest.files[0].size: must be an integer"},
		{"file size string", set([]any{"manifest", "files", 0}, "size", "1"), "INVALID: manifest.files[0].size: must be an integer"},
		{"file unknown field", set([]any{"manifest", "files", 0}, "mode", "0644"), "INVALID: manifest.files[0].mode: unknown field"},
		{"framework name", set([]any{"framework"}, "name", ""), "INVALID: framework.name: must not be blank"},
		{"framework version", set([]any{"framework"}, "version", long(257, "1")), "INVALID: framework.version: must be at most 256 characters"},
		{"framework not object", top("framework", "sklearn"), "INVALID: framework: must be an object"},
		{"library name", set([]any{"libraries", 1}, "name", " "), "INVALID: libraries[1].name: must not be blank"},
		{"library version", set([]any{"libraries", 0}, "version", "1\n2"), "INVALID: libraries[0].version: must not contain control characters"},
		{"library duplicate", set([]any{"libraries", 1}, "name", "pandas"), "INVALID: libraries[1].name: duplicates libraries[0].name"},
		{"libraries not list", top("libraries", map[string]any{}), "INVALID: libraries: must be an array"},
		{"param key chars", set([]any{"params", 0}, "key", "max depth!"), "INVALID: params[0].key: must be 1 to 250 characters of ASCII letters, digits, '_', '-', '.', '/', ':' and space"},
		{"param key empty", set([]any{"params", 0}, "key", ""), "INVALID: params[0].key: must be 1 to 250 characters of ASCII letters, digits, '_', '-', '.', '/', ':' and space"},
		{"param key too long", set([]any{"params", 0}, "key", long(251, "k")), "INVALID: params[0].key: must be 1 to 250 characters of ASCII letters, digits, '_', '-', '.', '/', ':' and space"},
		{"param key 250", set([]any{"params", 0}, "key", long(250, "k")), ""},
		{"param key all characters", set([]any{"params", 0}, "key", "a-b_c.d/e:f g9"), ""},
		{"param key path", set([]any{"params", 0}, "key", "a/./b"), "INVALID: params[0].key: must not resolve to another name when read as a path"},
		{"param key dot dot", set([]any{"params", 0}, "key", "../a"), "INVALID: params[0].key: must not resolve to another name when read as a path"},
		{"param key absolute", set([]any{"params", 0}, "key", "/a"), "INVALID: params[0].key: must not resolve to another name when read as a path"},
		{"param key non-ASCII", set([]any{"params", 0}, "key", "größe"), "INVALID: params[0].key: must be 1 to 250 characters of ASCII letters, digits, '_', '-', '.', '/', ':' and space"},
		{"param value long", set([]any{"params", 1}, "value", long(6001, "v")), "INVALID: params[1].value: must be at most 6000 characters"},
		{"param value 6000", set([]any{"params", 1}, "value", long(6000, "ü")), ""},
		{"param value number", set([]any{"params", 1}, "value", 6), "INVALID: params[1].value: must be a string"},
		{"param duplicate", set([]any{"params", 1}, "key", "n_estimators"), "INVALID: params[1].key: duplicates params[0].key"},
		{"metric key", set([]any{"metrics", 1}, "key", "a|b"), "INVALID: metrics[1].key: must be 1 to 250 characters of ASCII letters, digits, '_', '-', '.', '/', ':' and space"},
		{"metric duplicate", set([]any{"metrics", 1}, "key", "f1"), "INVALID: metrics[1].key: duplicates metrics[0].key"},
		{"metric value string", set([]any{"metrics", 0}, "value", "0.9"), "INVALID: metrics[0].value: must be a finite number"},
		{"metric value null", set([]any{"metrics", 0}, "value", nil), "INVALID: metrics[0].value: must be a finite number"},
		{"metric value 32 characters", metricValue("0.930000000000000000000000000000"), ""},
		{"metric value 33 characters", metricValue("0.9300000000000000000000000000000"), "INVALID: metrics[0].value: must be a number literal of at most 32 characters"},
		{"metric value long and invalid", metricValue("1e" + long(40, "9")), "INVALID: metrics[0].value: must be a number literal of at most 32 characters"},
		{"metric value subnormal", metricValue("5e-324"), "INVALID: metrics[0].value: must be 0 or at least 2.2250738585072014e-308 in magnitude (no subnormal numbers)"},
		{"metric value negative subnormal", metricValue("-2.2250738585072009e-308"), "INVALID: metrics[0].value: must be 0 or at least 2.2250738585072014e-308 in magnitude (no subnormal numbers)"},
		{"metric value underflows to 0", metricValue("1e-400"), "INVALID: metrics[0].value: must be 0 or at least 2.2250738585072014e-308 in magnitude (no subnormal numbers)"},
		{"metric value smallest normal", metricValue("-2.2250738585072014e-308"), ""},
		{"metric value 0", metricValue("-0.0e-999"), ""},
		{"metric value huge", metricValue("1.8e308"), "INVALID: metrics[0].value: must be a finite number"},
		{"file size 33 characters", set([]any{"manifest", "files", 0}, "size", json.Number(long(33, "1"))), "INVALID: manifest.files[0].size: must be a number literal of at most 32 characters"},
		{"file size 32 characters", set([]any{"manifest", "files", 0}, "size", json.Number("1"+long(31, "0"))), "INVALID: manifest.files[0].size: must be an integer"},
		{"dataset name", set([]any{"datasets", 0}, "name", ""), "INVALID: datasets[0].name: must not be blank"},
		{"dataset sha256", set([]any{"datasets", 0}, "sha256", digest("d")+"0"), "INVALID: datasets[0].sha256: must be 64 lowercase hex characters"},
		{"dataset source", set([]any{"datasets", 0}, "source", ""), "INVALID: datasets[0].source: must not be blank"},
		{"dataset source long", set([]any{"datasets", 0}, "source", long(2049, "s")), "INVALID: datasets[0].source: must be at most 2048 characters"},
		{"dataset registered passed in", set([]any{"datasets", 0}, "registered", true), "INVALID: datasets[0].registered: unknown field"},
		{"dataset duplicate", func(m map[string]any) {
			m["datasets"] = append(m["datasets"].([]any), map[string]any{"name": "again", "sha256": datasetTx, "source": "s3://x"})
		}, "INVALID: datasets[1].sha256: duplicates datasets[0].sha256"},
		{"mlflow runId empty", set([]any{"mlflow"}, "runId", ""), ""},
		{"mlflow runId control", set([]any{"mlflow"}, "runId", "a\x00"), "INVALID: mlflow.runId: must not contain control characters"},
		{"mlflow user", set([]any{"mlflow"}, "user", "alice@example.com"), ""},
		{"mlflow user too long", set([]any{"mlflow"}, "user", strings.Repeat("u", 257)), "INVALID: mlflow.user: must be at most 256 characters"},
		{"mlflow modelId control", set([]any{"mlflow"}, "modelId", "m-\n"), "INVALID: mlflow.modelId: must not contain control characters"},
		{"mlflow source long", set([]any{"mlflow"}, "source", long(2049, "m")), "INVALID: mlflow.source: must be at most 2048 characters"},
		{"storage bucket", set([]any{"storage"}, "bucket", "Anchored"), "INVALID: storage.bucket: must be 3 to 63 characters of a-z, 0-9, '.' and '-', starting and ending with a letter or digit"},
		{"storage bucket short", set([]any{"storage"}, "bucket", "ab"), "INVALID: storage.bucket: must be 3 to 63 characters of a-z, 0-9, '.' and '-', starting and ending with a letter or digit"},
		{"storage bucket ends with dash", set([]any{"storage"}, "bucket", "abc-"), "INVALID: storage.bucket: must be 3 to 63 characters of a-z, 0-9, '.' and '-', starting and ending with a letter or digit"},
		{"storage key", set([]any{"storage"}, "key", ""), "INVALID: storage.key: must not be blank"},
		{"storage sha256", set([]any{"storage"}, "sha256", ""), "INVALID: storage.sha256: must be 64 lowercase hex characters"},
		{"storage versionId", set([]any{"storage"}, "versionId", long(1025, "v")), "INVALID: storage.versionId: must be at most 1024 characters"},
		{"storage versionId empty", set([]any{"storage"}, "versionId", ""), ""},
		{"storage null", top("storage", nil), "INVALID: storage: must be an object"},
		{"unknown top-level field", top("tags", []any{}), "INVALID: tags: unknown field"},
		{"field names are case-sensitive", func(m map[string]any) { m["Name"] = m["name"]; delete(m, "name") }, "INVALID: Name: unknown field"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			h := newHarness(t)
			record := editRecord(t, tc.edit)
			if tc.want == "" {
				h.ok(org1Scientist, "RegisterModelVersion", record)
				return
			}
			h.refused(org1Scientist, tc.want, "RegisterModelVersion", record)
		})
	}
}

// TestRegisterModelVersionMalformedJSON checks the refusals of arguments
// that are not one JSON object of the right shape.
func TestRegisterModelVersionMalformedJSON(t *testing.T) {
	valid := sampleRecord(t, "fraud", "3")
	tests := []struct {
		name, record, want string
	}{
		{"empty", "", "INVALID: record: is truncated JSON"},
		{"not JSON", "fraud", "INVALID: record: is not valid JSON (invalid character 'r' in literal false (expecting 'a'), after byte 2)"},
		{"array", "[]", "INVALID: record: must be an object"},
		{"null", "null", "INVALID: record: must be an object"},
		{"truncated", valid[:len(valid)-1], "INVALID: record: is truncated JSON"},
		{"truncated in a list", `{"params":[{"key":"a","value":"b"}`, "INVALID: params: is truncated JSON"},
		{"trailing object", valid + "{}", "INVALID: record: must hold a single JSON value"},
		{"trailing garbage", valid + " x", "INVALID: record: must hold a single JSON value"},
		{"garbage inside", `{"name":"a",}`, "INVALID: record: is not valid JSON (invalid character '}' looking for beginning of object key string, after byte 12)"},
		{"duplicate field", `{"name":"a","name":"b"}`, "INVALID: name: duplicate field"},
		{"invalid UTF-8", `{"name":"` + "\xff" + `"}`, "INVALID: record: must be valid UTF-8"},
		{"missing colon", `{"name" "a"}`, "INVALID: record: is not valid JSON (invalid character '\"' after object key, after byte 8)"},
		{"over 1 MiB", `{"name":"` + strings.Repeat(" ", 1<<20) + `"}`, "INVALID: record: must be at most 1 MiB (1048576 bytes)"},
		{"huge number", strings.Replace(valid, `"value":0.93`, `"value":1e999`, 1), "INVALID: metrics[1].value: must be a finite number"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			newHarness(t).refused(org1Scientist, tc.want, "RegisterModelVersion", tc.record)
		})
	}
}

// TestListLimitsStopTheWalk checks that a list over its limit is refused as
// soon as its first extra item begins: whatever follows (here bytes that are
// not JSON) is never read.
func TestListLimitsStopTheWalk(t *testing.T) {
	items := func(n int, item string) string { return strings.TrimSuffix(strings.Repeat(item+",", n), ",") }
	garbage := ",@@@ not JSON " + strings.Repeat("[", 1000)
	tests := []struct {
		name, record, want string
	}{
		{"files", `{"manifest":{"files":[` + items(10000, `{}`) + garbage, "INVALID: manifest.files: must list 1 to 10000 files"},
		{"params", `{"params":[` + items(1000, `{}`) + garbage, "INVALID: params: must list at most 1000 params"},
		{"metrics", `{"metrics":[` + items(1000, `{"value":0.5}`) + garbage, "INVALID: metrics: must list at most 1000 metrics"},
		{"metrics before a subnormal", `{"metrics":[` + items(1000, `{}`) + `,{"value":5e-324}]}`, "INVALID: metrics: must list at most 1000 metrics"},
		{"libraries", `{"libraries":[` + items(200, `{}`) + garbage, "INVALID: libraries: must list at most 200 libraries"},
		{"datasets", `{"datasets":[` + items(100, `{}`) + garbage, "INVALID: datasets: must list at most 100 datasets"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := parseModelVersion([]byte(tc.record))
			if err == nil || err.Error() != tc.want {
				t.Fatalf("got %v, want %s", err, tc.want)
			}
		})
	}
	// Under the limit, the walk goes on and meets the garbage.
	_, err := parseModelVersion([]byte(`{"datasets":[` + items(99, `{}`) + garbage))
	if want := "INVALID: record: is not valid JSON (invalid character '@'"; err == nil || !strings.HasPrefix(err.Error(), want) {
		t.Fatalf("got %v, want %s...", err, want)
	}
}

// TestIsSubnormalLiteral checks the literal test against strconv: a literal
// it lets through parses to 0 or a normal float64, one it refuses is not 0
// and under 2.2250738585072014e-308 (so it parses to a subnormal, to 0, or,
// rounding up, to the smallest normal).
func TestIsSubnormalLiteral(t *testing.T) {
	tests := []struct {
		lit  string
		want bool
	}{
		{"0", false}, {"-0", false}, {"0.000", false}, {"0e-999", false}, {"-0.0E+5", false},
		{"1", false}, {"0.93", false}, {"1e-307", false}, {"1.7976931348623157e308", false},
		{"2.2250738585072014e-308", false}, {"-2.2250738585072014e-308", false},
		{"22.250738585072014e-309", false}, {"0.0022250738585072014E-305", false},
		{"2.22507385850720140000e-308", false}, {"2.2250738585072014000001e-308", false},
		{"2.2250738585072015e-308", false}, {"3e-308", false}, {"1e+99999999999999999999", false},
		{"2.2250738585072013e-308", true}, {"2.22507385850720139e-308", true},
		{"2.2250738585072009e-308", true}, {"-2.2250738585072009e-308", true},
		{"1e-308", true}, {"9.99e-309", true}, {"5e-324", true}, {"4.9406564584124654E-324", true},
		{"1e-330", true}, {"1e-400", true}, {"0.00001e-303", true}, {"1e-99999999999999999999", true},
	}
	for _, tc := range tests {
		if got := isSubnormalLiteral(tc.lit); got != tc.want {
			t.Errorf("isSubnormalLiteral(%q) = %v, want %v", tc.lit, got, tc.want)
		}
	}
	minNormal := math.Float64frombits(1 << 52) // 2^-1022
	for exp := -330; exp <= -300; exp++ {
		for _, mantissa := range []string{"1", "2.2", "2.2250738585072", "2.2250738585072014", "2.2250738585072013", "9.99"} {
			for _, sign := range []string{"", "-"} {
				lit := sign + mantissa + "e" + strconv.Itoa(exp)
				f, err := strconv.ParseFloat(lit, 64)
				if err != nil && f != 0 { // ParseFloat reports an underflow to 0 as a range error
					t.Fatal(err)
				}
				switch subnormal := isSubnormalLiteral(lit); {
				case !subnormal && f != 0 && math.Abs(f) < minNormal:
					t.Errorf("%s parses to the subnormal %g but is let through", lit, f)
				case subnormal && math.Abs(f) > minNormal:
					t.Errorf("%s parses to the normal %g but is refused", lit, f)
				}
			}
		}
	}
}

package registry

import (
	"strings"

	"github.com/hyperledger/fabric-chaincode-go/v2/shim"
)

// Object types of the composite keys. Versions appear in keys left-padded
// with zeros to 10 digits, so that a name's versions list in numeric order.
const (
	// model[name, version]: a ModelVersion.
	objectModelVersion = "model"
	// modelname[name]: a Model (owner organisation and grants).
	objectModel = "modelname"
	// digest[modelDigest, name, version]: index for FindByDigest.
	objectDigest = "digest"
	// dataset[sha256, mspId]: one organisation's claim on a dataset (a
	// Dataset). Before 1.3.0 the first registrant's organisation owned the
	// sha256 under dataset[sha256]; such records are still read, as the
	// claim of their owner.
	objectDataset = "dataset"
	// deployment[environment, name]: an EnvironmentDeployment.
	objectDeployment = "deployment"
	// accessentry[name, version, txId]: an AccessLogEntry, the entry the
	// transaction txId logged (one key per transaction: accesses never
	// read or write a key another access writes, so they never conflict).
	objectAccessEntry = "accessentry"
	// accesshead[name, version]: the txId of the version's latest
	// access-log entry. Every access writes it without reading it (a blind
	// write); its history (GetHistoryForKey, in commit order) lists the
	// version's entries in the order they were committed.
	objectAccessHead = "accesshead"
	// access[...]: the entries of the older layouts, still listed, never
	// written: access[name, version, time, txId] (1.2.0), and
	// access[name, version, "seq", sequence] (an unreleased build of 1.3.0
	// that numbered a version's entries with a counter, accessseq[name,
	// version], read and written by every access). A time starts with a
	// digit or "-", which sort before "seq".
	objectAccess = "access"
	// removal[mspId]: an ApprovalSetRemoval, the votes to remove an
	// organisation from the approval set.
	objectRemoval = "removal"
	// settingsKey holds the Settings (a simple key).
	settingsKey = "settings"
)

// versionKeyDigits is the width of a padded version: every version fits.
const versionKeyDigits = maxVersionDigits

// compositeKey builds a key from attributes the caller validated (no U+0000
// or U+10FFFF), so the shim cannot refuse it; should it ever, the empty key
// makes the ledger call fail loudly.
func compositeKey(object string, attributes ...string) string {
	key, err := shim.CreateCompositeKey(object, attributes)
	if err != nil {
		return ""
	}
	return key
}

func padVersion(version string) string {
	return padLeft(version, versionKeyDigits)
}

func padLeft(digits string, width int) string {
	if len(digits) >= width {
		return digits
	}
	return strings.Repeat("0", width-len(digits)) + digits
}

func modelVersionKey(name, version string) string {
	return compositeKey(objectModelVersion, name, padVersion(version))
}

func modelKey(name string) string {
	return compositeKey(objectModel, name)
}

func digestKey(modelDigest, name, version string) string {
	return compositeKey(objectDigest, modelDigest, name, padVersion(version))
}

func datasetKey(sha256, mspID string) string {
	return compositeKey(objectDataset, sha256, mspID)
}

// legacyDatasetKey is the key of a dataset registered before 1.3.0.
func legacyDatasetKey(sha256 string) string {
	return compositeKey(objectDataset, sha256)
}

func deploymentKey(environment, name string) string {
	return compositeKey(objectDeployment, environment, name)
}

func accessEntryKey(name, version, txID string) string {
	return compositeKey(objectAccessEntry, name, padVersion(version), txID)
}

// accessHeadKey takes the version as it appears in keys (padded).
func accessHeadKey(name, paddedVersion string) string {
	return compositeKey(objectAccessHead, name, paddedVersion)
}

func removalKey(mspID string) string {
	return compositeKey(objectRemoval, mspID)
}

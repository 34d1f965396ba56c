package registry

import (
	"strconv"
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
	// access[name, version, "seq", sequence]: an AccessLogEntry; the
	// sequence (the version's count of entries, 20 digits) lists a version's
	// entries in commit order. Before 1.3.0 entries were keyed
	// access[name, version, time, txId]; those keys are still listed, first
	// (a time starts with a digit or "-", which sort before "seq").
	objectAccess = "access"
	// accessseq[name, version]: the number of access-log entries of a
	// version, the last sequence used.
	objectAccessSequence = "accessseq"
	// accessSequenceMarker is the third attribute of the access-log keys
	// written since 1.3.0.
	accessSequenceMarker = "seq"
	// removal[mspId]: an ApprovalSetRemoval, the votes to remove an
	// organisation from the approval set.
	objectRemoval = "removal"
	// settingsKey holds the Settings (a simple key).
	settingsKey = "settings"
)

const versionKeyDigits = 10

// sequenceKeyDigits is the width of an access-log sequence in keys: any
// int64 fits.
const sequenceKeyDigits = 20

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

func accessKey(name, version string, sequence int64) string {
	return compositeKey(objectAccess, name, padVersion(version), accessSequenceMarker,
		padLeft(strconv.FormatInt(sequence, 10), sequenceKeyDigits))
}

func accessSequenceKey(name, version string) string {
	return compositeKey(objectAccessSequence, name, padVersion(version))
}

func removalKey(mspID string) string {
	return compositeKey(objectRemoval, mspID)
}

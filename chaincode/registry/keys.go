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
	// dataset[sha256]: a Dataset.
	objectDataset = "dataset"
	// deployment[environment, name]: an EnvironmentDeployment.
	objectDeployment = "deployment"
	// access[name, version, time, txId]: an AccessLogEntry; the time (of
	// fixed width) lists a version's entries in the order they were made.
	objectAccess = "access"
	// settingsKey holds the Settings (a simple key).
	settingsKey = "settings"
)

const versionKeyDigits = 10

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
	if len(version) >= versionKeyDigits {
		return version
	}
	return strings.Repeat("0", versionKeyDigits-len(version)) + version
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

func datasetKey(sha256 string) string {
	return compositeKey(objectDataset, sha256)
}

func deploymentKey(environment, name string) string {
	return compositeKey(objectDeployment, environment, name)
}

func accessKey(name, version, time, txID string) string {
	return compositeKey(objectAccess, name, padVersion(version), time, txID)
}

package registry

import (
	"errors"
	"fmt"
)

// ErrorClass is the first word of every refusal message: clients branch on
// it, people read the rest.
type ErrorClass string

// The four classes of refusal, as documented in CONTRACT.md.
const (
	// Invalid means the input breaks a rule.
	Invalid ErrorClass = "INVALID"
	// NotAuthorized means the caller's role or organisation may not do this.
	NotAuthorized ErrorClass = "NOT_AUTHORIZED"
	// NotFound means the object does not exist or the caller may not know it
	// exists.
	NotFound ErrorClass = "NOT_FOUND"
	// Conflict means the request contradicts the ledger.
	Conflict ErrorClass = "CONFLICT"
)

// Error is a refusal: a class and a message naming the field or object and
// the rule. Its text is "<CLASS>: <message>".
type Error struct {
	Class   ErrorClass
	Message string
}

// Error returns the message as the chaincode reports it.
func (e *Error) Error() string {
	return string(e.Class) + ": " + e.Message
}

// ClassOf returns the class of a refusal, or "" when err is not one (a
// ledger failure, for instance).
func ClassOf(err error) ErrorClass {
	var e *Error
	if errors.As(err, &e) {
		return e.Class
	}
	return ""
}

func refuse(class ErrorClass, format string, args ...any) error {
	return &Error{Class: class, Message: fmt.Sprintf(format, args...)}
}

// invalid reports a broken input rule as "INVALID: <path>: <rule>".
func invalid(path, rule string) error {
	return &Error{Class: Invalid, Message: path + ": " + rule}
}

// invalidf is invalid with a formatted rule.
func invalidf(path, format string, args ...any) error {
	return invalid(path, fmt.Sprintf(format, args...))
}

func notAuthorized(format string, args ...any) error {
	return refuse(NotAuthorized, format, args...)
}

func notFound(format string, args ...any) error {
	return refuse(NotFound, format, args...)
}

func conflict(format string, args ...any) error {
	return refuse(Conflict, format, args...)
}

// versionNotFound is the refusal for a model version that does not exist or
// that the caller may not read; both read the same, by design.
func versionNotFound(name, version string) error {
	return notFound("model %q version %q", name, version)
}

// ledgerError wraps a failure of the peer (not a refusal).
func ledgerError(op, key string, err error) error {
	return fmt.Errorf("ledger: %s %q: %w", op, key, err)
}

// errMissingModel reports a version whose model record is missing, which
// the contract never writes.
const errMissingModel = constError("the model record of an existing version is missing")

// errMissingVersion reports an index entry whose version is missing, which
// the contract never writes.
const errMissingVersion = constError("the version of a digest index entry is missing")

// errMissingAccessEntry reports a write of an access-log head whose entry
// is missing, which the contract never writes.
const errMissingAccessEntry = constError("the access-log entry of a head write is missing")

// errBadKey reports a composite key of the contract's objects with too few
// attributes, which the contract never writes.
const errBadKey = constError("the key does not have the attributes of its object")

// constError is an error that can be a constant.
type constError string

func (e constError) Error() string { return string(e) }

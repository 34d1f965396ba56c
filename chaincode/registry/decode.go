package registry

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"math"
	"reflect"
	"strconv"
	"strings"
	"unicode/utf8"
)

// maxArgumentBytes bounds every JSON argument (1 MiB).
const maxArgumentBytes = 1 << 20

// decodeStrict parses one JSON argument into v (a pointer to a struct). It
// refuses, with "INVALID: <path>: <rule>", an argument over 1 MiB (checked
// before parsing), invalid UTF-8, malformed JSON, trailing data, unknown or
// duplicate fields (names match exactly, unlike encoding/json), null values
// and values of the wrong type. arg names the argument in messages about
// the value as a whole.
func decodeStrict(arg string, data []byte, v any) error {
	if len(data) > maxArgumentBytes {
		return invalid(arg, "must be at most 1 MiB (1048576 bytes)")
	}
	if !utf8.Valid(data) {
		return invalid(arg, "must be valid UTF-8")
	}
	if err := checkShape(arg, data, reflect.TypeOf(v).Elem()); err != nil {
		return err
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return invalid(arg, "cannot be decoded: "+err.Error())
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return invalid(arg, "must hold a single JSON value")
	}
	return nil
}

// shapeChecker walks the JSON tokens of an argument alongside the Go type it
// decodes into, so that errors name the exact path (with list indexes).
type shapeChecker struct {
	arg string
	dec *json.Decoder
}

func checkShape(arg string, data []byte, t reflect.Type) error {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	c := &shapeChecker{arg: arg, dec: dec}
	if err := c.value("", t); err != nil {
		return err
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return invalid(arg, "must hold a single JSON value")
	}
	return nil
}

// where names a path in messages: the argument itself at the root.
func (c *shapeChecker) where(path string) string {
	if path == "" {
		return c.arg
	}
	return path
}

func (c *shapeChecker) token(path string) (json.Token, error) {
	tok, err := c.dec.Token()
	if err == nil {
		return tok, nil
	}
	if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
		return nil, invalid(c.where(path), "is truncated JSON")
	}
	var syntax *json.SyntaxError
	if errors.As(err, &syntax) {
		return nil, invalid(c.arg, "is not valid JSON ("+syntax.Error()+", after byte "+strconv.FormatInt(syntax.Offset, 10)+")")
	}
	return nil, invalid(c.where(path), "is not valid JSON: "+err.Error())
}

func (c *shapeChecker) value(path string, t reflect.Type) error {
	tok, err := c.token(path)
	if err != nil {
		return err
	}
	switch t.Kind() {
	case reflect.Struct:
		if tok != json.Delim('{') {
			return invalid(c.where(path), "must be an object")
		}
		return c.object(path, t)
	case reflect.Slice:
		if tok != json.Delim('[') {
			return invalid(c.where(path), "must be an array")
		}
		return c.array(path, t.Elem())
	case reflect.String:
		if _, ok := tok.(string); !ok {
			return invalid(c.where(path), "must be a string")
		}
	case reflect.Bool:
		if _, ok := tok.(bool); !ok {
			return invalid(c.where(path), "must be true or false")
		}
	case reflect.Int64:
		if !isInteger(tok) {
			return invalid(c.where(path), "must be an integer")
		}
	case reflect.Float64:
		if !isFiniteNumber(tok) {
			return invalid(c.where(path), "must be a finite number")
		}
	default:
		return invalid(c.where(path), "has an unsupported type")
	}
	return nil
}

func (c *shapeChecker) object(path string, t reflect.Type) error {
	seen := make([]bool, t.NumField())
	for c.dec.More() {
		tok, err := c.token(path)
		if err != nil {
			return err
		}
		key, ok := tok.(string)
		if !ok { // unreachable: the decoder reports keys as strings
			return invalid(c.where(path), "has a key that is not a string")
		}
		field := jsonFieldIndex(t, key)
		fieldPath := joinPath(path, key)
		if field < 0 {
			return invalid(fieldPath, "unknown field")
		}
		if seen[field] {
			return invalid(fieldPath, "duplicate field")
		}
		seen[field] = true
		if err := c.value(fieldPath, t.Field(field).Type); err != nil {
			return err
		}
	}
	_, err := c.token(path) // the closing brace
	return err
}

func (c *shapeChecker) array(path string, elem reflect.Type) error {
	for i := 0; c.dec.More(); i++ {
		if err := c.value(path+"["+strconv.Itoa(i)+"]", elem); err != nil {
			return err
		}
	}
	_, err := c.token(path) // the closing bracket
	return err
}

// jsonFieldIndex returns the index of the field of t whose JSON name is
// exactly key, or -1.
func jsonFieldIndex(t reflect.Type, key string) int {
	for i := 0; i < t.NumField(); i++ {
		name, _, _ := strings.Cut(t.Field(i).Tag.Get("json"), ",")
		if name == key {
			return i
		}
	}
	return -1
}

func joinPath(path, key string) string {
	if path == "" {
		return key
	}
	return path + "." + key
}

func isInteger(tok json.Token) bool {
	n, ok := tok.(json.Number)
	if !ok {
		return false
	}
	_, err := strconv.ParseInt(string(n), 10, 64)
	return err == nil
}

func isFiniteNumber(tok json.Token) bool {
	n, ok := tok.(json.Number)
	if !ok {
		return false
	}
	f, err := strconv.ParseFloat(string(n), 64)
	return err == nil && !math.IsInf(f, 0) && !math.IsNaN(f)
}

// canonicalJSON marshals v compactly, without HTML escaping: the bytes the
// contract stores and emits.
func canonicalJSON(v any) ([]byte, error) {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return nil, err
	}
	return bytes.TrimSuffix(buf.Bytes(), []byte("\n")), nil
}

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

// maxNumberChars bounds a number literal: any float64 can be written in 24
// characters, and strconv is slow on long literals.
const maxNumberChars = 32

// listLimit returns the most items the list at path may hold and the rule a
// longer list breaks, or 0 when the list has no limit.
type listLimit func(path string) (max int, rule string)

// decodeStrict parses one JSON argument into v (a pointer to a struct). It
// refuses, with "INVALID: <path>: <rule>", an argument over 1 MiB (checked
// before parsing), invalid UTF-8, malformed JSON, trailing data, unknown or
// duplicate fields (names match exactly, unlike encoding/json), null values,
// values of the wrong type, number literals over 32 characters, subnormal
// numbers and lists longer than limit allows (nil: no limit). The walk stops
// at the first problem, so a refused argument costs at most one pass over
// its tokens, and a list is refused as soon as its first item over the
// limit begins. Each value is parsed once, by the walk that checks it.
func decodeStrict(arg string, data []byte, v any, limit listLimit) error {
	if len(data) > maxArgumentBytes {
		return invalid(arg, "must be at most 1 MiB (1048576 bytes)")
	}
	if !utf8.Valid(data) {
		return invalid(arg, "must be valid UTF-8")
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	w := &walker{arg: arg, dec: dec, limit: limit}
	if err := w.value("", reflect.ValueOf(v).Elem()); err != nil {
		return err
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return invalid(arg, "must hold a single JSON value")
	}
	return nil
}

// walker walks the JSON tokens of an argument alongside the Go value it
// decodes into, checking each token before storing it, so that errors name
// the exact path (with list indexes).
type walker struct {
	arg   string
	dec   *json.Decoder
	limit listLimit
}

// where names a path in messages: the argument itself at the root.
func (w *walker) where(path string) string {
	if path == "" {
		return w.arg
	}
	return path
}

func (w *walker) token(path string) (json.Token, error) {
	tok, err := w.dec.Token()
	if err == nil {
		return tok, nil
	}
	if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
		return nil, invalid(w.where(path), "is truncated JSON")
	}
	var syntax *json.SyntaxError
	if errors.As(err, &syntax) {
		return nil, invalid(w.arg, "is not valid JSON ("+syntax.Error()+", after byte "+strconv.FormatInt(syntax.Offset, 10)+")")
	}
	return nil, invalid(w.where(path), "is not valid JSON: "+err.Error())
}

// value reads the next JSON value into v.
func (w *walker) value(path string, v reflect.Value) error {
	tok, err := w.token(path)
	if err != nil {
		return err
	}
	return w.store(path, tok, v)
}

// store checks the token tok that starts a JSON value and stores the value
// into v, reading the rest of it for objects and arrays. A pointer gets a
// new value (null is refused like any other value of the wrong type).
func (w *walker) store(path string, tok json.Token, v reflect.Value) error {
	switch v.Kind() {
	case reflect.Pointer:
		p := reflect.New(v.Type().Elem())
		if err := w.store(path, tok, p.Elem()); err != nil {
			return err
		}
		v.Set(p)
	case reflect.Struct:
		if tok != json.Delim('{') {
			return invalid(w.where(path), "must be an object")
		}
		return w.object(path, v)
	case reflect.Slice:
		if tok != json.Delim('[') {
			return invalid(w.where(path), "must be an array")
		}
		return w.array(path, v)
	case reflect.String:
		s, ok := tok.(string)
		if !ok {
			return invalid(w.where(path), "must be a string")
		}
		v.SetString(s)
	case reflect.Bool:
		b, ok := tok.(bool)
		if !ok {
			return invalid(w.where(path), "must be true or false")
		}
		v.SetBool(b)
	case reflect.Int, reflect.Int64:
		n, err := w.integer(path, tok)
		if err != nil {
			return err
		}
		v.SetInt(n)
	case reflect.Float64:
		f, err := w.float(path, tok)
		if err != nil {
			return err
		}
		v.SetFloat(f)
	default:
		return invalid(w.where(path), "has an unsupported type")
	}
	return nil
}

func (w *walker) object(path string, v reflect.Value) error {
	t := v.Type()
	seen := make([]bool, t.NumField())
	for w.dec.More() {
		tok, err := w.token(path)
		if err != nil {
			return err
		}
		key, ok := tok.(string)
		if !ok { // unreachable: the decoder reports keys as strings
			return invalid(w.where(path), "has a key that is not a string")
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
		if err := w.value(fieldPath, v.Field(field)); err != nil {
			return err
		}
	}
	_, err := w.token(path) // the closing brace
	return err
}

// array reads the items of a JSON array into the slice v, refusing the
// array as soon as an item over its limit begins (before reading it).
func (w *walker) array(path string, v reflect.Value) error {
	max, rule := 0, ""
	if w.limit != nil {
		max, rule = w.limit(path)
	}
	items := reflect.MakeSlice(v.Type(), 0, 0)
	for i := 0; w.dec.More(); i++ {
		if max > 0 && i == max {
			return invalid(w.where(path), rule)
		}
		items = reflect.Append(items, reflect.Zero(v.Type().Elem()))
		if err := w.value(path+"["+strconv.Itoa(i)+"]", items.Index(i)); err != nil {
			return err
		}
	}
	v.Set(items)
	_, err := w.token(path) // the closing bracket
	return err
}

// integer parses an int64 value.
func (w *walker) integer(path string, tok json.Token) (int64, error) {
	lit, err := w.number(path, tok, "must be an integer")
	if err != nil {
		return 0, err
	}
	n, err := strconv.ParseInt(lit, 10, 64)
	if err != nil {
		return 0, invalid(w.where(path), "must be an integer")
	}
	return n, nil
}

// float parses a float64 value: finite, and 0 or at least the smallest
// normal float64 in magnitude. Subnormal values are refused from the
// literal, before strconv, which takes microseconds on each of them.
func (w *walker) float(path string, tok json.Token) (float64, error) {
	lit, err := w.number(path, tok, "must be a finite number")
	if err != nil {
		return 0, err
	}
	if isSubnormalLiteral(lit) {
		return 0, invalid(w.where(path), "must be 0 or at least 2.2250738585072014e-308 in magnitude (no subnormal numbers)")
	}
	f, err := strconv.ParseFloat(lit, 64)
	if err != nil || math.IsInf(f, 0) || math.IsNaN(f) {
		return 0, invalid(w.where(path), "must be a finite number")
	}
	return f, nil
}

// number returns the literal of a number token of at most maxNumberChars
// characters, or refuses tok with notNumber.
func (w *walker) number(path string, tok json.Token, notNumber string) (string, error) {
	n, ok := tok.(json.Number)
	if !ok {
		return "", invalid(w.where(path), notNumber)
	}
	if len(n) > maxNumberChars {
		return "", invalid(w.where(path), "must be a number literal of at most 32 characters")
	}
	return string(n), nil
}

// minNormalDigits are the significant digits of 2.2250738585072014e-308,
// the shortest literal of the smallest normal float64 (2^-1022).
const minNormalDigits = "22250738585072014"

// isSubnormalLiteral reports whether a JSON number literal (valid, as the
// decoder checked) is not 0 and under 2.2250738585072014e-308 in
// magnitude: such a literal parses to a subnormal float64 or to 0 (or, just
// under the bound, rounds up to 2^-1022), and every other one to 0 or a
// normal float64. It reads the digits only, in time linear in the
// literal's length.
func isSubnormalLiteral(lit string) bool {
	mantissa, exp := strings.TrimPrefix(lit, "-"), ""
	if i := strings.IndexAny(mantissa, "eE"); i >= 0 {
		mantissa, exp = mantissa[:i], mantissa[i+1:]
	}
	intPart, frac, _ := strings.Cut(mantissa, ".")
	digits := strings.TrimRight(intPart+frac, "0")
	lead := len(digits) - len(strings.TrimLeft(digits, "0"))
	if lead == len(digits) {
		return false // zero
	}
	digits = digits[lead:]
	// The value is 0.<digits> × 10^magnitude.
	magnitude := len(intPart) - lead + parseExponent(exp)
	switch {
	case magnitude < -307:
		return true
	case magnitude > -307:
		return false
	}
	return digits < minNormalDigits // compares as decimal fractions
}

// parseExponent reads the exponent of a number literal, clamped to
// ±10000: far beyond float64's range, and never overflowing.
func parseExponent(exp string) int {
	sign := 1
	switch {
	case strings.HasPrefix(exp, "-"):
		sign, exp = -1, exp[1:]
	case strings.HasPrefix(exp, "+"):
		exp = exp[1:]
	}
	n := 0
	for i := 0; i < len(exp) && n < 10000; i++ {
		n = n*10 + int(exp[i]-'0')
	}
	return sign * min(n, 10000)
}

// jsonFieldIndex returns the index of the field of t whose JSON name is
// exactly key, or -1.
func jsonFieldIndex(t reflect.Type, key string) int {
	for i := 0; i < t.NumField(); i++ {
		name, _, _ := strings.Cut(t.Field(i).Tag.Get("json"), ",")
		if name == key && name != "-" {
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

package rest

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"mime"
	"net/http"
	"slices"
	"strconv"
	"strings"

	"timeslots/internal/apperr"
	"timeslots/internal/httpx"
)

// bodyError is a request body the endpoint refuses before it reaches the
// manager, with the HTTP status the protocol gives it (400, 415).
type bodyError struct {
	status int
	err    *apperr.Error
}

func (e *bodyError) Error() string { return e.err.Error() }
func (e *bodyError) Unwrap() error { return e.err }

// write answers the refusal in the REST error shape.
func (e *bodyError) write(w http.ResponseWriter, r *http.Request) {
	httpx.WriteErrorStatus(w, r, e.status, e.err)
}

func badBody(field, format string, args ...any) *bodyError {
	return &bodyError{status: http.StatusBadRequest, err: apperr.Invalid(field, format, args...)}
}

// MaxBodyDepth bounds how deeply a REST body's arrays and objects nest:
// the top-level object is depth 1, and no endpoint takes more than 2.
const MaxBodyDepth = 8

// decodeJSON is the one decoder of every REST body: r's body, which must
// be application/json, into dst. The body must be exactly one JSON object
// whose keys are dst's fields as types names them, spelled exactly (no
// case variants), each at most once, nested at most MaxBodyDepth deep;
// types also gives, per field, how its value is spelled, for type errors.
// encoding/json alone would take {"DAYSAHEAD": 1} for daysAhead and let
// the last of two equal keys win. The body's size is checked before the
// edge runs (httpx.LimitBody), so it is read whole here.
func decodeJSON(r *http.Request, dst any, types map[string]string) *bodyError {
	ct := r.Header.Get("Content-Type")
	mt, _, err := mime.ParseMediaType(ct)
	if ct == "" || err != nil || mt != "application/json" {
		return &bodyError{status: http.StatusUnsupportedMediaType,
			err: apperr.Invalid("Content-Type", "Content-Type must be application/json")}
	}
	body, err := io.ReadAll(r.Body)
	if err != nil {
		return badBody("body", "the request body could not be read")
	}
	if berr := checkShape(body, types); berr != nil {
		return berr
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(dst); err != nil {
		return decodeError(err, types)
	}
	return nil
}

// checkShape walks body's tokens before it is decoded: one JSON object
// and nothing after it, top-level keys exactly those of types, no key
// twice in any object, no nesting deeper than MaxBodyDepth. It answers the
// first violation, naming the key at fault.
func checkShape(body []byte, types map[string]string) *bodyError {
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.UseNumber() // a number's range is the field's rule, checked when decoding
	tok, err := dec.Token()
	if err != nil {
		return decodeError(err, types)
	}
	if tok != json.Delim('{') {
		return badBody("body", "request body must be a JSON object")
	}
	type container struct {
		object  bool
		wantKey bool // in an object: the next token is a key or its end
		keys    map[string]struct{}
	}
	stack := []*container{{object: true, wantKey: true, keys: map[string]struct{}{}}}
	// valueDone marks the value of the innermost object's current key read.
	valueDone := func() {
		if top := stack[len(stack)-1]; top.object {
			top.wantKey = true
		}
	}
	for len(stack) > 0 {
		tok, err := dec.Token()
		if err != nil {
			return decodeError(err, types)
		}
		top := stack[len(stack)-1]
		if top.object && top.wantKey {
			if tok == json.Delim('}') {
				if stack = stack[:len(stack)-1]; len(stack) > 0 {
					valueDone()
				}
				continue
			}
			key, _ := tok.(string) // the decoder answers only a string or '}' here
			if len(stack) == 1 {
				if berr := knownKey(key, types); berr != nil {
					return berr
				}
			}
			if _, dup := top.keys[key]; dup {
				return badBody(clip(key), "key %q appears more than once in the request body; send each key once", clip(key))
			}
			top.keys[key] = struct{}{}
			top.wantKey = false
			continue
		}
		switch tok {
		case json.Delim('{'), json.Delim('['):
			if len(stack) >= MaxBodyDepth {
				return badBody("body", "request body nests arrays and objects deeper than %d levels", MaxBodyDepth)
			}
			c := &container{object: tok == json.Delim('{'), wantKey: true}
			if c.object {
				c.keys = map[string]struct{}{}
			}
			stack = append(stack, c)
		case json.Delim(']'):
			stack = stack[:len(stack)-1]
			valueDone()
		default:
			valueDone()
		}
	}
	// A second value, or anything but white space after the first, is
	// refused: {"daysAhead": 30} {"daysAhead": 365} must not half-work.
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return badBody("body", "request body must hold exactly one JSON object, with nothing after it")
	}
	return nil
}

// clip cuts a key the client sent to at most 64 bytes for messages, so
// an answer never echoes a huge key back.
func clip(key string) string { return httpx.Shorten(key, 64) }

// knownKey refuses a top-level key that is not a field of types, spelled
// exactly.
func knownKey(key string, types map[string]string) *bodyError {
	if _, ok := types[key]; ok {
		return nil
	}
	key = clip(key)
	if key == "" {
		return badBody("body", "request body has a field with no name; allowed: %s", allowedFields(types))
	}
	for name := range types {
		if strings.EqualFold(name, key) {
			return badBody(key, "unknown field %q in request body: keys are case-sensitive, write %q", key, name)
		}
	}
	return badBody(key, "unknown field %q in request body; allowed: %s", key, allowedFields(types))
}

// decodeError explains a failed Decode in terms of the request, never with
// the decoder's Go type names.
func decodeError(err error, types map[string]string) *bodyError {
	var (
		syntax    *json.SyntaxError
		typeError *json.UnmarshalTypeError
	)
	switch {
	case errors.Is(err, io.EOF):
		return badBody("body", "request body is empty; send a JSON object")
	case errors.Is(err, io.ErrUnexpectedEOF):
		return badBody("body", "request body is not valid JSON: it ends too early")
	case errors.As(err, &syntax):
		return badBody("body", "request body is not valid JSON (at byte %d)", syntax.Offset)
	case errors.As(err, &typeError):
		field := typeError.Field
		if field == "" {
			return badBody("body", "request body must be a JSON object")
		}
		if i := strings.IndexByte(field, '.'); i >= 0 {
			field = field[:i]
		}
		if want, ok := types[field]; ok {
			return badBody(field, "%s must be %s", field, want)
		}
		return badBody(field, "%s has the wrong type", field)
	}
	if name, ok := strings.CutPrefix(err.Error(), "json: unknown field "); ok {
		name, err := strconv.Unquote(name)
		if err != nil || name == "" {
			return badBody("body", "request body has a field with no usable name; allowed: %s", allowedFields(types))
		}
		return badBody(name, "unknown field %q in request body; allowed: %s", name, allowedFields(types))
	}
	return badBody("body", "request body is not a valid JSON object")
}

func allowedFields(types map[string]string) string {
	names := make([]string, 0, len(types))
	for name := range types {
		names = append(names, name)
	}
	slices.Sort(names) // the same message on every run
	return strings.Join(names, ", ")
}

// required names a field a body must carry.
func required(field string) *bodyError {
	return badBody(field, "%s is required", field)
}

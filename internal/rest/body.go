package rest

import (
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

// decodeJSON reads r's body, which must be application/json, into dst:
// exactly one JSON object whose fields dst knows. types gives, per field,
// how its value is spelled, for type errors. The body's size is checked
// before the edge runs (httpx.LimitBody).
func decodeJSON(r *http.Request, dst any, types map[string]string) *bodyError {
	ct := r.Header.Get("Content-Type")
	mt, _, err := mime.ParseMediaType(ct)
	if ct == "" || err != nil || mt != "application/json" {
		return &bodyError{status: http.StatusUnsupportedMediaType,
			err: apperr.Invalid("Content-Type", "Content-Type must be application/json")}
	}
	dec := json.NewDecoder(r.Body)
	dec.DisallowUnknownFields()
	if err := dec.Decode(dst); err != nil {
		return decodeError(err, types)
	}
	// A second value, or anything but white space after the first, is
	// refused: {"daysAhead": 30} {"daysAhead": 365} must not half-work.
	var extra json.RawMessage
	if err := dec.Decode(&extra); errors.Is(err, io.EOF) {
		return nil
	}
	return badBody("body", "request body must hold exactly one JSON object, with nothing after it")
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

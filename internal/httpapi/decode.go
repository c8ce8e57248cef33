package httpapi

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"net/url"
	"reflect"
	"slices"
	"strings"
	"unicode/utf8"
)

// maxJSONDepth bounds the nesting of a JSON request body. Request objects
// are flat; the margin is for clear errors about misplaced values.
const maxJSONDepth = 8

// writeJSON writes v as a JSON response with the status. The body is
// never HTML: '<', '>' and '&' are not escaped.
func writeJSON(w http.ResponseWriter, status int, v any) {
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		// Only this package's response types reach here, and they
		// always marshal.
		panic(fmt.Sprintf("httpapi: marshal response: %v", err))
	}
	writeJSONBody(w, status, b.Bytes())
}

// writeJSONBody answers with status and the JSON body.
func writeJSONBody(w http.ResponseWriter, status int, body []byte) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	w.Write(body)
}

// Media types of request bodies.
const (
	typeJSON = "application/json"
	typeForm = "application/x-www-form-urlencoded"
)

// utf8Charsets are the charset names (lower case) a request body may
// declare: the names and aliases IANA registers for UTF-8 and for
// US-ASCII, which is a subset of UTF-8, so that a body declared as either
// reads the same decoded as UTF-8 (RFC 9110 §8.3.2: charset names are
// case-insensitive). Misspellings such as "utf8" are not registered names
// and are refused with the rest.
var utf8Charsets = []string{
	"utf-8", "csutf8",
	"us-ascii", "ansi_x3.4-1968", "iso-ir-6", "ansi_x3.4-1986", "iso_646.irv:1991",
	"iso646-us", "us", "ibm367", "cp367", "csascii",
}

// contentType is what a request says its body is.
type contentType struct {
	// typ is the media type, lower case without parameters, "" when
	// the header is missing or malformed or appears twice.
	typ string
	// missing is true when there is no Content-Type header.
	missing bool
	// utf8 is true when the charset parameter is absent or names UTF-8
	// or US-ASCII (utf8Charsets).
	utf8 bool
}

// requestContentType parses the request's Content-Type (RFC 9110 §8.3);
// a quoted charset value is unquoted.
func requestContentType(r *http.Request) contentType {
	v := r.Header.Values("Content-Type")
	if len(v) != 1 {
		return contentType{missing: len(v) == 0}
	}
	if v[0] == typeForm || v[0] == typeJSON {
		// What mime.ParseMediaType makes of the plain, lower-case types
		// (without the map of parameters it allocates).
		return contentType{typ: v[0], utf8: true}
	}
	typ, params, err := mime.ParseMediaType(v[0])
	if err != nil {
		return contentType{}
	}
	cs, ok := params["charset"]
	return contentType{typ: typ, utf8: !ok || slices.Contains(utf8Charsets, strings.ToLower(cs))}
}

// check returns the error for a body that is not of media type want, or
// declares a charset other than UTF-8: status (415, or 400 where an RFC
// says so) for a missing, malformed or other media type, and 415 for the
// charset whatever status is.
func (ct contentType) check(want string, status int) error {
	switch {
	case ct.missing:
		return errorf(status, codeInvalidRequest, "Content-Type is missing; send "+want+".")
	case ct.typ == "":
		return errorf(status, codeInvalidRequest, "Content-Type is malformed or repeated; send one "+want+".")
	case ct.typ != want:
		return errorf(status, codeInvalidRequest, "Content-Type must be "+want+".")
	case !ct.utf8:
		return errorf(http.StatusUnsupportedMediaType, codeInvalidRequest,
			"The charset of the body must be UTF-8 (or US-ASCII); omit the charset parameter or send charset=UTF-8.")
	}
	return nil
}

// readBody reads the whole request body, at most MaxBodyBytes.
func readBody(w http.ResponseWriter, r *http.Request) ([]byte, error) {
	b, err := io.ReadAll(http.MaxBytesReader(w, r.Body, MaxBodyBytes))
	if err != nil {
		if _, ok := errors.AsType[*http.MaxBytesError](err); ok {
			return nil, errorf(http.StatusRequestEntityTooLarge, codeInvalidRequest,
				fmt.Sprintf("Request body is larger than %d bytes.", MaxBodyBytes))
		}
		return nil, badRequest("Request body could not be read.")
	}
	return b, nil
}

// decodeJSON reads a JSON object request body into v, a pointer to a
// struct whose fields all have json tags. It is strict: the Content-Type
// must be application/json, with no charset or UTF-8 (or US-ASCII; RFC
// 8259 §8.1) (415 otherwise), the body at most MaxBodyBytes
// (413), valid UTF-8, exactly one JSON object with no trailing data, no
// member that is not one of v's fields (compared exactly, not
// case-insensitively as encoding/json would), no member twice, nesting at
// most maxJSONDepth, and each member of its field's type. Every failure is
// an *httpError with a description of the problem.
func decodeJSON(w http.ResponseWriter, r *http.Request, v any) error {
	if err := requestContentType(r).check(typeJSON, http.StatusUnsupportedMediaType); err != nil {
		return err
	}
	body, err := readBody(w, r)
	if err != nil {
		return err
	}
	if len(bytes.TrimSpace(body)) == 0 {
		return badRequest("Request body is empty; send a JSON object.")
	}
	if !utf8.Valid(body) {
		return badRequest("Request body is not valid UTF-8.")
	}
	if err := checkJSONObject(body, jsonFields(v)); err != nil {
		return err
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		if te, ok := errors.AsType[*json.UnmarshalTypeError](err); ok && te.Field != "" {
			return badRequest(fmt.Sprintf("Field %q has the wrong type; want %s.", te.Field, jsonKind(te.Type)))
		}
		return badRequest("Request body is not a valid JSON object.")
	}
	return nil
}

// jsonKind names a Go type as the JSON type it decodes from.
func jsonKind(t reflect.Type) string {
	switch t.Kind() {
	case reflect.String:
		return "a string"
	case reflect.Bool:
		return "a boolean"
	case reflect.Slice, reflect.Array:
		return "an array"
	case reflect.Map, reflect.Struct:
		return "an object"
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
		reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64,
		reflect.Float32, reflect.Float64:
		return "a number"
	case reflect.Pointer:
		return jsonKind(t.Elem())
	}
	return "another type"
}

// jsonFields returns the json names of the fields of the struct v points to.
func jsonFields(v any) map[string]bool {
	t := reflect.TypeOf(v).Elem()
	fields := make(map[string]bool, t.NumField())
	for i := range t.NumField() {
		name, _, _ := strings.Cut(t.Field(i).Tag.Get("json"), ",")
		if name != "" && name != "-" {
			fields[name] = true
		}
	}
	return fields
}

// checkJSONObject checks that body is exactly one JSON object with members
// named only from fields, each at most once, nested at most maxJSONDepth
// deep, and nothing after it.
func checkJSONObject(body []byte, fields map[string]bool) error {
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.UseNumber()
	invalid := badRequest("Request body is not valid JSON.")
	tok, err := dec.Token()
	if err != nil {
		return invalid
	}
	if d, ok := tok.(json.Delim); !ok || d != '{' {
		return badRequest("Request body must be a JSON object.")
	}
	seen := map[string]bool{}
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return invalid
		}
		name := tok.(string) // object keys are always strings
		if !fields[name] {
			return badRequest(fmt.Sprintf("Unknown field %q.", truncate(name, 64)))
		}
		if seen[name] {
			return badRequest(fmt.Sprintf("Field %q appears more than once.", name))
		}
		seen[name] = true
		if err := skipValue(dec, 1); err != nil {
			return err
		}
	}
	if _, err := dec.Token(); err != nil { // the closing '}'
		return invalid
	}
	if _, err := dec.Token(); err != io.EOF {
		return badRequest("Request body has data after the JSON object.")
	}
	return nil
}

// skipValue reads one JSON value from dec, which is inside depth levels
// of nesting, and fails if the value nests deeper than maxJSONDepth.
func skipValue(dec *json.Decoder, depth int) error {
	tok, err := dec.Token()
	if err != nil {
		return badRequest("Request body is not valid JSON.")
	}
	d, ok := tok.(json.Delim)
	if !ok {
		return nil // a scalar
	}
	if depth+1 > maxJSONDepth {
		return badRequest(fmt.Sprintf("Request body nests deeper than %d levels.", maxJSONDepth))
	}
	for dec.More() {
		if d == '{' {
			if _, err := dec.Token(); err != nil { // the key
				return badRequest("Request body is not valid JSON.")
			}
		}
		if err := skipValue(dec, depth+1); err != nil {
			return err
		}
	}
	if _, err := dec.Token(); err != nil {
		return badRequest("Request body is not valid JSON.")
	}
	return nil
}

// truncate shortens s to at most n bytes, on a rune boundary.
func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n] + "…"
}

// parseForm reads an application/x-www-form-urlencoded request body
// (RFC 6749 §3.2, appendix B) without looking at the query string. A
// parameter sent with an empty value is treated as omitted (RFC 6749
// §3.2), so it does not appear in the result; a parameter sent twice is an
// error. Every failure is a 400 invalid_request *httpError, as RFC 6749
// §5.2 asks of the token endpoint, but for a charset parameter that names
// neither UTF-8 nor US-ASCII (appendix B: the form is UTF-8), which is
// 415.
func parseForm(w http.ResponseWriter, r *http.Request) (map[string]string, error) {
	// RFC 6749 §5.2 answers a malformed request 400, and a wrong media
	// type is one; a charset other than UTF-8 is a body the server cannot
	// read (415, RFC 9110 §15.5.16).
	if err := requestContentType(r).check(typeForm, http.StatusBadRequest); err != nil {
		return nil, err
	}
	body, err := readBody(w, r)
	if err != nil {
		if he, ok := errors.AsType[*httpError](err); ok && he.status == http.StatusRequestEntityTooLarge {
			he.status = http.StatusBadRequest // RFC 6749 §5.2 answers 400
		}
		return nil, err
	}
	values, err := url.ParseQuery(string(body))
	if err != nil {
		return nil, badRequest("Request body is not valid application/x-www-form-urlencoded.")
	}
	form := make(map[string]string, len(values))
	for name, vs := range values {
		if len(vs) > 1 {
			return nil, badRequest(fmt.Sprintf("Parameter %q appears more than once.", truncate(name, 64)))
		}
		if vs[0] != "" {
			form[name] = vs[0]
		}
	}
	return form, nil
}

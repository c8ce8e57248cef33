package httpapi

import (
	"mime"
	"net/http/httptest"
	"testing"
)

// TestRequestContentTypeFastPath checks that the plain media types,
// which requestContentType reads without mime.ParseMediaType, read as
// mime.ParseMediaType reads them, and that the others still go through it.
func TestRequestContentTypeFastPath(t *testing.T) {
	for _, v := range []string{typeForm, typeJSON, "Application/X-WWW-Form-Urlencoded", typeForm + "; charset=UTF-8",
		typeForm + "; charset=latin1", typeJSON + " ", "application/json;", "text/plain", "application/x-www-form-urlencoded,"} {
		r := httptest.NewRequest("POST", "/", nil)
		r.Header.Set("Content-Type", v)
		want := contentType{}
		if typ, params, err := mime.ParseMediaType(v); err == nil {
			cs, ok := params["charset"]
			want = contentType{typ: typ, utf8: !ok || cs == "UTF-8"}
		}
		if got := requestContentType(r); got != want {
			t.Errorf("%q: got %+v, want %+v", v, got, want)
		}
	}
}

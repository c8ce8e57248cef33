package main

import (
	"bytes"
	"encoding/json"
	"os"
	"slices"
	"strings"
	"testing"

	"github.com/santhosh-tekuri/jsonschema/v6"
)

// compile compiles a generated schema as kubeconform does (draft 4).
func compile(t *testing.T, schema []byte) *jsonschema.Schema {
	t.Helper()
	doc, err := jsonschema.UnmarshalJSON(bytes.NewReader(schema))
	if err != nil {
		t.Fatal(err)
	}
	c := jsonschema.NewCompiler()
	c.DefaultDraft(jsonschema.Draft4)
	if err := c.AddResource("file:///schema.json", doc); err != nil {
		t.Fatal(err)
	}
	s, err := c.Compile("file:///schema.json")
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// convertTestdata converts testdata/swagger.json, a slice of the
// Kubernetes API with the features the converter handles.
func convertTestdata(t *testing.T) map[string][]byte {
	t.Helper()
	data, err := os.ReadFile("testdata/swagger.json")
	if err != nil {
		t.Fatal(err)
	}
	files, err := convert(data)
	if err != nil {
		t.Fatal(err)
	}
	return files
}

func TestConvertFileNames(t *testing.T) {
	files := convertTestdata(t)
	var got []string
	for name := range files {
		got = append(got, name)
	}
	slices.Sort(got)
	// kubeconform's {{ .ResourceKind }}{{ .KindSuffix }}: the core group has
	// no group part, other groups their first label.
	want := []string{"gadget-v1.json", "route-networking-v1.json", "widget-apps-v1.json"}
	if !slices.Equal(got, want) {
		t.Errorf("got files %v, want %v", got, want)
	}
}

func TestConvertValidates(t *testing.T) {
	files := convertTestdata(t)
	widget := compile(t, files["widget-apps-v1.json"])
	tests := []struct {
		name     string
		manifest string
		valid    bool
	}{
		{name: "minimal", manifest: `{"apiVersion":"apps/v1","kind":"Widget","spec":{"replicas":1}}`, valid: true},
		{name: "int-or-string as a string", manifest: `{"apiVersion":"apps/v1","kind":"Widget","spec":{"replicas":1,"port":"http"}}`, valid: true},
		{name: "int-or-string as an integer", manifest: `{"apiVersion":"apps/v1","kind":"Widget","spec":{"replicas":1,"port":8080}}`, valid: true},
		{name: "int-or-string as a boolean", manifest: `{"apiVersion":"apps/v1","kind":"Widget","spec":{"replicas":1,"port":true}}`},
		{name: "quantity as a string", manifest: `{"apiVersion":"apps/v1","kind":"Widget","spec":{"replicas":1,"memory":"64Mi"}}`, valid: true},
		{name: "quantity as a number", manifest: `{"apiVersion":"apps/v1","kind":"Widget","spec":{"replicas":1,"memory":0.5}}`, valid: true},
		{name: "optional field null", manifest: `{"apiVersion":"apps/v1","kind":"Widget","metadata":null,"spec":{"replicas":1,"port":null}}`, valid: true},
		{name: "required field null", manifest: `{"apiVersion":"apps/v1","kind":"Widget","spec":{"replicas":null}}`},
		{name: "required field missing", manifest: `{"apiVersion":"apps/v1","kind":"Widget","spec":{}}`},
		{name: "unknown field", manifest: `{"apiVersion":"apps/v1","kind":"Widget","spec":{"replicas":1,"replica":2}}`},
		{name: "unknown field in a referenced definition", manifest: `{"apiVersion":"apps/v1","kind":"Widget","metadata":{"nam":"x"},"spec":{"replicas":1}}`},
		{name: "unknown field in a recursive definition", manifest: `{"apiVersion":"apps/v1","kind":"Widget","spec":{"replicas":1,"children":[{"replicas":1,"x":1}]}}`},
		{name: "free-form map", manifest: `{"apiVersion":"apps/v1","kind":"Widget","spec":{"replicas":1,"labels":{"a":"b"}}}`, valid: true},
		{name: "wrong type", manifest: `{"apiVersion":"apps/v1","kind":"Widget","spec":{"replicas":"1"}}`},
		{name: "other apiVersion", manifest: `{"apiVersion":"apps/v2","kind":"Widget","spec":{"replicas":1}}`},
		{name: "no kind", manifest: `{"apiVersion":"apps/v1","spec":{"replicas":1}}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			doc, err := jsonschema.UnmarshalJSON(strings.NewReader(tt.manifest))
			if err != nil {
				t.Fatal(err)
			}
			err = widget.Validate(doc)
			if got := err == nil; got != tt.valid {
				t.Errorf("valid: got %v, want %v (%v)", got, tt.valid, err)
			}
		})
	}
}

func TestConvertStandalone(t *testing.T) {
	files := convertTestdata(t)
	var schema struct {
		Definitions map[string]any `json:"definitions"`
	}
	if err := json.Unmarshal(files["gadget-v1.json"], &schema); err != nil {
		t.Fatal(err)
	}
	// Gadget reaches no other definition: a file carries only what its
	// kind needs.
	if len(schema.Definitions) != 0 {
		t.Errorf("gadget's definitions: got %d, want none", len(schema.Definitions))
	}
}

func TestConvertRefusesBrokenDocuments(t *testing.T) {
	tests := []struct {
		name    string
		swagger string
		want    string
	}{
		{name: "not JSON", swagger: `{`, want: "swagger"},
		{name: "no definitions", swagger: `{"definitions":{}}`, want: "no definitions"},
		{name: "dangling $ref", swagger: `{"definitions":{"a.B":{"type":"object","properties":{"c":{"$ref":"#/definitions/nope"}},"x-kubernetes-group-version-kind":[{"group":"","kind":"B","version":"v1"}]}}}`, want: "undefined"},
		{name: "remote $ref", swagger: `{"definitions":{"a.B":{"type":"object","properties":{"c":{"$ref":"http://x/y"}},"x-kubernetes-group-version-kind":[{"group":"","kind":"B","version":"v1"}]}}}`, want: "unsupported $ref"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := convert([]byte(tt.swagger))
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("got %v, want an error with %q", err, tt.want)
			}
		})
	}
}

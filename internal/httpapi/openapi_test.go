package httpapi

import (
	"os"
	"regexp"
	"slices"
	"strings"
	"testing"

	"go.yaml.in/yaml/v3"

	"github.com/keycard-auth/keycard/internal/metrics"
)

// openAPIPath is the OpenAPI document of the HTTP API, from this package.
const openAPIPath = "../../docs/openapi.yaml"

// openAPIMethods are the keys of an OpenAPI path item that are operations.
var openAPIMethods = []string{"get", "put", "post", "delete", "options", "head", "patch", "trace"}

// openAPIDoc is the part of an OpenAPI document the test reads.
type openAPIDoc struct {
	OpenAPI    string                               `yaml:"openapi"`
	Info       map[string]any                       `yaml:"info"`
	Paths      map[string]map[string]map[string]any `yaml:"paths"`
	Components struct {
		SecuritySchemes map[string]map[string]any `yaml:"securitySchemes"`
		Parameters      map[string]map[string]any `yaml:"parameters"`
	} `yaml:"components"`
}

func loadOpenAPI(t *testing.T) (*openAPIDoc, any) {
	t.Helper()
	b, err := os.ReadFile(openAPIPath)
	if err != nil {
		t.Fatal(err)
	}
	var doc openAPIDoc
	if err := yaml.Unmarshal(b, &doc); err != nil {
		t.Fatalf("%s: %v", openAPIPath, err)
	}
	var raw any
	if err := yaml.Unmarshal(b, &raw); err != nil {
		t.Fatal(err)
	}
	return &doc, raw
}

// The document describes exactly the routes the server registers: every
// registered (method, path) is documented, and every documented one is
// registered.
func TestOpenAPIMatchesRoutes(t *testing.T) {
	doc, _ := loadOpenAPI(t)
	f := newFixture(t, fixtureOptions{metrics: metrics.New(metrics.Options{})}) // with GET /metrics
	registered := map[string]bool{}
	for _, p := range f.server.routePatterns() {
		method, path, ok := strings.Cut(p, " ")
		if !ok || !strings.HasPrefix(path, "/") {
			t.Errorf("route pattern %q has no method or a host: the comparison cannot place it", p)
			continue
		}
		// ServeMux wildcards {name} and {name...} are OpenAPI's {name}.
		path = strings.ReplaceAll(path, "...}", "}")
		if strings.Contains(path, "{$}") {
			t.Errorf("route pattern %q: {$} has no OpenAPI form", p)
		}
		key := method + " " + path
		if registered[key] {
			t.Errorf("route %s registered twice", key)
		}
		registered[key] = true
	}
	if len(registered) == 0 {
		t.Fatal("the server recorded no routes")
	}
	documented := map[string]bool{}
	for path, item := range doc.Paths {
		for method := range item {
			if slices.Contains(openAPIMethods, method) {
				documented[strings.ToUpper(method)+" "+path] = true
			}
		}
	}
	for _, k := range sortedKeys(registered) {
		if !documented[k] {
			t.Errorf("route %s is registered but not in %s", k, openAPIPath)
		}
	}
	for _, k := range sortedKeys(documented) {
		if !registered[k] {
			t.Errorf("%s documents %s, which the server does not register", openAPIPath, k)
		}
	}
}

// The document is structurally sound: a 3.x version and info, every
// operation has responses with valid status keys, path parameters are
// declared for every template variable, security requirements name
// defined schemes, and every local $ref resolves.
func TestOpenAPIStructure(t *testing.T) {
	doc, raw := loadOpenAPI(t)
	if !strings.HasPrefix(doc.OpenAPI, "3.") {
		t.Errorf("openapi version %q, want 3.x", doc.OpenAPI)
	}
	if doc.Info["title"] == nil || doc.Info["version"] == nil {
		t.Error("info lacks title or version")
	}
	if len(doc.Paths) == 0 {
		t.Fatal("no paths")
	}
	statusKey := regexp.MustCompile(`^([1-5][0-9][0-9]|[1-5]XX|default)$`)
	templateVar := regexp.MustCompile(`\{([^}]+)\}`)
	operationIDs := map[string]string{}
	for path, item := range doc.Paths {
		if !strings.HasPrefix(path, "/") {
			t.Errorf("path %q does not start with /", path)
		}
		for method, op := range item {
			if !slices.Contains(openAPIMethods, method) {
				if method != "parameters" && method != "summary" && method != "description" && method != "servers" {
					t.Errorf("%s: unknown path item key %q", path, method)
				}
				continue
			}
			name := strings.ToUpper(method) + " " + path
			if id, _ := op["operationId"].(string); id == "" {
				t.Errorf("%s: no operationId", name)
			} else if other, dup := operationIDs[id]; dup {
				t.Errorf("%s and %s share the operationId %q", name, other, id)
			} else {
				operationIDs[id] = name
			}
			responses, _ := op["responses"].(map[string]any)
			if len(responses) == 0 {
				t.Errorf("%s: no responses", name)
			}
			for code := range responses {
				if !statusKey.MatchString(code) {
					t.Errorf("%s: response key %q is not a status code", name, code)
				}
			}
			declared := map[string]bool{}
			params, _ := op["parameters"].([]any)
			for _, p := range params {
				pm, _ := p.(map[string]any)
				if ref, ok := pm["$ref"].(string); ok {
					pm = doc.Components.Parameters[strings.TrimPrefix(ref, "#/components/parameters/")]
				}
				if pm["in"] == "path" {
					declared[pm["name"].(string)] = true
				}
			}
			for _, m := range templateVar.FindAllStringSubmatch(path, -1) {
				if !declared[m[1]] {
					t.Errorf("%s: path parameter %q not declared", name, m[1])
				}
				delete(declared, m[1])
			}
			for p := range declared {
				t.Errorf("%s: path parameter %q is not in the path", name, p)
			}
			sec, ok := op["security"].([]any)
			if !ok {
				t.Errorf("%s: no security requirement (use [] for none)", name)
			}
			for _, req := range sec {
				for scheme := range req.(map[string]any) {
					if doc.Components.SecuritySchemes[scheme] == nil {
						t.Errorf("%s: security scheme %q is not defined", name, scheme)
					}
				}
			}
		}
	}
	// Every local $ref resolves.
	var walk func(v any)
	walk = func(v any) {
		switch v := v.(type) {
		case map[string]any:
			if ref, ok := v["$ref"].(string); ok {
				if resolveRef(raw, ref) == nil {
					t.Errorf("$ref %q does not resolve", ref)
				}
			}
			for _, e := range v {
				walk(e)
			}
		case []any:
			for _, e := range v {
				walk(e)
			}
		}
	}
	walk(raw)
}

// resolveRef returns the node a local JSON pointer ("#/a/b") names in doc,
// nil if none.
func resolveRef(doc any, ref string) any {
	pointer, ok := strings.CutPrefix(ref, "#/")
	if !ok {
		return nil
	}
	node := doc
	for _, part := range strings.Split(pointer, "/") {
		part = strings.ReplaceAll(strings.ReplaceAll(part, "~1", "/"), "~0", "~")
		m, ok := node.(map[string]any)
		if !ok {
			return nil
		}
		if node, ok = m[part]; !ok {
			return nil
		}
	}
	return node
}

func sortedKeys(m map[string]bool) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}

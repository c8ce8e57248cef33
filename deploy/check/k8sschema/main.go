// Command k8sschema turns the Kubernetes OpenAPI v2 document (swagger.json,
// as published in the k8s.io/kubernetes module under api/openapi-spec) into
// one JSON schema per kind, in the layout kubeconform reads with
// -schema-location 'DIR/{{ .ResourceKind }}{{ .KindSuffix }}.json', so that
// rendered manifests can be validated without a network.
//
//	k8sschema -swagger swagger.json -out DIR
//
// It does what openapi2jsonschema does for kubeconform's published schemas
// (standalone, strict):
//   - each file is self-contained: the kind's definition at the root and
//     every definition it reaches under "definitions", referenced as
//     "#/definitions/NAME" (recursive types stay references);
//   - strict: an object with properties admits no other property, as the
//     API server's field validation refuses unknown fields;
//   - int-or-string fields accept a string or an integer, and quantities a
//     string or a number, as the API server does;
//   - an optional field may be null (the API server reads null as unset);
//   - apiVersion and kind must be the file's.
package main

import (
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
)

const (
	refPrefix   = "#/definitions/"
	quantityDef = "io.k8s.apimachinery.pkg.api.resource.Quantity"
)

func main() {
	swagger := flag.String("swagger", "", "the Kubernetes OpenAPI v2 `file` (api/openapi-spec/swagger.json)")
	out := flag.String("out", "", "output `directory` (created)")
	flag.Parse()
	if *swagger == "" || *out == "" || flag.NArg() != 0 {
		flag.Usage()
		os.Exit(2)
	}
	n, err := run(*swagger, *out)
	if err != nil {
		fmt.Fprintln(os.Stderr, "k8sschema:", err)
		os.Exit(1)
	}
	fmt.Printf("k8sschema: %d schemas in %s\n", n, *out)
}

func run(swaggerPath, out string) (int, error) {
	data, err := os.ReadFile(swaggerPath)
	if err != nil {
		return 0, err
	}
	files, err := convert(data)
	if err != nil {
		return 0, err
	}
	if err := os.MkdirAll(out, 0o755); err != nil {
		return 0, err
	}
	for name, schema := range files {
		if err := os.WriteFile(filepath.Join(out, name), schema, 0o644); err != nil {
			return 0, err
		}
	}
	return len(files), nil
}

type gvk struct {
	Group   string `json:"group"`
	Version string `json:"version"`
	Kind    string `json:"kind"`
}

// apiVersion is the apiVersion of manifests of k: "v1" for the core
// group, "GROUP/VERSION" otherwise.
func (k gvk) apiVersion() string {
	if k.Group == "" {
		return k.Version
	}
	return k.Group + "/" + k.Version
}

// fileName is kubeconform's name for k's schema: the lower-case kind and
// its KindSuffix, "-" + the group's first label (if any) + "-" + the
// version (github.com/yannh/kubeconform pkg/registry).
func (k gvk) fileName() string {
	suffix := "-" + strings.ToLower(k.Version)
	if k.Group != "" {
		suffix = "-" + strings.ToLower(strings.Split(k.Group, ".")[0]) + suffix
	}
	return strings.ToLower(k.Kind) + suffix + ".json"
}

// convert returns the schema files of every kind the document defines, by
// file name.
func convert(swagger []byte) (map[string][]byte, error) {
	var doc struct {
		Definitions map[string]map[string]any `json:"definitions"`
	}
	if err := json.Unmarshal(swagger, &doc); err != nil {
		return nil, fmt.Errorf("swagger: %w", err)
	}
	if len(doc.Definitions) == 0 {
		return nil, errors.New("swagger: no definitions")
	}
	defs := make(map[string]any, len(doc.Definitions))
	for name, def := range doc.Definitions {
		if name == quantityDef {
			defs[name] = numberOrString(def)
			continue
		}
		defs[name] = rewrite(def)
	}
	files := map[string][]byte{}
	names := make([]string, 0, len(doc.Definitions))
	for name := range doc.Definitions {
		names = append(names, name)
	}
	slices.Sort(names) // of two definitions claiming one kind, the first name wins, every run
	for _, name := range names {
		raw, ok := doc.Definitions[name]["x-kubernetes-group-version-kind"]
		if !ok {
			continue
		}
		b, err := json.Marshal(raw)
		if err != nil {
			return nil, err
		}
		var kinds []gvk
		if err := json.Unmarshal(b, &kinds); err != nil {
			return nil, fmt.Errorf("%s: x-kubernetes-group-version-kind: %w", name, err)
		}
		for _, k := range kinds {
			file := k.fileName()
			if _, dup := files[file]; dup {
				continue
			}
			schema, err := standalone(defs, name, k)
			if err != nil {
				return nil, fmt.Errorf("%s: %w", name, err)
			}
			if files[file], err = json.Marshal(schema); err != nil {
				return nil, err
			}
		}
	}
	return files, nil
}

// standalone returns the schema of kind k defined by root: root's
// definition, with apiVersion and kind pinned, and every definition it
// reaches.
func standalone(defs map[string]any, root string, k gvk) (map[string]any, error) {
	reached := map[string]any{}
	var walk func(v any) error
	walk = func(v any) error {
		switch v := v.(type) {
		case map[string]any:
			if ref, ok := v["$ref"].(string); ok {
				name, ok := strings.CutPrefix(ref, refPrefix)
				if !ok {
					return fmt.Errorf("unsupported $ref %q", ref)
				}
				if _, seen := reached[name]; !seen {
					def, ok := defs[name]
					if !ok {
						return fmt.Errorf("$ref to an undefined %q", name)
					}
					reached[name] = def
					if err := walk(def); err != nil {
						return err
					}
				}
			}
			for _, child := range v {
				if err := walk(child); err != nil {
					return err
				}
			}
		case []any:
			for _, child := range v {
				if err := walk(child); err != nil {
					return err
				}
			}
		}
		return nil
	}
	top, ok := defs[root].(map[string]any)
	if !ok {
		return nil, errors.New("not an object schema")
	}
	if err := walk(top); err != nil {
		return nil, err
	}
	schema := shallowCopy(top)
	props, ok := schema["properties"].(map[string]any)
	if !ok {
		return nil, errors.New("a kind without properties")
	}
	props = shallowCopy(props)
	props["apiVersion"] = map[string]any{"type": "string", "enum": []any{k.apiVersion()}}
	props["kind"] = map[string]any{"type": "string", "enum": []any{k.Kind}}
	schema["properties"] = props
	// Every manifest names its apiVersion and kind.
	required, _ := schema["required"].([]any)
	for _, f := range []string{"apiVersion", "kind"} {
		if !slices.Contains(required, any(f)) {
			required = append(slices.Clip(required), f)
		}
	}
	schema["required"] = required
	schema["definitions"] = reached
	return schema, nil
}

// rewrite returns a copy of an OpenAPI schema made strict, with
// int-or-string fields accepting either, and optional properties nullable.
func rewrite(v any) any {
	switch v := v.(type) {
	case map[string]any:
		if v["format"] == "int-or-string" {
			return withDescription(v, map[string]any{"oneOf": []any{
				map[string]any{"type": "string"}, map[string]any{"type": "integer"},
			}})
		}
		out := make(map[string]any, len(v)+1)
		for k, child := range v {
			if k == "properties" {
				continue
			}
			out[k] = rewrite(child)
		}
		if props, ok := v["properties"].(map[string]any); ok {
			required := map[string]bool{}
			if req, ok := v["required"].([]any); ok {
				for _, r := range req {
					if s, ok := r.(string); ok {
						required[s] = true
					}
				}
			}
			newProps := make(map[string]any, len(props))
			for name, p := range props {
				p = rewrite(p)
				if !required[name] {
					p = nullable(p)
				}
				newProps[name] = p
			}
			out["properties"] = newProps
			if _, ok := v["additionalProperties"]; !ok {
				out["additionalProperties"] = false
			}
		}
		return out
	case []any:
		out := make([]any, len(v))
		for i, child := range v {
			out[i] = rewrite(child)
		}
		return out
	default:
		return v
	}
}

// nullable lets a property's schema also accept null.
func nullable(v any) any {
	m, ok := v.(map[string]any)
	if !ok {
		return v
	}
	switch t := m["type"].(type) {
	case string:
		out := shallowCopy(m)
		out["type"] = []any{t, "null"}
		return out
	case nil:
		// A $ref or a oneOf: null is a further alternative. (In draft 4,
		// the keywords beside a $ref are ignored, so wrap it.)
		return map[string]any{"anyOf": []any{m, map[string]any{"type": "null"}}}
	default:
		return m
	}
}

// numberOrString is the schema of a quantity ("500m", "1Gi", 2, 0.5):
// the API server reads a JSON number as well as a string.
func numberOrString(def map[string]any) any {
	return withDescription(def, map[string]any{"oneOf": []any{
		map[string]any{"type": "string"}, map[string]any{"type": "number"},
	}})
}

func withDescription(from, to map[string]any) map[string]any {
	if d, ok := from["description"]; ok {
		to["description"] = d
	}
	return to
}

func shallowCopy(m map[string]any) map[string]any {
	out := make(map[string]any, len(m)+2)
	for k, v := range m {
		out[k] = v
	}
	return out
}

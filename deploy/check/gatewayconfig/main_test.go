package main

import (
	"io"
	"strings"
	"testing"
)

func TestCheck(t *testing.T) {
	const good = `listen: 0.0.0.0:8080
behind_proxy: true
issuer: https://auth.example.com
audience: api
client: {id: gw, secret_file: /s}
routes:
  - {path: /weather/, upstream: 'http://weather:8080', scopes: [weather:read]}
`
	manifest := func(name, kind, file string) string {
		return "---\napiVersion: v1\nkind: " + kind + "\nmetadata:\n  name: " + name + "\ndata:\n  gateway.yaml: |\n    " +
			strings.ReplaceAll(strings.TrimRight(file, "\n"), "\n", "\n    ") + "\n"
	}
	tests := []struct {
		name      string
		manifests string
		wantN     int
		wantErr   string
	}{
		{name: "good", manifests: manifest("gw", "ConfigMap", good), wantN: 1},
		{name: "not a ConfigMap", manifests: manifest("gw", "Secret", good), wantN: 0},
		{name: "none", manifests: "---\napiVersion: v1\nkind: Service\nmetadata: {name: x}\n", wantN: 0},
		{name: "unknown key", manifests: manifest("gw", "ConfigMap", strings.Replace(good, "scopes:", "scoeps:", 1)), wantN: 1, wantErr: "scoeps"},
		{name: "no routes", manifests: manifest("gw", "ConfigMap", strings.Split(good, "routes:")[0]), wantN: 1, wantErr: "routes"},
		{name: "one good, one bad", manifests: manifest("a", "ConfigMap", good) + manifest("b", "ConfigMap", "listen: [\n"), wantN: 2, wantErr: "ConfigMap b"},
		{name: "not YAML", manifests: "kind: [", wantErr: "manifests"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			n, err := check(strings.NewReader(tt.manifests), io.Discard)
			if tt.wantErr == "" && err != nil {
				t.Fatalf("got error %v, want none", err)
			}
			if tt.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tt.wantErr)) {
				t.Fatalf("got error %v, want one with %q", err, tt.wantErr)
			}
			if n != tt.wantN {
				t.Errorf("got %d configurations, want %d", n, tt.wantN)
			}
		})
	}
}

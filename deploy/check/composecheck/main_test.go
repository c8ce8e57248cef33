package main

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestRepositoryComposeFile: the trial's compose file passes.
func TestRepositoryComposeFile(t *testing.T) {
	p, err := load(context.Background(), "../../compose.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if err := checkBuilds(p); err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"auth-1", "auth-2", "gateway", "postgres", "redis", "setup"} {
		if _, ok := p.Services[name]; !ok {
			t.Errorf("service %s missing", name)
		}
	}
}

func TestComposeFileRefused(t *testing.T) {
	const dockerfile = "FROM golang:1.26 AS build\nFROM scratch\n"
	tests := []struct {
		name    string
		compose string
		want    string
	}{
		{
			name:    "unknown key",
			compose: "services:\n  a:\n    image: x\n    enviroment: {A: b}\n",
			want:    "enviroment",
		},
		{
			name:    "depends on a missing service",
			compose: "services:\n  a:\n    image: x\n    depends_on: [b]\n",
			want:    "b",
		},
		{
			name:    "undefined volume",
			compose: "services:\n  a:\n    image: x\n    volumes: [data:/data]\n",
			want:    "data",
		},
		{
			name:    "wrong type",
			compose: "services:\n  a:\n    image: x\n    read_only: sometimes\n",
			want:    "read_only",
		},
		{
			name:    "missing build target",
			compose: "services:\n  a:\n    build: {context: ., target: setup}\n",
			want:    `build target "setup"`,
		},
		{
			name:    "missing Dockerfile",
			compose: "services:\n  a:\n    build: {context: ., dockerfile: nope/Dockerfile}\n",
			want:    "nope/Dockerfile",
		},
		{
			name:    "script not in the context",
			compose: "services:\n  a:\n    build: {context: ., target: build}\n    command: [sh, /src/missing.sh]\n",
			want:    "/src/missing.sh",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			if err := os.WriteFile(filepath.Join(dir, "Dockerfile"), []byte(dockerfile), 0o644); err != nil {
				t.Fatal(err)
			}
			path := filepath.Join(dir, "compose.yaml")
			if err := os.WriteFile(path, []byte(tt.compose), 0o644); err != nil {
				t.Fatal(err)
			}
			p, err := load(context.Background(), path)
			if err == nil {
				err = checkBuilds(p)
			}
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("got %v, want an error naming %q", err, tt.want)
			}
		})
	}
}

func TestReadStages(t *testing.T) {
	path := filepath.Join(t.TempDir(), "Dockerfile")
	content := "# FROM x AS comment\nFROM golang:1.26 AS Build\nfrom --platform=$BUILDPLATFORM alpine as tools\nFROM scratch\n"
	if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
	got, err := readStages(path)
	if err != nil {
		t.Fatal(err)
	}
	if strings.Join(got, ",") != "build,tools" {
		t.Errorf("got stages %v, want [build tools]", got)
	}
}

package main

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"
)

// nodePackageDir is @keycard/node, the Node.js verifier; its dependencies
// are installed by npm ci in js/ (.ci/run does it).
const nodePackageDir = "../../js/node"

// TestNodeVerifier runs @keycard/node's end-to-end tests
// (js/node/src/e2e/serve.test.ts) against a real keycard serve that the
// Node test starts and stops itself, from the binary built here: a
// logout refused at an Express app within a second (by stream and by
// long-poll), a key rotation followed, an emergency key revocation, and
// the auth server stopped (cached keys keep verifying, then 503 after the
// outage bound). It compiles the package's TypeScript first, so that it
// tests the current source. Without node or without js/node_modules it
// skips, unless KEYCARD_TEST_NODE=1 (CI), which makes it fail.
func TestNodeVerifier(t *testing.T) {
	node, err := exec.LookPath("node")
	if err == nil {
		for _, m := range []string{"typescript", "jose", "express"} {
			if _, err = os.Stat(filepath.Join(nodePackageDir, "..", "node_modules", m, "package.json")); err != nil {
				break
			}
		}
	}
	if err != nil {
		if os.Getenv("KEYCARD_TEST_NODE") == "1" {
			t.Fatalf("KEYCARD_TEST_NODE=1 but no node or no js/node_modules (npm ci in js): %v", err)
		}
		t.Skipf("skipping: no node or no js/node_modules (npm ci in js; KEYCARD_TEST_NODE=1 makes this fail): %v", err)
	}
	if testing.Short() {
		t.Skip("skipping in -short mode: builds the keycard binary")
	}
	bin := buildClusterBinary(t, t.TempDir())

	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	tsc := exec.CommandContext(ctx, node, "../node_modules/typescript/bin/tsc", "-p", "tsconfig.json")
	tsc.Dir = nodePackageDir
	if out, err := tsc.CombinedOutput(); err != nil {
		t.Fatalf("building @keycard/node: %v\n%s", err, out)
	}
	cmd := exec.CommandContext(ctx, node, "--test", "--test-reporter=spec", "dist/e2e/")
	cmd.Dir = nodePackageDir
	cmd.Env = clusterEnv("KEYCARD_BIN=" + bin)
	out, err := cmd.CombinedOutput()
	t.Logf("node --test dist/e2e/:\n%s", out)
	if err != nil {
		t.Fatalf("@keycard/node end-to-end tests failed: %v", err)
	}
}

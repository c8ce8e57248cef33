package verifier_test

import (
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
)

// TestDependencies keeps the verifier on the standard library and
// Keycard's own jose and jwt packages (with internal/jsonscan, their
// JSON reader), as its users are promised. The list holds every
// dependency, direct or not, so jsonscan's are checked too.
func TestDependencies(t *testing.T) {
	goBin := filepath.Join(runtime.GOROOT(), "bin", "go") //lint:ignore SA1019 the go command that runs this test is the one to ask
	if _, err := os.Stat(goBin); err != nil {
		t.Skipf("skipping: no go command at %s", goBin)
	}
	out, err := exec.CommandContext(t.Context(), goBin, "list", "-deps", "-f", "{{if not .Standard}}{{.ImportPath}}{{end}}", ".").Output()
	if err != nil {
		t.Fatalf("go list: %v", err)
	}
	allowed := map[string]bool{
		"github.com/keycard-auth/keycard/verifier": true,
		"github.com/keycard-auth/keycard/jose":     true,
		"github.com/keycard-auth/keycard/jwt":      true,
		// DPoP proofs: standard library, jose and jwt, like this package.
		"github.com/keycard-auth/keycard/dpop": true,
		// The token core's JSON reader: standard library only, and
		// internal to this module, so no part of the verifier's API.
		"github.com/keycard-auth/keycard/internal/jsonscan": true,
	}
	for _, p := range strings.Fields(string(out)) {
		if !allowed[p] {
			t.Errorf("verifier depends on %s; only the standard library, jose, jwt, dpop and internal/jsonscan are allowed", p)
		}
	}
}

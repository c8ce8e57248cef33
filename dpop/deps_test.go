package dpop_test

import (
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
)

// TestDependencies keeps dpop on the standard library and Keycard's jose,
// jwt and their JSON reader: the verifier, which services import, uses
// it.
func TestDependencies(t *testing.T) {
	goBin := filepath.Join(runtime.GOROOT(), "bin", "go") //lint:ignore SA1019 the go command that runs this test is the one to ask
	if _, err := os.Stat(goBin); err != nil {
		t.Skipf("skipping: no go command at %s", goBin)
	}
	out, err := exec.CommandContext(t.Context(), goBin, "list", "-deps", "-f", "{{if not .Standard}}{{.ImportPath}}{{end}}", ".").Output()
	if err != nil {
		t.Fatalf("go list: %v", err)
	}
	const m = "github.com/keycard-auth/keycard/"
	allowed := map[string]bool{m + "dpop": true, m + "jose": true, m + "jwt": true, m + "internal/jsonscan": true}
	for _, p := range strings.Fields(string(out)) {
		if !allowed[p] {
			t.Errorf("dpop depends on %s; only the standard library, jose, jwt and internal/jsonscan are allowed", p)
		}
	}
}

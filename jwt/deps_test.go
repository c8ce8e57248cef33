package jwt_test

import (
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
)

// TestStandardLibraryOnly checks that packages jose and jwt depend on the
// Go standard library alone, as their documentation promises: their
// non-test dependencies, as `go list -deps` reports them, are standard
// packages (whose import path has no dot in its first element), jose and
// jwt themselves, or internal/jsonscan, their JSON reader, whose own
// dependencies are in the same list and so held to the same rule.
// Test-only dependencies such as the interop peers are not counted, since
// importers never build them.
func TestStandardLibraryOnly(t *testing.T) {
	const module = "github.com/keycard-auth/keycard"
	allowed := map[string]bool{module + "/jose": false, module + "/jwt": false, module + "/internal/jsonscan": false}

	goBin := filepath.Join(runtime.GOROOT(), "bin", "go") //lint:ignore SA1019 the go command that runs this test is the one to ask
	if _, err := os.Stat(goBin); err != nil {
		t.Skipf("skipping: no go command at %s", goBin)
	}
	cmd := exec.CommandContext(t.Context(), goBin, "list", "-deps", module+"/jose", module+"/jwt")
	out, err := cmd.Output()
	if err != nil {
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			t.Fatalf("go list -deps: %v\n%s", err, ee.Stderr)
		}
		t.Fatalf("go list -deps: %v", err)
	}
	var n int
	for _, path := range strings.Fields(string(out)) {
		n++
		if _, ok := allowed[path]; ok {
			allowed[path] = true
			continue
		}
		first, _, _ := strings.Cut(path, "/")
		if strings.Contains(first, ".") {
			t.Errorf("jose/jwt depend on %s, which is not in the standard library", path)
		}
	}
	for path, seen := range allowed {
		if !seen {
			t.Errorf("go list -deps did not list %s itself; output:\n%s", path, out)
		}
	}
	if !t.Failed() {
		t.Logf("jose and jwt: %d packages in their dependency graph, all standard library or their own", n)
	}
}

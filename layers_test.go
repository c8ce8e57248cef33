package keycard_test

import (
	"encoding/json"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"testing"
)

// module is the import path of the module; rules below use paths
// relative to it ("" for the root package).
const module = "github.com/keycard-auth/keycard"

// layers is the layering rule of docs/architecture.md: for each package
// of the module, the packages of the module it may import (its own
// non-test imports; tests may import more). A package missing from the
// table fails the test, so a new package gets a rule when it is made.
var layers = map[string][]string{
	"":                          {},
	"jose":                      {"internal/jsonscan"},
	"jwt":                       {"jose", "internal/jsonscan"},
	"verifier":                  {"jose", "jwt", "dpop", "internal/jsonscan"},
	"dpop":                      {"jose", "jwt", "internal/jsonscan"},
	"internal/jsonscan":         {},
	"internal/username":         {""},
	"internal/password":         {"internal/argon2"},
	"internal/argon2":           {},
	"internal/throttle":         {},
	"internal/totp":             {},
	"internal/tlsconfig":        {},
	"internal/tracing":          {},
	"internal/tracing/otlptest": {},
	"internal/auth":             {"", "jose", "jwt", "internal/jsonscan", "internal/password", "internal/username", "internal/throttle", "internal/totp"},
	"internal/sqlite":           {""},
	"internal/postgres":         {""},
	"internal/redis":            {"internal/throttle", "dpop"},
	"internal/storetest":        {"", "internal/username"},
	"internal/metrics":          {"", "internal/auth"},
	"internal/browser":          {"", "internal/auth"},
	"internal/httpapi":          {"", "internal/auth", "internal/browser", "internal/tracing", "jose", "jwt", "dpop"},
	"internal/web":              {"", "internal/auth", "internal/browser", "internal/federation"},
	// The relying party of upstream identity providers checks their ID
	// and logout tokens with verifier.RemoteKeySet: the one package of
	// the auth server that imports verifier (docs/decisions/federation.md).
	"internal/federation": {"jose", "jwt", "verifier"},
	"internal/server": {"", "jose", "dpop", "internal/auth", "internal/backchannel", "internal/claimshook", "internal/webhook", "internal/mail", "internal/passkey", "internal/browser", "internal/httpapi", "internal/web", "internal/federation", "internal/metrics",
		"internal/password", "internal/throttle", "internal/tlsconfig", "internal/sqlite", "internal/postgres", "internal/redis",
		"internal/tracing", "internal/storetrace"},
	"internal/storetrace": {"", "internal/tracing"},
	"internal/gateway":    {"jose", "jwt", "dpop", "verifier", "internal/tlsconfig", "internal/tracing"},
	"internal/demo": {"", "jose", "jwt", "verifier", "internal/auth", "internal/backchannel", "internal/browser", "internal/gateway", "internal/httpapi",
		"internal/server", "internal/tlsconfig", "internal/tracing", "internal/web"},
	"internal/loadgen":             {"", "jose", "jwt", "dpop"},
	"internal/authtest":            {"", "jose", "internal/auth", "internal/password", "internal/sqlite"},
	"internal/backchannel":         {"", "internal/outbox"},
	"internal/outbox":              {},
	"internal/claimshook":          {"internal/auth", "internal/webhook"},
	"internal/webhook":             {"", "internal/outbox"},
	"internal/postgres/pgtest":     {},
	"internal/cliauth":             {"jose", "jwt"},
	"internal/chrometest":          {},
	"internal/mail":                {"internal/auth"},
	"internal/passkey":             {"", "internal/auth", "internal/jsonscan"},
	"internal/mailpittest":         {},
	"internal/passkey/passkeytest": {},
	"cmd/keycard":                  nil, // the command wires everything: no rule
}

// neverBelow lists, for a package, module packages it must not reach even
// indirectly: the auth server touches the verifying side only through
// jose and jwt, and the domain knows no transport or storage.
var neverBelow = map[string][]string{
	"":              {"jose", "jwt", "verifier", "internal/auth", "internal/httpapi", "internal/sqlite", "internal/postgres"},
	"internal/auth": {"verifier", "internal/httpapi", "internal/web", "internal/browser", "internal/sqlite", "internal/postgres", "internal/redis", "internal/server"},
	// The pages and the server reach verifier through
	// internal/federation alone (its key set for upstream providers'
	// keys), never for Keycard's own tokens: the table above lets no
	// other package of theirs import it.
	"internal/web":    {"internal/gateway", "internal/httpapi", "internal/server", "internal/demo"},
	"internal/server": {"internal/gateway", "internal/demo"},
	"verifier":        {"internal/auth", "internal/server", "internal/httpapi"},
	"dpop":            {"", "verifier", "internal/auth", "internal/server", "internal/httpapi"},
	// keycard login is a client like any other: it speaks HTTP to the
	// server and shares no code path with it.
	"internal/cliauth": {"", "internal/auth", "internal/server", "internal/httpapi", "internal/web", "internal/browser", "internal/sqlite", "internal/postgres"},
}

// standardOnly lists the packages whose dependencies outside the module
// must be the standard library, and the standard packages each must not
// use: the domain and its logic speak neither HTTP nor SQL.
var standardOnly = map[string][]string{
	"":                 {"net/http", "database/sql"},
	"internal/auth":    {"net/http", "database/sql"},
	"internal/cliauth": {"database/sql"},
}

// listedPackage is what go list -json says of a package.
type listedPackage struct {
	ImportPath string
	Imports    []string
	Deps       []string
	Standard   bool
}

func goList(t *testing.T, args ...string) []listedPackage {
	t.Helper()
	goBin := filepath.Join(runtime.GOROOT(), "bin", "go") //lint:ignore SA1019 the go command that runs this test is the one to ask
	if _, err := os.Stat(goBin); err != nil {
		t.Skipf("skipping: no go command at %s", goBin)
	}
	out, err := exec.CommandContext(t.Context(), goBin, append([]string{"list", "-json"}, args...)...).Output()
	if err != nil {
		t.Fatalf("go list: %v", err)
	}
	var pkgs []listedPackage
	dec := json.NewDecoder(strings.NewReader(string(out)))
	for {
		var p listedPackage
		if err := dec.Decode(&p); err == io.EOF {
			break
		} else if err != nil {
			t.Fatal(err)
		}
		pkgs = append(pkgs, p)
	}
	return pkgs
}

// rel returns the module-relative path of an import path, and whether it
// is in the module.
func rel(path string) (string, bool) {
	if path == module {
		return "", true
	}
	r, ok := strings.CutPrefix(path, module+"/")
	return r, ok
}

// TestLayers checks the imports of every package of the module against
// the layering rule of docs/architecture.md.
func TestLayers(t *testing.T) {
	pkgs := goList(t, "./...")
	byPath := map[string]listedPackage{}
	for _, p := range pkgs {
		byPath[p.ImportPath] = p
	}
	for _, p := range pkgs {
		name, _ := rel(p.ImportPath)
		allowed, ok := layers[name]
		if !ok {
			t.Errorf("package %q has no rule in layers (layers_test.go): add one, and say it in docs/architecture.md", name)
			continue
		}
		if name == "cmd/keycard" {
			continue
		}
		for _, imp := range p.Imports {
			if r, in := rel(imp); in && !slices.Contains(allowed, r) {
				t.Errorf("%q imports %q; docs/architecture.md allows it only %q", name, r, allowed)
			}
		}
		for _, dep := range p.Deps {
			if r, in := rel(dep); in && slices.Contains(neverBelow[name], r) {
				t.Errorf("%q depends, through its imports, on %q, which it must never reach", name, r)
			}
		}
	}
	for name, forbidden := range standardOnly {
		p, ok := byPath[strings.TrimSuffix(module+"/"+name, "/")]
		if !ok {
			t.Fatalf("no package %q", name)
		}
		for _, dep := range p.Deps {
			if _, in := rel(dep); in {
				continue
			}
			if first := strings.Split(dep, "/")[0]; strings.Contains(first, ".") && !allowedThirdParty(name, dep) {
				t.Errorf("%q depends on %s, outside the standard library", name, dep)
			}
			if slices.Contains(forbidden, dep) {
				t.Errorf("%q depends on %s", name, dep)
			}
		}
	}
}

// allowedThirdParty reports whether a package of standardOnly may use dep
// all the same: the auth logic hashes passwords with argon2id and
// normalizes usernames with PRECIS, through internal/password and
// internal/username.
func allowedThirdParty(name, dep string) bool {
	return name == "internal/auth" && (strings.HasPrefix(dep, "golang.org/x/crypto/") || strings.HasPrefix(dep, "golang.org/x/text/") ||
		strings.HasPrefix(dep, "golang.org/x/sys/"))
}

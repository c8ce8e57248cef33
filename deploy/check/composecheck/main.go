// Command composecheck validates a Compose file without a Docker engine:
//
//	composecheck deploy/compose.yaml
//
// It loads the file with compose-go, the Compose specification's reference
// loader that `docker compose` itself uses: the specification's JSON
// schema, interpolation, YAML anchors and merges, and the consistency
// checks (every depends_on, volume and network a service names exists).
// Then it checks what only a build would find out: each build's context
// holds its Dockerfile, the Dockerfile has the target stage named, and a
// script a build-stage service runs from the repository's copy (/src/…)
// exists in the context.
package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"

	"github.com/compose-spec/compose-go/v2/cli"
	"github.com/compose-spec/compose-go/v2/types"
)

func main() {
	if len(os.Args) != 2 {
		fmt.Fprintln(os.Stderr, "usage: composecheck COMPOSE_FILE")
		os.Exit(2)
	}
	p, err := load(context.Background(), os.Args[1])
	if err == nil {
		err = checkBuilds(p)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "composecheck:", err)
		os.Exit(1)
	}
	fmt.Printf("composecheck: %s: project %q, services %s: ok\n", os.Args[1], p.Name, strings.Join(p.ServiceNames(), ", "))
}

// load loads and validates the Compose file at path as `docker compose -f
// path config` would, without reading the caller's environment or a .env
// file, so the result does not depend on the machine.
func load(ctx context.Context, path string) (*types.Project, error) {
	abs, err := filepath.Abs(path)
	if err != nil {
		return nil, err
	}
	opts, err := cli.NewProjectOptions([]string{abs},
		cli.WithWorkingDirectory(filepath.Dir(abs)),
		cli.WithConsistency(true),
		cli.WithResolvedPaths(true),
		cli.WithInterpolation(true),
	)
	if err != nil {
		return nil, err
	}
	return opts.LoadProject(ctx)
}

// stageRE matches a Dockerfile's FROM line with a stage name.
var stageRE = regexp.MustCompile(`(?i)^\s*FROM\s+(?:--\S+\s+)*\S+\s+AS\s+(\S+)\s*$`)

// checkBuilds checks each service's build against its context.
func checkBuilds(p *types.Project) error {
	var errs []error
	for _, name := range p.ServiceNames() {
		s := p.Services[name]
		b := s.Build
		if b == nil {
			if s.Image == "" {
				errs = append(errs, fmt.Errorf("service %s: neither image nor build", name))
			}
			continue
		}
		dockerfile := b.Dockerfile
		if dockerfile == "" {
			dockerfile = "Dockerfile"
		}
		if !filepath.IsAbs(dockerfile) {
			dockerfile = filepath.Join(b.Context, dockerfile)
		}
		stages, err := readStages(dockerfile)
		if err != nil {
			errs = append(errs, fmt.Errorf("service %s: %w", name, err))
			continue
		}
		if b.Target != "" && !slices.Contains(stages, strings.ToLower(b.Target)) {
			errs = append(errs, fmt.Errorf("service %s: build target %q is not a stage of %s (stages: %s)",
				name, b.Target, dockerfile, strings.Join(stages, ", ")))
		}
		// The build stage copies the context to /src: a script run from
		// there must be in the context.
		for _, arg := range s.Command {
			if rel, ok := strings.CutPrefix(arg, "/src/"); ok {
				if _, err := os.Stat(filepath.Join(b.Context, rel)); err != nil {
					errs = append(errs, fmt.Errorf("service %s: command names %s, which is not in the build context: %w", name, arg, err))
				}
			}
		}
	}
	return errors.Join(errs...)
}

// readStages returns the lower-case names of a Dockerfile's stages.
func readStages(path string) ([]string, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var stages []string
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if m := stageRE.FindStringSubmatch(sc.Text()); m != nil {
			stages = append(stages, strings.ToLower(m[1]))
		}
	}
	return stages, sc.Err()
}

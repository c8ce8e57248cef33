// Command gatewayconfig checks the gateway configuration files in rendered
// Kubernetes manifests (helm template output) with the gateway's own
// parser, so that a chart whose ConfigMap the gateway would refuse at
// start (an unknown key, a route it rejects) fails in CI instead:
//
//	helm template … | gatewayconfig -want 1
//
// It reads the manifests on standard input, finds each ConfigMap's
// gateway.yaml, parses it as `keycard gateway` does, and prints its routes.
// -want N fails unless exactly N such files are found.
package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"os"

	"github.com/keycard-auth/keycard/internal/gateway"
	"go.yaml.in/yaml/v3"
)

func main() {
	want := flag.Int("want", -1, "the number of gateway.yaml files expected (-1: any)")
	flag.Parse()
	n, err := check(os.Stdin, os.Stdout)
	if err == nil && *want >= 0 && n != *want {
		err = fmt.Errorf("found %d gateway configuration(s), want %d", n, *want)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "gatewayconfig:", err)
		os.Exit(1)
	}
}

type manifest struct {
	Kind     string `yaml:"kind"`
	Metadata struct {
		Name string `yaml:"name"`
	} `yaml:"metadata"`
	Data map[string]string `yaml:"data"`
}

// check parses every gateway.yaml of the ConfigMaps in r and returns how
// many there were.
func check(r io.Reader, out io.Writer) (int, error) {
	dec := yaml.NewDecoder(r)
	n := 0
	var errs []error
	for {
		var m manifest
		err := dec.Decode(&m)
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return n, fmt.Errorf("manifests: %w", err)
		}
		file, ok := m.Data["gateway.yaml"]
		if m.Kind != "ConfigMap" || !ok {
			continue
		}
		n++
		cfg, err := gateway.Parse([]byte(file))
		if err != nil {
			errs = append(errs, fmt.Errorf("ConfigMap %s: gateway.yaml: %w", m.Metadata.Name, err))
			continue
		}
		fmt.Fprintf(out, "gatewayconfig: ConfigMap %s: issuer %s, %d route(s):", m.Metadata.Name, cfg.Issuer, len(cfg.Routes))
		for _, rt := range cfg.Routes {
			fmt.Fprintf(out, " %s", rt.Name())
		}
		fmt.Fprintln(out)
	}
	return n, errors.Join(errs...)
}

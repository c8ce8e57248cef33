package main

import (
	"bytes"
	"errors"
	"flag"
	"fmt"
	"io"
	"maps"
	"os"
	"sort"
	"strings"

	"go.yaml.in/yaml/v3"
)

// Configuration layering, shared by every command that takes a config
// file: an explicit flag wins, then the KEYCARD_<FLAG> environment
// variable, then the YAML file's <flag> key (dashes become underscores),
// then the flag's default. Unknown YAML keys are an error.

// envName returns the environment variable that mirrors a flag:
// "master-key-file" → "KEYCARD_MASTER_KEY_FILE".
func envName(flagName string) string {
	return "KEYCARD_" + strings.ToUpper(strings.ReplaceAll(flagName, "-", "_"))
}

// yamlName returns the YAML key that mirrors a flag.
func yamlName(flagName string) string { return strings.ReplaceAll(flagName, "-", "_") }

// layer fills every flag of fs that was not given on the command line from
// the environment (getenv) and then from the YAML file at configPath
// ("" for none). fs must already be parsed. The file may also hold the
// keys in known (nil for none): those of other commands sharing it. With
// known, only the flags it names are layered: a subcommand's own flags
// (users disable --username, clients delete --id) come from its command
// line alone, so that KEYCARD_ID or KEYCARD_USERNAME in the environment
// never picks what a command acts on.
func layer(fs *flag.FlagSet, configPath string, getenv func(string) string, known map[string]bool) error {
	explicit := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { explicit[f.Name] = true })

	fromFile := map[string]string{}
	if configPath != "" {
		var err error
		if fromFile, err = readYAMLConfig(fs, configPath, known); err != nil {
			return err
		}
	}
	var errs []error
	fs.VisitAll(func(f *flag.Flag) {
		if explicit[f.Name] || f.Name == "config" || known != nil && !known[yamlName(f.Name)] {
			return
		}
		if v := getenv(envName(f.Name)); v != "" {
			if err := fs.Set(f.Name, v); err != nil {
				errs = append(errs, fmt.Errorf("%s: %v", envName(f.Name), err))
			}
			return
		}
		if v, ok := fromFile[yamlName(f.Name)]; ok {
			if err := fs.Set(f.Name, v); err != nil {
				errs = append(errs, fmt.Errorf("%s: %s: %v", configPath, yamlName(f.Name), err))
			}
		}
	})
	return errors.Join(errs...)
}

// readYAMLConfig reads a flat YAML mapping of flag names to scalar values
// (or, for repeatable flags, sequences of scalars joined by commas). Keys
// that are neither fs's flags nor in also are an error.
func readYAMLConfig(fs *flag.FlagSet, path string, also map[string]bool) (map[string]string, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("config: %w", err)
	}
	var doc map[string]yaml.Node
	dec := yaml.NewDecoder(bytes.NewReader(data))
	if err := dec.Decode(&doc); err != nil && !errors.Is(err, io.EOF) { // an empty file is an empty configuration
		return nil, fmt.Errorf("config %s: %w", path, err)
	}
	known := maps.Clone(also)
	if known == nil {
		known = map[string]bool{}
	}
	fs.VisitAll(func(f *flag.Flag) { known[yamlName(f.Name)] = true })
	out := map[string]string{}
	var unknown []string
	for k, n := range doc {
		if !known[k] || k == "config" {
			unknown = append(unknown, k)
			continue
		}
		if k == federationKey {
			continue // a section, not a flag: readFederation reads it
		}
		switch n.Kind {
		case yaml.ScalarNode:
			out[k] = n.Value
		case yaml.SequenceNode:
			vals := make([]string, 0, len(n.Content))
			for _, c := range n.Content {
				if c.Kind != yaml.ScalarNode {
					return nil, fmt.Errorf("config %s: %s: want a list of values", path, k)
				}
				vals = append(vals, c.Value)
			}
			out[k] = strings.Join(vals, ",")
		default:
			return nil, fmt.Errorf("config %s: %s: want a value", path, k)
		}
	}
	if len(unknown) > 0 {
		sort.Strings(unknown)
		return nil, fmt.Errorf("config %s: unknown key(s): %s", path, strings.Join(unknown, ", "))
	}
	return out, nil
}

// flagSetWithConfig is a flag set whose --config flag names a YAML file.
type flagSetWithConfig struct {
	*flag.FlagSet
	config *string
	// known, when not nil, returns the YAML keys the file may hold
	// besides those of this flag set's flags: those of the other
	// commands that share the file.
	known func() map[string]bool
}

// parseLayered parses args, checks the number of positional arguments,
// and fills unset flags from the environment and the config file.
//
// Each flag named in required must then have a value (from any layer);
// the first without one is a usage error, "--name is required".
func (e *cmdEnv) parseLayered(fs *flagSetWithConfig, args []string, positional int, required ...string) (code int, ok bool) {
	if _, code, ok := e.parseFlags(fs.FlagSet, args, positional); !ok {
		return code, false
	}
	if code, ok := e.layer(fs); !ok {
		return code, false
	}
	for _, name := range required {
		if f := fs.Lookup(name); f == nil || f.Value.String() == "" {
			fmt.Fprintf(e.stderr, "keycard %s: --%s is required\n", fs.Name(), name)
			return exitUsage, false
		}
	}
	return exitOK, true
}

// layer fills the unset flags of a parsed fs from the environment and the
// config file.
func (e *cmdEnv) layer(fs *flagSetWithConfig) (code int, ok bool) {
	path := *fs.config
	if path == "" {
		path = e.getenv(envName("config"))
	}
	var known map[string]bool
	if fs.known != nil {
		known = fs.known()
	}
	if err := layer(fs.FlagSet, path, e.getenv, known); err != nil {
		fmt.Fprintf(e.stderr, "keycard %s: %v\n", fs.Name(), err)
		return exitUsage, false
	}
	return exitOK, true
}

// explicitlySet reports whether the named flag was given on the command
// line.
func explicitlySet(fs *flag.FlagSet, name string) bool {
	set := false
	fs.Visit(func(f *flag.Flag) { set = set || f.Name == name })
	return set
}

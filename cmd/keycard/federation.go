package main

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"

	"go.yaml.in/yaml/v3"

	"github.com/keycard-auth/keycard/internal/federation"
)

// federationKey is the configuration file's section of upstream identity
// providers (docs/federation.md): a list, not a flag.
const federationKey = "federation"

// federationProvider is one entry of the section: a provider's settings,
// with its client secret given inline, in a file, or in the environment.
type federationProvider struct {
	federation.Config `yaml:",inline"`
	// ClientSecretFile holds the client secret (trailing white space
	// removed); KEYCARD_FEDERATION_<NAME>_CLIENT_SECRET, with the name
	// upper-cased and - as _, gives it too.
	ClientSecretFile string `yaml:"client_secret_file"`
}

// readFederation reads the federation section of the configuration file
// at path ("" for none). Unknown keys are an error, as elsewhere.
func readFederation(path string, getenv func(string) string) ([]federation.Config, error) {
	if path == "" {
		return nil, nil
	}
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("config: %w", err)
	}
	var doc map[string]yaml.Node
	if err := yaml.Unmarshal(data, &doc); err != nil {
		return nil, fmt.Errorf("config %s: %w", path, err)
	}
	n, ok := doc[federationKey]
	if !ok {
		return nil, nil
	}
	b, err := yaml.Marshal(&n)
	if err != nil {
		return nil, fmt.Errorf("config %s: %s: %w", path, federationKey, err)
	}
	var list []federationProvider
	dec := yaml.NewDecoder(bytes.NewReader(b))
	dec.KnownFields(true)
	if err := dec.Decode(&list); err != nil && !errors.Is(err, io.EOF) {
		return nil, fmt.Errorf("config %s: %s: %w", path, federationKey, err)
	}
	out := make([]federation.Config, 0, len(list))
	for _, p := range list {
		env := "KEYCARD_FEDERATION_" + strings.ToUpper(strings.ReplaceAll(p.Name, "-", "_")) + "_CLIENT_SECRET"
		switch v := getenv(env); {
		case v != "":
			p.ClientSecret = v
		case p.ClientSecretFile != "":
			if p.ClientSecret != "" {
				return nil, fmt.Errorf("config %s: provider %s: client_secret and client_secret_file are exclusive", path, p.Name)
			}
			s, err := os.ReadFile(p.ClientSecretFile)
			if err != nil {
				return nil, fmt.Errorf("config %s: provider %s: %w", path, p.Name, err)
			}
			p.ClientSecret = strings.TrimRight(string(s), " \t\r\n")
		}
		if err := p.Config.Check(); err != nil {
			return nil, fmt.Errorf("config %s: %w", path, err)
		}
		out = append(out, p.Config)
	}
	return out, nil
}

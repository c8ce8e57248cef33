package auth

import (
	"context"
	"time"

	"github.com/keycard-auth/keycard"
)

// Audit events of the providers added at run time (docs/federation.md).
// Their detail names the provider and, for an update, whether the secret
// was replaced; never the secret.
const (
	AuditProviderCreated = "federation.provider_created"
	AuditProviderUpdated = "federation.provider_updated"
	AuditProviderDeleted = "federation.provider_deleted"
)

// upstreamSecretLabel binds a provider's sealed client secret to its name.
func upstreamSecretLabel(name string) string { return "upstream-provider-secret:" + name }

// StoredProvider is a provider added at run time, its client secret
// opened, for the server that builds the federation providers from it.
type StoredProvider struct {
	Name string
	// Config is the provider's configuration as JSON, without the
	// client secret.
	Config []byte
	// Secret is the client secret; empty for a public registration.
	Secret    string
	CreatedAt time.Time
	UpdatedAt time.Time
}

func (s *Service) sealSecret(name, secret string) ([]byte, error) {
	if secret == "" {
		return nil, nil
	}
	if s.sealer == nil {
		return nil, keycard.Errorf(keycard.EINTERNAL, "no master key to seal the client secret with")
	}
	return s.sealer.Seal([]byte(secret), upstreamSecretLabel(name))
}

// UpstreamProviders returns the providers added at run time, ordered by
// name, with their secrets opened. A secret that does not open (another
// master key, a tampered row) fails the whole call: a provider must not
// quietly lose its secret.
func (s *Service) UpstreamProviders(ctx context.Context) ([]StoredProvider, error) {
	list, err := s.stores.Federation.UpstreamProviders(ctx)
	if err != nil {
		return nil, err
	}
	out := make([]StoredProvider, 0, len(list))
	for _, p := range list {
		sp := StoredProvider{Name: p.Name, Config: p.Config, CreatedAt: p.CreatedAt, UpdatedAt: p.UpdatedAt}
		if p.SealedSecret != nil {
			if s.sealer == nil {
				return nil, keycard.Errorf(keycard.EINTERNAL, "no master key to open the client secret of provider %s", p.Name)
			}
			b, err := s.sealer.Open(p.SealedSecret, upstreamSecretLabel(p.Name))
			if err != nil {
				return nil, keycard.Errorf(keycard.EINTERNAL, "provider %s: %v", p.Name, err)
			}
			sp.Secret = string(b)
		}
		out = append(out, sp)
	}
	return out, nil
}

// CreateUpstreamProvider stores a provider added at run time: its
// configuration (JSON without the secret, already checked by the caller)
// and its client secret, sealed under the master key. ECONFLICT if the
// name is taken.
func (s *Service) CreateUpstreamProvider(ctx context.Context, by Actor, name string, config []byte, secret string) error {
	sealed, err := s.sealSecret(name, secret)
	if err != nil {
		return err
	}
	now := s.now()
	if err := s.stores.Federation.CreateUpstreamProvider(ctx, &keycard.UpstreamProvider{Name: name, Config: config, SealedSecret: sealed,
		CreatedAt: now, UpdatedAt: now}); err != nil {
		return err
	}
	s.audit(ctx, AuditProviderCreated, by, "", map[string]any{"idp": name})
	return nil
}

// UpdateUpstreamProvider replaces a stored provider's configuration and,
// when secret is not nil, its client secret (an empty one removes it);
// nil keeps the secret it has. ENOTFOUND if there is no such provider.
func (s *Service) UpdateUpstreamProvider(ctx context.Context, by Actor, name string, config []byte, secret *string) error {
	have, err := s.stores.Federation.UpstreamProvider(ctx, name)
	if err != nil {
		return err
	}
	sealed := have.SealedSecret
	if secret != nil {
		if sealed, err = s.sealSecret(name, *secret); err != nil {
			return err
		}
	}
	if err := s.stores.Federation.UpdateUpstreamProvider(ctx, &keycard.UpstreamProvider{Name: name, Config: config, SealedSecret: sealed,
		UpdatedAt: s.now()}); err != nil {
		return err
	}
	s.audit(ctx, AuditProviderUpdated, by, "", map[string]any{"idp": name, "secret_replaced": secret != nil})
	return nil
}

// DeleteUpstreamProvider removes a stored provider; ENOTFOUND if there is
// none. Identities linked through it stay linked (they sign in again if a
// provider of the same name comes back); the sessions it started stay.
func (s *Service) DeleteUpstreamProvider(ctx context.Context, by Actor, name string) error {
	if err := s.stores.Federation.DeleteUpstreamProvider(ctx, name); err != nil {
		return err
	}
	s.audit(ctx, AuditProviderDeleted, by, "", map[string]any{"idp": name})
	return nil
}

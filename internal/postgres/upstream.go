package postgres

import (
	"context"
	"errors"

	"github.com/jackc/pgx/v5"

	"github.com/keycard-auth/keycard"
)

const upstreamColumns = `name, config, sealed_secret, created_at, updated_at`

func upstreamNotFound() error {
	return &keycard.Error{Code: keycard.ENOTFOUND, Message: "Identity provider not found."}
}

func checkUpstream(p *keycard.UpstreamProvider) error {
	if p.Name == "" || len(p.Name) > keycard.MaxProviderNameLen || len(p.Config) == 0 || len(p.Config) > keycard.MaxProviderConfigLen {
		return &keycard.Error{Code: keycard.EINVALID, Message: "A provider needs a name and a configuration."}
	}
	if !validText(p.Name, string(p.Config)) {
		return &keycard.Error{Code: keycard.EINVALID, Message: "A provider's name and configuration must be valid UTF-8 without NUL."}
	}
	return nil
}

func scanUpstream(row pgx.Row) (*keycard.UpstreamProvider, error) {
	var (
		p   keycard.UpstreamProvider
		cfg string
	)
	if err := row.Scan(&p.Name, &cfg, &p.SealedSecret, &p.CreatedAt, &p.UpdatedAt); err != nil {
		return nil, err
	}
	p.Config = []byte(cfg)
	p.CreatedAt, p.UpdatedAt = p.CreatedAt.UTC(), p.UpdatedAt.UTC()
	return &p, nil
}

// CreateUpstreamProvider implements keycard.UpstreamProviderStore.
func (s *FederationStore) CreateUpstreamProvider(ctx context.Context, p *keycard.UpstreamProvider) error {
	if err := checkUpstream(p); err != nil {
		return err
	}
	err := s.db.update(ctx, func(tx pgx.Tx) error {
		_, err := tx.Exec(ctx, `INSERT INTO upstream_providers (`+upstreamColumns+`) VALUES ($1, $2, $3, $4, $5)`,
			p.Name, string(p.Config), p.SealedSecret, p.CreatedAt, p.UpdatedAt)
		if pgCode(err) == uniqueViolation {
			return &keycard.Error{Code: keycard.ECONFLICT, Message: "A provider of this name exists."}
		}
		return err
	})
	return wrap("create upstream provider", err)
}

// UpdateUpstreamProvider implements keycard.UpstreamProviderStore.
func (s *FederationStore) UpdateUpstreamProvider(ctx context.Context, p *keycard.UpstreamProvider) error {
	if err := checkUpstream(p); err != nil {
		return err
	}
	err := s.db.update(ctx, func(tx pgx.Tx) error {
		tag, err := tx.Exec(ctx, `UPDATE upstream_providers SET config = $1, sealed_secret = $2, updated_at = $3 WHERE name = $4`,
			string(p.Config), p.SealedSecret, p.UpdatedAt, p.Name)
		if err != nil {
			return err
		}
		if tag.RowsAffected() == 0 {
			return upstreamNotFound()
		}
		return nil
	})
	return wrap("update upstream provider", err)
}

// DeleteUpstreamProvider implements keycard.UpstreamProviderStore.
func (s *FederationStore) DeleteUpstreamProvider(ctx context.Context, name string) error {
	if !validText(name) {
		return upstreamNotFound()
	}
	err := s.db.update(ctx, func(tx pgx.Tx) error {
		tag, err := tx.Exec(ctx, `DELETE FROM upstream_providers WHERE name = $1`, name)
		if err != nil {
			return err
		}
		if tag.RowsAffected() == 0 {
			return upstreamNotFound()
		}
		return nil
	})
	return wrap("delete upstream provider", err)
}

// UpstreamProvider implements keycard.UpstreamProviderStore.
func (s *FederationStore) UpstreamProvider(ctx context.Context, name string) (*keycard.UpstreamProvider, error) {
	if !validText(name) {
		return nil, upstreamNotFound()
	}
	p, err := scanUpstream(s.db.reads().QueryRow(ctx, `SELECT `+upstreamColumns+` FROM upstream_providers WHERE name = $1`, name))
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, upstreamNotFound()
	}
	return p, wrap("upstream provider", err)
}

// UpstreamProviders implements keycard.UpstreamProviderStore.
func (s *FederationStore) UpstreamProviders(ctx context.Context) ([]*keycard.UpstreamProvider, error) {
	rows, err := s.db.reads().Query(ctx, `SELECT `+upstreamColumns+` FROM upstream_providers ORDER BY name`)
	if err != nil {
		return nil, wrap("upstream providers", err)
	}
	defer rows.Close()
	var out []*keycard.UpstreamProvider
	for rows.Next() {
		p, err := scanUpstream(rows)
		if err != nil {
			return nil, wrap("upstream providers", err)
		}
		out = append(out, p)
	}
	return out, wrap("upstream providers", rows.Err())
}

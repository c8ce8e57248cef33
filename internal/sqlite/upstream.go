package sqlite

import (
	"context"
	"database/sql"
	"errors"

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
	return nil
}

func scanUpstream(row scanner) (*keycard.UpstreamProvider, error) {
	var (
		p                keycard.UpstreamProvider
		cfg              string
		created, updated sql.NullInt64
	)
	if err := row.Scan(&p.Name, &cfg, &p.SealedSecret, &created, &updated); err != nil {
		return nil, err
	}
	p.Config = []byte(cfg)
	p.CreatedAt, p.UpdatedAt = fromMicros(created), fromMicros(updated)
	return &p, nil
}

// execUpstream runs a statement on one provider: ENOTFOUND if it
// touched none.
func execUpstream(ctx context.Context, tx txn, query string, args ...any) error {
	res, err := tx.ExecContext(ctx, query, args...)
	if err != nil {
		return err
	}
	if n, err := res.RowsAffected(); err != nil {
		return err
	} else if n == 0 {
		return upstreamNotFound()
	}
	return nil
}

// CreateUpstreamProvider implements keycard.UpstreamProviderStore.
func (s *FederationStore) CreateUpstreamProvider(ctx context.Context, p *keycard.UpstreamProvider) error {
	if err := checkUpstream(p); err != nil {
		return err
	}
	err := s.db.update(ctx, func(tx txn) error {
		_, err := tx.ExecContext(ctx, `INSERT INTO upstream_providers (`+upstreamColumns+`) VALUES (?, ?, ?, ?, ?)`,
			p.Name, string(p.Config), p.SealedSecret, micros(p.CreatedAt), micros(p.UpdatedAt))
		if isConstraint(err) {
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
	err := s.db.update(ctx, func(tx txn) error {
		return execUpstream(ctx, tx, `UPDATE upstream_providers SET config = ?, sealed_secret = ?, updated_at = ? WHERE name = ?`,
			string(p.Config), p.SealedSecret, micros(p.UpdatedAt), p.Name)
	})
	return wrap("update upstream provider", err)
}

// DeleteUpstreamProvider implements keycard.UpstreamProviderStore.
func (s *FederationStore) DeleteUpstreamProvider(ctx context.Context, name string) error {
	err := s.db.update(ctx, func(tx txn) error {
		return execUpstream(ctx, tx, `DELETE FROM upstream_providers WHERE name = ?`, name)
	})
	return wrap("delete upstream provider", err)
}

// UpstreamProvider implements keycard.UpstreamProviderStore.
func (s *FederationStore) UpstreamProvider(ctx context.Context, name string) (*keycard.UpstreamProvider, error) {
	p, err := scanUpstream(s.db.reader().QueryRowContext(ctx, `SELECT `+upstreamColumns+` FROM upstream_providers WHERE name = ?`, name))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, upstreamNotFound()
	}
	return p, wrap("upstream provider", err)
}

// UpstreamProviders implements keycard.UpstreamProviderStore.
func (s *FederationStore) UpstreamProviders(ctx context.Context) ([]*keycard.UpstreamProvider, error) {
	rows, err := s.db.reader().QueryContext(ctx, `SELECT `+upstreamColumns+` FROM upstream_providers ORDER BY name`)
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

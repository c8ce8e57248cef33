package postgres

import (
	"context"
	"errors"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/keycard-auth/keycard"
)

// ClientStore implements keycard.ClientStore.
type ClientStore struct{ db *DB }

var _ keycard.ClientStore = (*ClientStore)(nil)

const clientColumns = `id, name, secret_hash, scopes, audiences, created_at, updated_at`

// scanClient scans clientColumns, then into extra the columns after them.
func scanClient(row pgx.Row, extra ...any) (*keycard.Client, error) {
	var c keycard.Client
	if err := row.Scan(append([]any{&c.ID, &c.Name, &c.SecretHash, &c.Scopes, &c.Audiences, &c.CreatedAt, &c.UpdatedAt}, extra...)...); err != nil {
		return nil, err
	}
	c.CreatedAt, c.UpdatedAt = c.CreatedAt.UTC(), c.UpdatedAt.UTC()
	return &c, nil
}

func clientNotFound() error {
	return &keycard.Error{Code: keycard.ENOTFOUND, Message: "Client not found."}
}

// CreateClient implements keycard.ClientStore.
func (s *ClientStore) CreateClient(ctx context.Context, c *keycard.Client) error {
	if c.ID == "" || c.Name == "" || len(c.SecretHash) == 0 {
		return &keycard.Error{Code: keycard.EINVALID, Message: "Client id, name and secret hash are required."}
	}
	err := s.db.update(ctx, func(tx pgx.Tx) error {
		_, err := tx.Exec(ctx, `INSERT INTO clients (`+clientColumns+`) VALUES ($1, $2, $3, $4, $5, $6, $7)`,
			c.ID, c.Name, c.SecretHash, orEmpty(c.Scopes), orEmpty(c.Audiences), c.CreatedAt, c.UpdatedAt)
		if pgCode(err) == uniqueViolation {
			return &keycard.Error{Code: keycard.ECONFLICT, Message: "Client already exists."}
		}
		return err
	})
	return wrap("create client", err)
}

// Client implements keycard.ClientStore. An id PostgreSQL cannot store
// (invalid UTF-8, NUL), such as one sent as a client_id, is not found.
func (s *ClientStore) Client(ctx context.Context, id string) (*keycard.Client, error) {
	if !validText(id) {
		return nil, clientNotFound()
	}
	c, err := scanClient(s.db.pool.QueryRow(ctx, `SELECT `+clientColumns+` FROM clients WHERE id = $1`, id))
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, clientNotFound()
	}
	return c, wrap("client", err)
}

// ClientWithKeyGeneration implements keycard.ClientStore, in one query.
func (s *ClientStore) ClientWithKeyGeneration(ctx context.Context, id string) (*keycard.Client, int64, error) {
	if !validText(id) {
		return nil, 0, clientNotFound()
	}
	var gen int64
	c, err := scanClient(s.db.pool.QueryRow(ctx, `SELECT `+clientColumns+`, (`+keyGenerationQuery+`)
		FROM clients WHERE id = $1`, id), &gen)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, 0, clientNotFound()
	}
	if err != nil {
		return nil, 0, wrap("client", err)
	}
	return c, gen, nil
}

// ListClients implements keycard.ClientStore.
func (s *ClientStore) ListClients(ctx context.Context, f keycard.ClientFilter) ([]*keycard.Client, error) {
	if !validText(f.After) {
		return nil, invalidText()
	}
	rows, err := s.db.pool.Query(ctx, `SELECT `+clientColumns+` FROM clients
		WHERE id > $1 ORDER BY id LIMIT $2`, f.After, keycard.PageSize(f.Limit))
	if err != nil {
		return nil, wrap("list clients", err)
	}
	defer rows.Close()
	clients := []*keycard.Client{}
	for rows.Next() {
		c, err := scanClient(rows)
		if err != nil {
			return nil, wrap("list clients", err)
		}
		clients = append(clients, c)
	}
	return clients, wrap("list clients", rows.Err())
}

// DeleteClient implements keycard.ClientStore.
func (s *ClientStore) DeleteClient(ctx context.Context, id string) error {
	if !validText(id) {
		return clientNotFound()
	}
	err := s.db.update(ctx, func(tx pgx.Tx) error {
		tag, err := tx.Exec(ctx, `DELETE FROM clients WHERE id = $1`, id)
		if err == nil && tag.RowsAffected() == 0 {
			err = clientNotFound()
		}
		return err
	})
	return wrap("delete client", err)
}

// SetClientSecret implements keycard.ClientStore.
func (s *ClientStore) SetClientSecret(ctx context.Context, id string, hash []byte, at time.Time) error {
	if len(hash) == 0 {
		return &keycard.Error{Code: keycard.EINVALID, Message: "Client secret hash is required."}
	}
	if !validText(id) {
		return clientNotFound()
	}
	err := s.db.update(ctx, func(tx pgx.Tx) error {
		tag, err := tx.Exec(ctx, `UPDATE clients SET secret_hash = $1, updated_at = $2 WHERE id = $3`, hash, at, id)
		if err == nil && tag.RowsAffected() == 0 {
			err = clientNotFound()
		}
		return err
	})
	return wrap("set client secret", err)
}

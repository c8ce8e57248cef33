package sqlite

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"time"

	"github.com/keycard-auth/keycard"
)

// ClientStore implements keycard.ClientStore.
type ClientStore struct{ db *DB }

var _ keycard.ClientStore = (*ClientStore)(nil)

// NewClientStore returns the client store on db.
func NewClientStore(db *DB) *ClientStore { return &ClientStore{db: db} }

const clientColumns = `id, name, secret_hash, scopes, audiences, created_at, updated_at`

// scanClient scans clientColumns, then into extra the columns after them.
func scanClient(row interface{ Scan(...any) error }, extra ...any) (*keycard.Client, error) {
	var (
		c                 keycard.Client
		scopes, audiences string
		created, updated  sql.NullInt64
	)
	if err := row.Scan(append([]any{&c.ID, &c.Name, &c.SecretHash, &scopes, &audiences, &created, &updated}, extra...)...); err != nil {
		return nil, err
	}
	if err := json.Unmarshal([]byte(scopes), &c.Scopes); err != nil {
		return nil, err
	}
	if err := json.Unmarshal([]byte(audiences), &c.Audiences); err != nil {
		return nil, err
	}
	c.CreatedAt, c.UpdatedAt = fromMicros(created), fromMicros(updated)
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
	scopes, err := encodeRoles(c.Scopes)
	if err != nil {
		return wrap("create client", err)
	}
	audiences, err := encodeRoles(c.Audiences)
	if err != nil {
		return wrap("create client", err)
	}
	err = s.db.update(ctx, func(tx txn) error {
		_, err := tx.ExecContext(ctx, `INSERT INTO clients (`+clientColumns+`) VALUES (?, ?, ?, ?, ?, ?, ?)`,
			c.ID, c.Name, c.SecretHash, scopes, audiences, micros(c.CreatedAt), micros(c.UpdatedAt))
		if isConstraint(err) {
			return &keycard.Error{Code: keycard.ECONFLICT, Message: "Client already exists."}
		}
		return err
	})
	return wrap("create client", err)
}

// Client implements keycard.ClientStore.
func (s *ClientStore) Client(ctx context.Context, id string) (*keycard.Client, error) {
	c, err := scanClient(s.db.reader().QueryRowContext(ctx, `SELECT `+clientColumns+` FROM clients WHERE id = ?`, id))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, clientNotFound()
	}
	return c, wrap("client", err)
}

// ClientWithKeyGeneration implements keycard.ClientStore, in one query.
func (s *ClientStore) ClientWithKeyGeneration(ctx context.Context, id string) (*keycard.Client, int64, error) {
	var gen int64
	c, err := scanClient(s.db.reader().QueryRowContext(ctx, `SELECT `+clientColumns+`, (`+keyGenerationQuery+`)
		FROM clients WHERE id = ?`, id), &gen)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, 0, clientNotFound()
	}
	if err != nil {
		return nil, 0, wrap("client", err)
	}
	return c, gen, nil
}

// ListClients implements keycard.ClientStore.
func (s *ClientStore) ListClients(ctx context.Context, f keycard.ClientFilter) ([]*keycard.Client, error) {
	rows, err := s.db.reader().QueryContext(ctx, `SELECT `+clientColumns+` FROM clients
		WHERE id > ? ORDER BY id LIMIT ?`, f.After, keycard.PageSize(f.Limit))
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
	err := s.db.update(ctx, func(tx txn) error {
		res, err := tx.ExecContext(ctx, `DELETE FROM clients WHERE id = ?`, id)
		if err != nil {
			return err
		}
		if n, err := res.RowsAffected(); err != nil {
			return err
		} else if n == 0 {
			return clientNotFound()
		}
		return nil
	})
	return wrap("delete client", err)
}

// SetClientSecret implements keycard.ClientStore.
func (s *ClientStore) SetClientSecret(ctx context.Context, id string, hash []byte, at time.Time) error {
	if len(hash) == 0 {
		return &keycard.Error{Code: keycard.EINVALID, Message: "Client secret hash is required."}
	}
	err := s.db.update(ctx, func(tx txn) error {
		res, err := tx.ExecContext(ctx, `UPDATE clients SET secret_hash = ?, updated_at = ? WHERE id = ?`, hash, micros(at), id)
		if err != nil {
			return err
		}
		if n, err := res.RowsAffected(); err != nil {
			return err
		} else if n == 0 {
			return clientNotFound()
		}
		return nil
	})
	return wrap("set client secret", err)
}

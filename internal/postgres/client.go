package postgres

import (
	"context"
	"encoding/json"
	"errors"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/keycard-auth/keycard"
)

// ClientStore implements keycard.ClientStore.
type ClientStore struct{ db *DB }

var _ keycard.ClientStore = (*ClientStore)(nil)

const clientColumns = `id, name, secret_hash, scopes, audiences, oauth, created_at, updated_at`

// scanClient scans clientColumns, then into extra the columns after them.
func scanClient(row pgx.Row, extra ...any) (*keycard.Client, error) {
	var (
		c     keycard.Client
		oauth []byte
	)
	if err := row.Scan(append([]any{&c.ID, &c.Name, &c.SecretHash, &c.Scopes, &c.Audiences, &oauth, &c.CreatedAt, &c.UpdatedAt}, extra...)...); err != nil {
		return nil, err
	}
	if err := json.Unmarshal(oauth, &c.OAuth); err != nil {
		return nil, err
	}
	c.CreatedAt, c.UpdatedAt = c.CreatedAt.UTC(), c.UpdatedAt.UTC()
	return &c, nil
}

func clientNotFound() error {
	return &keycard.Error{Code: keycard.ENOTFOUND, Message: "Client not found."}
}

// validClient checks what CreateClient needs of c.
func validClient(c *keycard.Client) error {
	switch {
	case c.ID == "" || c.Name == "":
		return &keycard.Error{Code: keycard.EINVALID, Message: "Client id and name are required."}
	case c.OAuth.Public && len(c.SecretHash) > 0:
		return &keycard.Error{Code: keycard.EINVALID, Message: "A public client has no secret."}
	case !c.OAuth.Public && len(c.SecretHash) == 0 && c.OAuth.TokenAuthMethod != keycard.AuthPrivateKeyJWT:
		return &keycard.Error{Code: keycard.EINVALID, Message: "A confidential client needs a secret hash, unless it authenticates with private_key_jwt."}
	}
	return nil
}

// CreateClient implements keycard.ClientStore.
func (s *ClientStore) CreateClient(ctx context.Context, c *keycard.Client) error {
	if err := validClient(c); err != nil {
		return err
	}
	oauth, err := json.Marshal(c.OAuth)
	if err != nil {
		return wrap("create client", err)
	}
	err = s.db.update(ctx, func(tx pgx.Tx) error {
		// A public client's hash is stored empty, not NULL.
		_, err := tx.Exec(ctx, `INSERT INTO clients (`+clientColumns+`) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)`,
			c.ID, c.Name, append([]byte{}, c.SecretHash...), orEmpty(c.Scopes), orEmpty(c.Audiences), string(oauth), c.CreatedAt, c.UpdatedAt)
		if pgCode(err) == uniqueViolation {
			return &keycard.Error{Code: keycard.ECONFLICT, Message: "Client already exists."}
		}
		return err
	})
	return wrap("create client", err)
}

// UpdateClient implements keycard.ClientStore.
func (s *ClientStore) UpdateClient(ctx context.Context, c *keycard.Client) (*keycard.Client, error) {
	if c.Name == "" {
		return nil, &keycard.Error{Code: keycard.EINVALID, Message: "Client name is required."}
	}
	if !validText(c.ID) {
		return nil, clientNotFound()
	}
	oauth, err := json.Marshal(c.OAuth)
	if err != nil {
		return nil, wrap("update client", err)
	}
	var stored *keycard.Client
	err = s.db.update(ctx, func(tx pgx.Tx) error {
		var err error
		stored, err = scanClient(tx.QueryRow(ctx, `SELECT `+clientColumns+` FROM clients WHERE id = $1 FOR UPDATE`, c.ID))
		if errors.Is(err, pgx.ErrNoRows) {
			return clientNotFound()
		} else if err != nil {
			return err
		}
		if stored.Public() != c.Public() {
			return &keycard.Error{Code: keycard.EINVALID, Message: "A client cannot change between public and confidential."}
		}
		stored, err = scanClient(tx.QueryRow(ctx, `UPDATE clients SET name = $1, scopes = $2, audiences = $3, oauth = $4, updated_at = $5
			WHERE id = $6 RETURNING `+clientColumns, c.Name, orEmpty(c.Scopes), orEmpty(c.Audiences), string(oauth), c.UpdatedAt, c.ID))
		return err
	})
	if err != nil {
		return nil, wrap("update client", err)
	}
	return stored, nil
}

// Client implements keycard.ClientStore. An id PostgreSQL cannot store
// (invalid UTF-8, NUL), such as one sent as a client_id, is not found.
func (s *ClientStore) Client(ctx context.Context, id string) (*keycard.Client, error) {
	if !validText(id) {
		return nil, clientNotFound()
	}
	c, err := scanClient(s.db.reads().QueryRow(ctx, `SELECT `+clientColumns+` FROM clients WHERE id = $1`, id))
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
	c, err := scanClient(s.db.reads().QueryRow(ctx, `SELECT `+clientColumns+`, (`+keyGenerationQuery+`)
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

// DeleteClient implements keycard.ClientStore. Its consents, codes and
// pushed requests go with it (ON DELETE CASCADE). The client goes first:
// the cascade waits for a Redeem of one of its codes that holds the code's
// lock, and the revocation after it, a statement of its own, then sees
// that Redeem's grant session.
func (s *ClientStore) DeleteClient(ctx context.Context, id string, at time.Time) error {
	if !validText(id) {
		return clientNotFound()
	}
	err := s.db.update(ctx, func(tx pgx.Tx) error {
		tag, err := tx.Exec(ctx, `DELETE FROM clients WHERE id = $1`, id)
		if err != nil {
			return err
		}
		if tag.RowsAffected() == 0 {
			return clientNotFound()
		}
		// Grant sessions have no grant sessions of their own.
		revs, err := revokeWhere(ctx, tx, `client_id = $1 AND client_id <> ''`, []any{id}, at, keycard.RevokeClientDeleted)
		if err != nil {
			return err
		}
		return appendFeed(ctx, tx, s.db.revocationTTL, revs...)
	})
	return wrap("delete client", err)
}

// SetClientSecret implements keycard.ClientStore. A public client is one
// whose OAuth settings say so; a confidential client without a secret
// (one of private_key_jwt) may be given one.
func (s *ClientStore) SetClientSecret(ctx context.Context, id string, hash []byte, at time.Time) error {
	if len(hash) == 0 {
		return &keycard.Error{Code: keycard.EINVALID, Message: "Client secret hash is required."}
	}
	if !validText(id) {
		return clientNotFound()
	}
	err := s.db.update(ctx, func(tx pgx.Tx) error {
		c, err := scanClient(tx.QueryRow(ctx, `SELECT `+clientColumns+` FROM clients WHERE id = $1 FOR UPDATE`, id))
		if errors.Is(err, pgx.ErrNoRows) {
			return clientNotFound()
		} else if err != nil {
			return err
		}
		if c.Public() {
			return &keycard.Error{Code: keycard.EINVALID, Message: "A public client has no secret."}
		}
		_, err = tx.Exec(ctx, `UPDATE clients SET secret_hash = $1, updated_at = $2 WHERE id = $3`, hash, at, id)
		return err
	})
	return wrap("set client secret", err)
}

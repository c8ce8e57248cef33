package sqlite

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"slices"
	"sync"
	"time"

	"github.com/keycard-auth/keycard"
)

// ClientStore implements keycard.ClientStore.
type ClientStore struct{ db *DB }

var _ keycard.ClientStore = (*ClientStore)(nil)

// NewClientStore returns the client store on db.
func NewClientStore(db *DB) *ClientStore { return &ClientStore{db: db} }

const clientColumns = `id, name, secret_hash, scopes, audiences, oauth, created_at, updated_at`

// scanClient scans clientColumns, then into extra the columns after them.
func scanClient(row interface{ Scan(...any) error }, extra ...any) (*keycard.Client, error) {
	var cols clientRow
	if err := row.Scan(append(cols.dest(), extra...)...); err != nil {
		return nil, err
	}
	return cols.client()
}

// clientRow holds clientColumns as scanned.
type clientRow struct {
	c                        keycard.Client
	scopes, audiences, oauth string
	created, updated         sql.NullInt64
}

// dest returns the destinations of clientColumns.
func (r *clientRow) dest() []any {
	return []any{&r.c.ID, &r.c.Name, &r.c.SecretHash, &r.scopes, &r.audiences, &r.oauth, &r.created, &r.updated}
}

// client decodes the row's JSON columns and returns its client.
func (r *clientRow) client() (*keycard.Client, error) {
	c := r.c
	if err := decodedLists.decode(r.scopes, &c.Scopes); err != nil {
		return nil, err
	}
	if err := decodedLists.decode(r.audiences, &c.Audiences); err != nil {
		return nil, err
	}
	if err := decodedOAuth.decode(r.oauth, &c.OAuth); err != nil {
		return nil, err
	}
	c.CreatedAt, c.UpdatedAt = fromMicros(r.created), fromMicros(r.updated)
	return &c, nil
}

// decodedLists and decodedOAuth keep what the JSON texts of clients'
// scopes and audiences, and of their OAuth settings, decode to: a client
// read at the token endpoint decoded the same few texts over and over.
// They are keyed by the text itself, so nothing in them is ever stale.
var (
	decodedLists = decodedJSON[[]string]{clone: slices.Clone[[]string]}
	decodedOAuth = decodedJSON[keycard.OAuthSettings]{clone: cloneOAuth}
)

// maxDecodedJSON bounds each decodedJSON; a full one starts again empty.
const maxDecodedJSON = 1024

// decodedJSON keeps values decoded from JSON texts, by text, and gives
// each caller its own copy (clone), which it may change.
type decodedJSON[T any] struct {
	clone func(T) T
	mu    sync.RWMutex
	m     map[string]T
}

// decode stores in dst what json.Unmarshal would decode text to, into a
// zero T.
func (d *decodedJSON[T]) decode(text string, dst *T) error {
	d.mu.RLock()
	v, ok := d.m[text]
	d.mu.RUnlock()
	if !ok {
		if err := json.Unmarshal([]byte(text), &v); err != nil {
			return err
		}
		d.mu.Lock()
		if len(d.m) >= maxDecodedJSON || d.m == nil {
			d.m = make(map[string]T)
		}
		d.m[text] = v
		d.mu.Unlock()
	}
	*dst = d.clone(v)
	return nil
}

// cloneOAuth returns a copy of o that shares no memory with it.
func cloneOAuth(o keycard.OAuthSettings) keycard.OAuthSettings {
	o.RedirectURIs = slices.Clone(o.RedirectURIs)
	o.PostLogoutRedirectURIs = slices.Clone(o.PostLogoutRedirectURIs)
	o.GrantTypes = slices.Clone(o.GrantTypes)
	o.JWKS = slices.Clone(o.JWKS)
	o.TokenExchangeAudiences = slices.Clone(o.TokenExchangeAudiences)
	return o
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

// clientFields returns the JSON of the client's scopes, audiences and
// OAuth settings.
func clientFields(c *keycard.Client) (scopes, audiences, oauth string, err error) {
	if scopes, err = encodeRoles(c.Scopes); err != nil {
		return
	}
	if audiences, err = encodeRoles(c.Audiences); err != nil {
		return
	}
	b, err := json.Marshal(c.OAuth)
	return scopes, audiences, string(b), err
}

// CreateClient implements keycard.ClientStore.
func (s *ClientStore) CreateClient(ctx context.Context, c *keycard.Client) error {
	if err := validClient(c); err != nil {
		return err
	}
	scopes, audiences, oauth, err := clientFields(c)
	if err != nil {
		return wrap("create client", err)
	}
	err = s.db.update(ctx, func(tx txn) error {
		// A public client's hash is stored empty, not NULL.
		_, err := tx.ExecContext(ctx, `INSERT INTO clients (`+clientColumns+`) VALUES (?, ?, ?, ?, ?, ?, ?, ?)`,
			c.ID, c.Name, append([]byte{}, c.SecretHash...), scopes, audiences, oauth, micros(c.CreatedAt), micros(c.UpdatedAt))
		if isConstraint(err) {
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
	scopes, audiences, oauth, err := clientFields(c)
	if err != nil {
		return nil, wrap("update client", err)
	}
	var stored *keycard.Client
	err = s.db.update(ctx, func(tx txn) error {
		var err error
		stored, err = scanClient(tx.QueryRowContext(ctx, `SELECT `+clientColumns+` FROM clients WHERE id = ?`, c.ID))
		if errors.Is(err, sql.ErrNoRows) {
			return clientNotFound()
		} else if err != nil {
			return err
		}
		if stored.Public() != c.Public() {
			return &keycard.Error{Code: keycard.EINVALID, Message: "A client cannot change between public and confidential."}
		}
		if _, err := tx.ExecContext(ctx, `UPDATE clients SET name = ?, scopes = ?, audiences = ?, oauth = ?, updated_at = ? WHERE id = ?`,
			c.Name, scopes, audiences, oauth, micros(c.UpdatedAt), c.ID); err != nil {
			return err
		}
		stored, err = scanClient(tx.QueryRowContext(ctx, `SELECT `+clientColumns+` FROM clients WHERE id = ?`, c.ID))
		return err
	})
	if err != nil {
		return nil, wrap("update client", err)
	}
	return stored, nil
}

// Client implements keycard.ClientStore.
func (s *ClientStore) Client(ctx context.Context, id string) (*keycard.Client, error) {
	c, err := scanClient(s.db.reader().QueryRowContext(ctx, `SELECT `+clientColumns+` FROM clients WHERE id = ?`, id))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, clientNotFound()
	}
	return c, wrap("client", err)
}

// ClientWithKeyGeneration implements keycard.ClientStore, in one query,
// on the read connection's driver (DB.rawReadRow): it is the client's
// lookup of every client credentials grant.
func (s *ClientStore) ClientWithKeyGeneration(ctx context.Context, id string) (*keycard.Client, int64, error) {
	var (
		row clientRow
		gen int64
	)
	err := s.db.rawReadRow(ctx, clientWithKeyGenerationQuery, []any{id}, append(row.dest(), &gen)...)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, 0, clientNotFound()
	}
	if err != nil {
		return nil, 0, wrap("client", err)
	}
	c, err := row.client()
	if err != nil {
		return nil, 0, wrap("client", err)
	}
	return c, gen, nil
}

const clientWithKeyGenerationQuery = `SELECT ` + clientColumns + `, (` + keyGenerationQuery + `) FROM clients WHERE id = ?`

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

// DeleteClient implements keycard.ClientStore. Its consents, codes and
// pushed requests go with it (ON DELETE CASCADE).
func (s *ClientStore) DeleteClient(ctx context.Context, id string, at time.Time) error {
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
		// Grant sessions have no grant sessions of their own.
		_, err = revokeWhere(ctx, tx, `client_id = ? AND client_id != ''`, []any{id}, at, keycard.RevokeClientDeleted)
		return err
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
	err := s.db.update(ctx, func(tx txn) error {
		c, err := scanClient(tx.QueryRowContext(ctx, `SELECT `+clientColumns+` FROM clients WHERE id = ?`, id))
		if errors.Is(err, sql.ErrNoRows) {
			return clientNotFound()
		} else if err != nil {
			return err
		}
		if c.Public() {
			return &keycard.Error{Code: keycard.EINVALID, Message: "A public client has no secret."}
		}
		_, err = tx.ExecContext(ctx, `UPDATE clients SET secret_hash = ?, updated_at = ? WHERE id = ?`, hash, micros(at), id)
		return err
	})
	return wrap("set client secret", err)
}

package sqlite

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"time"

	"github.com/keycard-auth/keycard"
)

// GrantStore implements keycard.GrantStore.
type GrantStore struct{ db *DB }

var _ keycard.GrantStore = (*GrantStore)(nil)

// NewGrantStore returns the grant store on db.
func NewGrantStore(db *DB) *GrantStore { return &GrantStore{db: db} }

const authCodeColumns = `id, secret_hash, client_id, user_id, session_id, redirect_uri, code_challenge, scope, nonce,
	auth_time, amr, created_at, expires_at, redeemed_at, grant_session_id, dpop_jkt`

func scanAuthCode(row scanner) (*keycard.AuthCode, error) {
	var (
		c                                    keycard.AuthCode
		amr, grantSession                    sql.NullString
		authTime, created, expires, redeemed sql.NullInt64
	)
	if err := row.Scan(&c.ID, &c.SecretHash, &c.ClientID, &c.UserID, &c.SessionID, &c.RedirectURI, &c.CodeChallenge, &c.Scope, &c.Nonce,
		&authTime, &amr, &created, &expires, &redeemed, &grantSession, &c.DPoPJKT); err != nil {
		return nil, err
	}
	c.AuthTime, c.CreatedAt, c.ExpiresAt, c.RedeemedAt = fromMicros(authTime), fromMicros(created), fromMicros(expires), fromMicros(redeemed)
	c.GrantSessionID = grantSession.String
	return &c, decodeList(amr, &c.AMR)
}

const deviceCodeColumns = `id, secret_hash, user_code, client_id, scope, state, poll_interval, created_at, expires_at, last_polled_at,
	user_id, session_id, auth_time, amr, redeemed_at, grant_session_id`

func scanDeviceCode(row scanner) (*keycard.DeviceCode, error) {
	var (
		d                                                keycard.DeviceCode
		interval                                         int64
		user, session, amr, grantSession                 sql.NullString
		created, expires, polled, authTime, redeemedTime sql.NullInt64
	)
	if err := row.Scan(&d.ID, &d.SecretHash, &d.UserCode, &d.ClientID, &d.Scope, &d.State, &interval, &created, &expires, &polled,
		&user, &session, &authTime, &amr, &redeemedTime, &grantSession); err != nil {
		return nil, err
	}
	d.Interval = time.Duration(interval) * time.Microsecond
	d.CreatedAt, d.ExpiresAt, d.LastPolledAt = fromMicros(created), fromMicros(expires), fromMicros(polled)
	d.UserID, d.SessionID, d.GrantSessionID = user.String, session.String, grantSession.String
	d.AuthTime, d.RedeemedAt = fromMicros(authTime), fromMicros(redeemedTime)
	return &d, decodeList(amr, &d.AMR)
}

func authCodeNotFound() error {
	return &keycard.Error{Code: keycard.ENOTFOUND, Message: "Authorization code not found."}
}

func deviceCodeNotFound() error {
	return &keycard.Error{Code: keycard.ENOTFOUND, Message: "Device code not found."}
}

// CreateAuthCode implements keycard.GrantStore.
func (s *GrantStore) CreateAuthCode(ctx context.Context, c *keycard.AuthCode) error {
	if c.ID == "" || len(c.SecretHash) == 0 || c.ClientID == "" || c.UserID == "" || c.SessionID == "" {
		return &keycard.Error{Code: keycard.EINVALID, Message: "Authorization code id, secret hash, client, user and session are required."}
	}
	amr, err := nullList(c.AMR)
	if err != nil {
		return wrap("create auth code", err)
	}
	// Batched with the other writes of the sign-in flows (see batcher).
	err = s.db.batches.write(ctx, func(ctx context.Context, tx txn) error {
		// Inserted only if the session is the user's.
		res, err := tx.ExecContext(ctx, `INSERT INTO auth_codes (`+authCodeColumns+`)
			SELECT ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?
			WHERE EXISTS (SELECT 1 FROM sessions WHERE id = ? AND user_id = ?)`,
			c.ID, c.SecretHash, c.ClientID, c.UserID, c.SessionID, c.RedirectURI, c.CodeChallenge, c.Scope, c.Nonce,
			nullMicros(c.AuthTime), amr, micros(c.CreatedAt), micros(c.ExpiresAt), nullMicros(c.RedeemedAt), nullString(c.GrantSessionID), c.DPoPJKT,
			c.SessionID, c.UserID)
		switch {
		case isForeignKey(err):
			return clientNotFound()
		case isConstraint(err):
			return &keycard.Error{Code: keycard.ECONFLICT, Message: "Authorization code already exists."}
		case err != nil:
			return err
		}
		if n, err := res.RowsAffected(); err != nil {
			return err
		} else if n == 0 {
			return sessionNotFound()
		}
		return nil
	})
	return wrap("create auth code", err)
}

// AuthCode implements keycard.GrantStore.
func (s *GrantStore) AuthCode(ctx context.Context, id string) (*keycard.AuthCode, error) {
	c, err := scanAuthCode(s.db.reader().QueryRowContext(ctx, `SELECT `+authCodeColumns+` FROM auth_codes WHERE id = ?`, id))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, authCodeNotFound()
	}
	return c, wrap("auth code", err)
}

// CreateDeviceCode implements keycard.GrantStore.
func (s *GrantStore) CreateDeviceCode(ctx context.Context, d *keycard.DeviceCode) error {
	if d.ID == "" || len(d.SecretHash) == 0 || d.UserCode == "" || d.ClientID == "" {
		return &keycard.Error{Code: keycard.EINVALID, Message: "Device code id, secret hash, user code and client are required."}
	}
	if d.State != keycard.DevicePending {
		return &keycard.Error{Code: keycard.EINVALID, Message: "A new device code is pending."}
	}
	amr, err := nullList(d.AMR)
	if err != nil {
		return wrap("create device code", err)
	}
	err = s.db.update(ctx, func(tx txn) error {
		// An expired code gives its user code up.
		if _, err := tx.ExecContext(ctx, `DELETE FROM device_codes WHERE user_code = ? AND expires_at <= ?`,
			d.UserCode, micros(d.CreatedAt)); err != nil {
			return err
		}
		_, err := tx.ExecContext(ctx, `INSERT INTO device_codes (`+deviceCodeColumns+`) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
			d.ID, d.SecretHash, d.UserCode, d.ClientID, d.Scope, string(d.State), d.Interval.Microseconds(),
			micros(d.CreatedAt), micros(d.ExpiresAt), nullMicros(d.LastPolledAt),
			nullString(d.UserID), nullString(d.SessionID), nullMicros(d.AuthTime), amr, nullMicros(d.RedeemedAt), nullString(d.GrantSessionID))
		switch {
		case isForeignKey(err):
			return &keycard.Error{Code: keycard.ENOTFOUND, Message: "Client or session not found."}
		case isConstraint(err):
			return &keycard.Error{Code: keycard.ECONFLICT, Message: "Device code or user code already in use."}
		}
		return err
	})
	return wrap("create device code", err)
}

// DeviceCode implements keycard.GrantStore.
func (s *GrantStore) DeviceCode(ctx context.Context, id string) (*keycard.DeviceCode, error) {
	d, err := scanDeviceCode(s.db.reader().QueryRowContext(ctx, `SELECT `+deviceCodeColumns+` FROM device_codes WHERE id = ?`, id))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, deviceCodeNotFound()
	}
	return d, wrap("device code", err)
}

// DeviceCodeByUserCode implements keycard.GrantStore.
func (s *GrantStore) DeviceCodeByUserCode(ctx context.Context, userCode string, at time.Time) (*keycard.DeviceCode, error) {
	d, err := scanDeviceCode(s.db.reader().QueryRowContext(ctx, `SELECT `+deviceCodeColumns+` FROM device_codes
		WHERE user_code = ? AND expires_at > ?`, userCode, micros(at)))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, deviceCodeNotFound()
	}
	return d, wrap("device code by user code", err)
}

// validDecision checks the arguments of DecideDeviceCode.
func validDecision(d *keycard.DeviceCode, state keycard.DeviceCodeState) error {
	switch {
	case state != keycard.DeviceApproved && state != keycard.DeviceDenied:
		return keycard.Errorf(keycard.EINVALID, "A device code is approved or denied, not %q.", state)
	case state == keycard.DeviceApproved && (d.UserID == "" || d.SessionID == ""):
		return &keycard.Error{Code: keycard.EINVALID, Message: "An approval needs the user and their session."}
	}
	return nil
}

func deviceCodeUndecidable() error {
	return &keycard.Error{Code: keycard.ENOTFOUND, Message: "Device code not found, expired or already decided."}
}

// DecideDeviceCode implements keycard.GrantStore.
func (s *GrantStore) DecideDeviceCode(ctx context.Context, d *keycard.DeviceCode, state keycard.DeviceCodeState, at time.Time) error {
	if err := validDecision(d, state); err != nil {
		return err
	}
	amr, err := nullList(d.AMR)
	if err != nil {
		return wrap("decide device code", err)
	}
	err = s.db.update(ctx, func(tx txn) error {
		var res sql.Result
		var err error
		if state == keycard.DeviceDenied {
			res, err = tx.ExecContext(ctx, `UPDATE device_codes SET state = 'denied'
				WHERE id = ? AND state = 'pending' AND expires_at > ?`, d.ID, micros(at))
		} else {
			res, err = tx.ExecContext(ctx, `UPDATE device_codes SET state = 'approved', user_id = ?, session_id = ?, auth_time = ?, amr = ?
				WHERE id = ? AND state = 'pending' AND expires_at > ?
				AND EXISTS (SELECT 1 FROM sessions WHERE id = ? AND user_id = ?)`,
				d.UserID, d.SessionID, nullMicros(d.AuthTime), amr, d.ID, micros(at), d.SessionID, d.UserID)
		}
		if err != nil {
			return err
		}
		if n, err := res.RowsAffected(); err != nil {
			return err
		} else if n == 0 {
			return deviceCodeUndecidable()
		}
		return nil
	})
	return wrap("decide device code", err)
}

// PollDeviceCode implements keycard.GrantStore.
func (s *GrantStore) PollDeviceCode(ctx context.Context, id string, at time.Time) (*keycard.DeviceCode, error) {
	var d *keycard.DeviceCode
	err := s.db.update(ctx, func(tx txn) error {
		var err error
		d, err = scanDeviceCode(tx.QueryRowContext(ctx, `SELECT `+deviceCodeColumns+` FROM device_codes WHERE id = ?`, id))
		if errors.Is(err, sql.ErrNoRows) {
			return deviceCodeNotFound()
		} else if err != nil {
			return err
		}
		_, err = tx.ExecContext(ctx, `UPDATE device_codes SET last_polled_at = ? WHERE id = ?`, micros(at), id)
		return err
	})
	if err != nil {
		return nil, wrap("poll device code", err)
	}
	return d, nil
}

// redeemable is what Redeem reads of a code of either kind.
type redeemable struct {
	clientID, userID, sessionID, grantSessionID sql.NullString
	state                                       string
	expires, redeemed                           sql.NullInt64
}

// Redeem implements keycard.GrantStore.
func (s *GrantStore) Redeem(ctx context.Context, r keycard.RedeemRequest) (keycard.RedeemOutcome, error) {
	var table string
	switch r.Kind {
	case keycard.GrantKindAuthCode:
		table = "auth_codes"
	case keycard.GrantKindDeviceCode:
		table = "device_codes"
	case keycard.GrantKindSealedCode:
		return s.redeemSealed(ctx, r)
	default:
		return 0, keycard.Errorf(keycard.EINVALID, "Unknown grant kind %d.", r.Kind)
	}
	if r.Session == nil {
		return 0, &keycard.Error{Code: keycard.EINVALID, Message: "Redeem needs the grant session to create."}
	}
	if err := validSession(r.Session, r.First); err != nil {
		return 0, err
	}
	var outcome keycard.RedeemOutcome
	// Batched with the other writes of the sign-in flows (see batcher).
	err := s.db.batches.write(ctx, func(ctx context.Context, tx txn) error {
		// An authorization code is approved when it is issued.
		var c redeemable
		query := `SELECT client_id, user_id, session_id, grant_session_id, 'approved', expires_at, redeemed_at FROM auth_codes WHERE id = ?`
		if table == "device_codes" {
			query = `SELECT client_id, user_id, session_id, grant_session_id, state, expires_at, redeemed_at FROM device_codes WHERE id = ?`
		}
		err := tx.QueryRowContext(ctx, query, r.ID).Scan(&c.clientID, &c.userID, &c.sessionID, &c.grantSessionID, &c.state, &c.expires, &c.redeemed)
		if errors.Is(err, sql.ErrNoRows) {
			if r.Kind == keycard.GrantKindAuthCode {
				return authCodeNotFound()
			}
			return deviceCodeNotFound()
		} else if err != nil {
			return err
		}
		if c.redeemed.Valid {
			outcome = keycard.Reused
			return revokeGrant(ctx, tx, c.grantSessionID.String, r.At)
		}
		if !r.At.Before(fromMicros(c.expires)) {
			return codeExpired()
		}
		if c.state != string(keycard.DeviceApproved) {
			return &keycard.Error{Code: keycard.EINVALID, Message: "The device code is not approved."}
		}
		if err := checkGrant(r.Session, c.sessionID.String, c.userID.String, c.clientID.String); err != nil {
			return err
		}
		if err := checkLiveParent(ctx, tx, r); err != nil {
			return err
		}
		if err := insertGrant(ctx, tx, r); err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, `UPDATE `+table+` SET redeemed_at = ?, grant_session_id = ? WHERE id = ?`,
			micros(r.At), r.Session.ID, r.ID); err != nil {
			return err
		}
		outcome = keycard.Redeemed
		return nil
	})
	if err != nil {
		return 0, wrap("redeem", err)
	}
	return outcome, nil
}

// checkSealed checks the arguments of Redeem for a sealed code.
func checkSealed(r keycard.RedeemRequest) error {
	if r.ID == "" || len(r.ID) > keycard.MaxSealedCodeIDLen || r.ExpiresAt.IsZero() {
		return &keycard.Error{Code: keycard.EINVALID, Message: "A sealed code needs an id of 1 to 64 bytes and its expiry."}
	}
	if r.Session != nil {
		if err := validSession(r.Session, r.First); err != nil {
			return err
		}
		if r.Session.ParentID == "" || r.Session.ClientID == "" {
			return &keycard.Error{Code: keycard.EINVALID, Message: "A grant session needs its parent and its client."}
		}
	}
	return nil
}

// redeemSealed is Redeem for a sealed code: the insert of its use, then
// the checks of its parent (and consent) and the grant session's inserts,
// in one batched write. A code used before finds its row and revokes the
// grant of that use.
func (s *GrantStore) redeemSealed(ctx context.Context, r keycard.RedeemRequest) (keycard.RedeemOutcome, error) {
	if err := checkSealed(r); err != nil {
		return 0, err
	}
	if r.Session == nil || !r.At.Before(r.ExpiresAt) {
		// A refused request (or an expired code) only asks whether the
		// code was used: answer "no" from the read pool, so that replays
		// of codes that were never redeemed — anyone can get real codes
		// of their own and send them with a wrong verifier — do not take
		// the one writer. A code found used goes to the writer, which
		// looks again and revokes (a first use committing in between is
		// found there; its order against this request was arbitrary
		// anyway).
		if _, err := usedCodeGrant(ctx, s.db.reader(), r); err != nil {
			return 0, wrap("redeem", err)
		}
	}
	var outcome keycard.RedeemOutcome
	err := s.db.batches.write(ctx, func(ctx context.Context, tx txn) error {
		live := r.Session != nil && r.At.Before(r.ExpiresAt)
		if live {
			res, err := tx.rawExec(ctx, `INSERT INTO used_auth_codes (expires_at, id, grant_session_id) VALUES (?, ?, ?)
				ON CONFLICT DO NOTHING`, micros(r.ExpiresAt), r.ID, r.Session.ID)
			if err != nil {
				return err
			}
			n, err := res.RowsAffected()
			if err != nil {
				return err
			}
			live = n == 1
		}
		if !live {
			grant, err := usedCodeGrant(ctx, tx, r)
			if err != nil {
				return err
			}
			outcome = keycard.Reused
			return revokeGrant(ctx, tx, grant, r.At)
		}
		if err := checkLiveParent(ctx, tx, r); err != nil {
			return err
		}
		if r.NeedsConsent {
			var one int64
			err := tx.rawQueryRow(ctx, `SELECT 1 FROM consents WHERE user_id = ? AND client_id = ? AND created_at <= ?`,
				[]any{r.Session.UserID, r.Session.ClientID, micros(r.ExpiresAt.Add(-keycard.AuthCodeLifetime))}, &one)
			if errors.Is(err, sql.ErrNoRows) {
				return &keycard.Error{Code: keycard.EUNAUTHORIZED, Message: "The user's consent to the client was revoked."}
			} else if err != nil {
				return err
			}
		}
		outcome = keycard.Redeemed
		return insertGrant(ctx, tx, r)
	})
	if err != nil {
		return 0, wrap("redeem", err)
	}
	return outcome, nil
}

// usedCodeGrant returns the grant session of a sealed code's earlier
// use; a code not used before is, for a request that could not use it (no
// grant session), not found, and otherwise expired.
func usedCodeGrant(ctx context.Context, q queryer, r keycard.RedeemRequest) (string, error) {
	var grant string
	err := q.QueryRowContext(ctx, `SELECT grant_session_id FROM used_auth_codes WHERE expires_at = ? AND id = ?`,
		micros(r.ExpiresAt), r.ID).Scan(&grant)
	switch {
	case errors.Is(err, sql.ErrNoRows) && r.Session == nil:
		return "", authCodeNotFound()
	case errors.Is(err, sql.ErrNoRows):
		return "", codeExpired()
	}
	return grant, err
}

// checkLiveParent checks, in a redemption's transaction, that its grant
// session's parent is a sign-in of the same user, active at r.At.
func checkLiveParent(ctx context.Context, tx txn, r keycard.RedeemRequest) error {
	parent, err := tx.session(ctx, r.Session.ParentID)
	if err != nil {
		return err
	}
	if err := checkParent(parent, r.Session); err != nil {
		return err
	}
	if !parent.Active(r.At) {
		return sessionEnded()
	}
	return nil
}

// insertGrant inserts a redemption's grant session, its first token and
// its audit event.
func insertGrant(ctx context.Context, tx txn, r keycard.RedeemRequest) error {
	if err := insertSession(ctx, tx, r.Session, r.First); err != nil {
		return err
	}
	if r.Audit != nil {
		return insertAudit(ctx, tx, r.Audit)
	}
	return nil
}

func codeExpired() error {
	return &keycard.Error{Code: keycard.EUNAUTHORIZED, Message: "The code has expired."}
}

// checkGrant checks that the grant session sess is the one the code
// (of the session, user and client) was issued for.
func checkGrant(sess *keycard.Session, sessionID, userID, clientID string) error {
	if sess.ParentID != sessionID || sess.UserID != userID || sess.ClientID != clientID {
		return &keycard.Error{Code: keycard.EINVALID, Message: "The grant session does not match the code."}
	}
	return nil
}

// revokeGrant revokes the grant session of a reused code, if it is still
// there.
func revokeGrant(ctx context.Context, tx txn, id string, at time.Time) error {
	sess, err := tx.session(ctx, id)
	if keycard.ErrorCode(err) == keycard.ENOTFOUND {
		return nil // pruned
	} else if err != nil {
		return err
	}
	return revokeSession(ctx, tx, sess, at, keycard.RevokeCodeReuse)
}

const consentColumns = `user_id, client_id, scopes, created_at, updated_at`

func scanConsent(row scanner) (*keycard.Consent, error) {
	var (
		c                keycard.Consent
		scopes           string
		created, updated sql.NullInt64
	)
	if err := row.Scan(&c.UserID, &c.ClientID, &scopes, &created, &updated); err != nil {
		return nil, err
	}
	c.CreatedAt, c.UpdatedAt = fromMicros(created), fromMicros(updated)
	return &c, json.Unmarshal([]byte(scopes), &c.Scopes)
}

func consentNotFound() error {
	return &keycard.Error{Code: keycard.ENOTFOUND, Message: "Consent not found."}
}

// Consent implements keycard.GrantStore.
func (s *GrantStore) Consent(ctx context.Context, userID, clientID string) (*keycard.Consent, error) {
	c, err := scanConsent(s.db.reader().QueryRowContext(ctx, `SELECT `+consentColumns+` FROM consents
		WHERE user_id = ? AND client_id = ?`, userID, clientID))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, consentNotFound()
	}
	return c, wrap("consent", err)
}

// SaveConsent implements keycard.GrantStore.
func (s *GrantStore) SaveConsent(ctx context.Context, c *keycard.Consent) error {
	if c.UserID == "" || c.ClientID == "" {
		return &keycard.Error{Code: keycard.EINVALID, Message: "Consent user and client are required."}
	}
	scopes, err := encodeRoles(c.Scopes)
	if err != nil {
		return wrap("save consent", err)
	}
	err = s.db.update(ctx, func(tx txn) error {
		_, err := tx.ExecContext(ctx, `INSERT INTO consents (`+consentColumns+`) VALUES (?, ?, ?, ?, ?)
			ON CONFLICT (user_id, client_id) DO UPDATE SET scopes = excluded.scopes, updated_at = excluded.updated_at`,
			c.UserID, c.ClientID, scopes, micros(c.CreatedAt), micros(c.UpdatedAt))
		if isForeignKey(err) {
			return &keycard.Error{Code: keycard.ENOTFOUND, Message: "User or client not found."}
		}
		return err
	})
	return wrap("save consent", err)
}

// ListConsents implements keycard.GrantStore.
func (s *GrantStore) ListConsents(ctx context.Context, userID string) ([]*keycard.Consent, error) {
	rows, err := s.db.reader().QueryContext(ctx, `SELECT `+consentColumns+` FROM consents WHERE user_id = ? ORDER BY client_id`, userID)
	if err != nil {
		return nil, wrap("list consents", err)
	}
	defer rows.Close()
	consents := []*keycard.Consent{}
	for rows.Next() {
		c, err := scanConsent(rows)
		if err != nil {
			return nil, wrap("list consents", err)
		}
		consents = append(consents, c)
	}
	return consents, wrap("list consents", rows.Err())
}

// RevokeConsent implements keycard.GrantStore.
func (s *GrantStore) RevokeConsent(ctx context.Context, userID, clientID string, at time.Time) ([]string, error) {
	var ids []string
	err := s.db.update(ctx, func(tx txn) error {
		res, err := tx.ExecContext(ctx, `DELETE FROM consents WHERE user_id = ? AND client_id = ?`, userID, clientID)
		if err != nil {
			return err
		}
		if n, err := res.RowsAffected(); err != nil {
			return err
		} else if n == 0 {
			return consentNotFound()
		}
		// The codes issued under the consent; auth codes are found
		// through the user's sessions, which are indexed.
		if _, err := tx.ExecContext(ctx, `DELETE FROM auth_codes
			WHERE session_id IN (SELECT id FROM sessions WHERE user_id = ?) AND client_id = ? AND redeemed_at IS NULL`,
			userID, clientID); err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, `DELETE FROM device_codes
			WHERE user_id = ? AND client_id = ? AND redeemed_at IS NULL`, userID, clientID); err != nil {
			return err
		}
		ids, err = revokeClientSessions(ctx, tx, userID, clientID, at, keycard.RevokeConsentRevoked)
		return err
	})
	if err != nil {
		return nil, wrap("revoke consent", err)
	}
	return ids, nil
}

// validParams reports whether params is a JSON object.
func validParams(params []byte) bool {
	var m map[string]json.RawMessage
	return json.Unmarshal(params, &m) == nil && m != nil
}

// CreatePushedRequest implements keycard.GrantStore.
func (s *GrantStore) CreatePushedRequest(ctx context.Context, p *keycard.PushedRequest) error {
	if p.ID == "" || p.ClientID == "" {
		return &keycard.Error{Code: keycard.EINVALID, Message: "Pushed request id and client are required."}
	}
	if !validParams(p.Params) {
		return &keycard.Error{Code: keycard.EINVALID, Message: "Pushed request parameters must be a JSON object."}
	}
	err := s.db.update(ctx, func(tx txn) error {
		_, err := tx.ExecContext(ctx, `INSERT INTO pushed_requests (id, client_id, params, created_at, expires_at) VALUES (?, ?, ?, ?, ?)`,
			p.ID, p.ClientID, p.Params, micros(p.CreatedAt), micros(p.ExpiresAt))
		switch {
		case isForeignKey(err):
			return clientNotFound()
		case isConstraint(err):
			return &keycard.Error{Code: keycard.ECONFLICT, Message: "Pushed request already exists."}
		}
		return err
	})
	return wrap("create pushed request", err)
}

// PushedRequest implements keycard.GrantStore.
func (s *GrantStore) PushedRequest(ctx context.Context, id string, at time.Time) (*keycard.PushedRequest, error) {
	var (
		p                keycard.PushedRequest
		created, expires sql.NullInt64
	)
	err := s.db.reader().QueryRowContext(ctx, `SELECT id, client_id, params, created_at, expires_at FROM pushed_requests
		WHERE id = ? AND expires_at > ?`, id, micros(at)).Scan(&p.ID, &p.ClientID, &p.Params, &created, &expires)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, &keycard.Error{Code: keycard.ENOTFOUND, Message: "Pushed request not found."}
	} else if err != nil {
		return nil, wrap("pushed request", err)
	}
	p.CreatedAt, p.ExpiresAt = fromMicros(created), fromMicros(expires)
	return &p, nil
}

// DeletePushedRequest implements keycard.GrantStore.
func (s *GrantStore) DeletePushedRequest(ctx context.Context, id string) error {
	err := s.db.update(ctx, func(tx txn) error {
		_, err := tx.ExecContext(ctx, `DELETE FROM pushed_requests WHERE id = ?`, id)
		return err
	})
	return wrap("delete pushed request", err)
}

// checkUseOnce checks the arguments of UseOnce.
func checkUseOnce(key string, at, expiresAt time.Time) error {
	if key == "" || len(key) > keycard.MaxUseOnceKeyLen || !expiresAt.After(at) {
		return &keycard.Error{Code: keycard.EINVALID, Message: "A single-use marker needs a key of 1 to 256 bytes and an expiry after its time."}
	}
	return nil
}

// UseOnce implements keycard.GrantStore: one upsert, which replaces only
// an expired marker.
func (s *GrantStore) UseOnce(ctx context.Context, key string, at, expiresAt time.Time) (bool, error) {
	if err := checkUseOnce(key, at, expiresAt); err != nil {
		return false, err
	}
	var first bool
	err := s.db.update(ctx, func(tx txn) error {
		res, err := tx.ExecContext(ctx, `INSERT INTO used_once (key, expires_at) VALUES (?, ?)
			ON CONFLICT (key) DO UPDATE SET expires_at = excluded.expires_at WHERE used_once.expires_at <= ?`,
			key, micros(expiresAt), micros(at))
		if err != nil {
			return err
		}
		n, err := res.RowsAffected()
		first = n == 1
		return err
	})
	return first, wrap("use once", err)
}

// PruneGrants implements keycard.GrantStore.
func (s *GrantStore) PruneGrants(ctx context.Context, before time.Time) (int64, error) {
	var total int64
	err := s.db.update(ctx, func(tx txn) error {
		total = 0
		for _, table := range []string{"auth_codes", "used_auth_codes", "device_codes", "pushed_requests", "used_once"} {
			res, err := tx.ExecContext(ctx, `DELETE FROM `+table+` WHERE expires_at < ?`, micros(before))
			if err != nil {
				return err
			}
			n, err := res.RowsAffected()
			if err != nil {
				return err
			}
			total += n
		}
		return nil
	})
	return total, wrap("prune grants", err)
}

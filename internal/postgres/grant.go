package postgres

import (
	"context"
	"encoding/json"
	"errors"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/keycard-auth/keycard"
)

// GrantStore implements keycard.GrantStore.
//
// Locks, in the order of SessionStore's: Redeem takes a share lock on the
// code's browser session (so that it cannot be revoked before the grant
// session under it commits), then the code's row; a reused code's grant
// session is locked after the code. A code goes with its session (ON
// DELETE CASCADE), so pruning sessions locks codes after sessions too.
type GrantStore struct{ db *DB }

var _ keycard.GrantStore = (*GrantStore)(nil)

const authCodeColumns = `id, secret_hash, client_id, user_id, session_id, redirect_uri, code_challenge, scope, nonce,
	auth_time, amr, created_at, expires_at, redeemed_at, grant_session_id, dpop_jkt`

func scanAuthCode(row pgx.Row) (*keycard.AuthCode, error) {
	var (
		c                  keycard.AuthCode
		authTime, redeemed *time.Time
		grantSession       *string
	)
	if err := row.Scan(&c.ID, &c.SecretHash, &c.ClientID, &c.UserID, &c.SessionID, &c.RedirectURI, &c.CodeChallenge, &c.Scope, &c.Nonce,
		&authTime, &c.AMR, &c.CreatedAt, &c.ExpiresAt, &redeemed, &grantSession, &c.DPoPJKT); err != nil {
		return nil, err
	}
	if len(c.AMR) == 0 {
		c.AMR = nil
	}
	c.AuthTime, c.RedeemedAt = fromNull(authTime), fromNull(redeemed)
	c.CreatedAt, c.ExpiresAt = c.CreatedAt.UTC(), c.ExpiresAt.UTC()
	c.GrantSessionID = orZero(grantSession)
	return &c, nil
}

const deviceCodeColumns = `id, secret_hash, user_code, client_id, scope, state, poll_interval, created_at, expires_at, last_polled_at,
	user_id, session_id, auth_time, amr, redeemed_at, grant_session_id`

func scanDeviceCode(row pgx.Row) (*keycard.DeviceCode, error) {
	var (
		d                          keycard.DeviceCode
		interval                   int64
		polled, authTime, redeemed *time.Time
		user, session, grant       *string
	)
	if err := row.Scan(&d.ID, &d.SecretHash, &d.UserCode, &d.ClientID, &d.Scope, &d.State, &interval, &d.CreatedAt, &d.ExpiresAt, &polled,
		&user, &session, &authTime, &d.AMR, &redeemed, &grant); err != nil {
		return nil, err
	}
	if len(d.AMR) == 0 {
		d.AMR = nil
	}
	d.Interval = time.Duration(interval) * time.Microsecond
	d.CreatedAt, d.ExpiresAt = d.CreatedAt.UTC(), d.ExpiresAt.UTC()
	d.LastPolledAt, d.AuthTime, d.RedeemedAt = fromNull(polled), fromNull(authTime), fromNull(redeemed)
	d.UserID, d.SessionID, d.GrantSessionID = orZero(user), orZero(session), orZero(grant)
	return &d, nil
}

// orZero returns *s, or "" for nil.
func orZero(s *string) string {
	if s == nil {
		return ""
	}
	return *s
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
	if !validText(c.ID) {
		return invalidText()
	}
	if !validText(c.ClientID) {
		return clientNotFound()
	}
	if !validText(c.UserID, c.SessionID) {
		return sessionNotFound()
	}
	// Inserted only if the session is the user's: one statement, one
	// round trip.
	tag, err := s.db.pool.Exec(ctx, `INSERT INTO auth_codes (`+authCodeColumns+`)
		SELECT $1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16
		WHERE EXISTS (SELECT 1 FROM sessions WHERE id = $5 AND user_id = $4)`,
		c.ID, c.SecretHash, c.ClientID, c.UserID, c.SessionID, c.RedirectURI, c.CodeChallenge, c.Scope, c.Nonce,
		nullTime(c.AuthTime), orEmpty(c.AMR), c.CreatedAt, c.ExpiresAt, nullTime(c.RedeemedAt), nullString(c.GrantSessionID), c.DPoPJKT)
	switch {
	case pgCode(err) == foreignKeyViolation && constraint(err) == "auth_codes_client_id_fkey":
		return clientNotFound()
	case pgCode(err) == foreignKeyViolation:
		return sessionNotFound() // deleted since the check
	case pgCode(err) == uniqueViolation:
		return &keycard.Error{Code: keycard.ECONFLICT, Message: "Authorization code already exists."}
	case err != nil:
		return wrap("create auth code", err)
	case tag.RowsAffected() == 0:
		return sessionNotFound()
	}
	return nil
}

// AuthCode implements keycard.GrantStore.
func (s *GrantStore) AuthCode(ctx context.Context, id string) (*keycard.AuthCode, error) {
	if !validText(id) {
		return nil, authCodeNotFound()
	}
	c, err := scanAuthCode(s.db.reads().QueryRow(ctx, `SELECT `+authCodeColumns+` FROM auth_codes WHERE id = $1`, id))
	if errors.Is(err, pgx.ErrNoRows) {
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
	if !validText(d.ID, d.UserCode) {
		return invalidText()
	}
	if !validText(d.ClientID) {
		return clientNotFound()
	}
	b := &pgx.Batch{}
	// An expired code gives its user code up.
	b.Queue(`DELETE FROM device_codes WHERE user_code = $1 AND expires_at <= $2`, d.UserCode, d.CreatedAt)
	b.Queue(`INSERT INTO device_codes (`+deviceCodeColumns+`) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16)`,
		d.ID, d.SecretHash, d.UserCode, d.ClientID, d.Scope, string(d.State), d.Interval.Microseconds(),
		d.CreatedAt, d.ExpiresAt, nullTime(d.LastPolledAt),
		nullString(d.UserID), nullString(d.SessionID), nullTime(d.AuthTime), orEmpty(d.AMR), nullTime(d.RedeemedAt), nullString(d.GrantSessionID))
	err := s.db.pipeline(ctx, b, func(br pgx.BatchResults) error {
		if _, err := br.Exec(); err != nil {
			return err
		}
		_, err := br.Exec()
		switch pgCode(err) {
		case foreignKeyViolation:
			return &keycard.Error{Code: keycard.ENOTFOUND, Message: "Client or session not found."}
		case uniqueViolation:
			return &keycard.Error{Code: keycard.ECONFLICT, Message: "Device code or user code already in use."}
		}
		return err
	})
	return wrap("create device code", err)
}

// DeviceCode implements keycard.GrantStore.
func (s *GrantStore) DeviceCode(ctx context.Context, id string) (*keycard.DeviceCode, error) {
	if !validText(id) {
		return nil, deviceCodeNotFound()
	}
	d, err := scanDeviceCode(s.db.reads().QueryRow(ctx, `SELECT `+deviceCodeColumns+` FROM device_codes WHERE id = $1`, id))
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, deviceCodeNotFound()
	}
	return d, wrap("device code", err)
}

// DeviceCodeByUserCode implements keycard.GrantStore.
func (s *GrantStore) DeviceCodeByUserCode(ctx context.Context, userCode string, at time.Time) (*keycard.DeviceCode, error) {
	if !validText(userCode) {
		return nil, deviceCodeNotFound()
	}
	d, err := scanDeviceCode(s.db.reads().QueryRow(ctx, `SELECT `+deviceCodeColumns+` FROM device_codes
		WHERE user_code = $1 AND expires_at > $2`, userCode, at))
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, deviceCodeNotFound()
	}
	return d, wrap("device code by user code", err)
}

// validDecision checks the arguments of DecideDeviceCode.
func validDecision(d *keycard.DeviceCode, state keycard.DeviceCodeState) error {
	switch {
	case state != keycard.DeviceApproved && state != keycard.DeviceDenied:
		return keycard.Errorf(keycard.EINVALID, "A device code is approved or denied, not %q.", cleanText(string(state)))
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
	if !validText(d.ID, d.UserID, d.SessionID) {
		return deviceCodeUndecidable()
	}
	var (
		tag pgconn.CommandTag
		err error
	)
	if state == keycard.DeviceDenied {
		tag, err = s.db.pool.Exec(ctx, `UPDATE device_codes SET state = 'denied'
			WHERE id = $1 AND state = 'pending' AND expires_at > $2`, d.ID, at)
	} else {
		tag, err = s.db.pool.Exec(ctx, `UPDATE device_codes SET state = 'approved', user_id = $1, session_id = $2, auth_time = $3, amr = $4
			WHERE id = $5 AND state = 'pending' AND expires_at > $6
			AND EXISTS (SELECT 1 FROM sessions WHERE id = $2 AND user_id = $1)`,
			d.UserID, d.SessionID, nullTime(d.AuthTime), orEmpty(d.AMR), d.ID, at)
	}
	switch {
	case pgCode(err) == foreignKeyViolation:
		return deviceCodeUndecidable() // the session was deleted since the check
	case err != nil:
		return wrap("decide device code", err)
	case tag.RowsAffected() == 0:
		return deviceCodeUndecidable()
	}
	return nil
}

// PollDeviceCode implements keycard.GrantStore. The code is read, locked,
// and updated in one pipeline, one implicit transaction: concurrent polls
// each get the poll before theirs.
func (s *GrantStore) PollDeviceCode(ctx context.Context, id string, at time.Time) (*keycard.DeviceCode, error) {
	if !validText(id) {
		return nil, deviceCodeNotFound()
	}
	b := &pgx.Batch{}
	b.Queue(`SELECT `+deviceCodeColumns+` FROM device_codes WHERE id = $1 FOR UPDATE`, id)
	b.Queue(`UPDATE device_codes SET last_polled_at = $2 WHERE id = $1`, id, at)
	var d *keycard.DeviceCode
	err := s.db.pipeline(ctx, b, func(br pgx.BatchResults) error {
		var err error
		d, err = scanDeviceCode(br.QueryRow())
		if errors.Is(err, pgx.ErrNoRows) {
			return deviceCodeNotFound()
		} else if err != nil {
			return err
		}
		_, err = br.Exec()
		return err
	})
	if err != nil {
		return nil, wrap("poll device code", err)
	}
	return d, nil
}

// errReused ends a pipelined Redeem of a code that was redeemed before.
var errReused = errors.New("postgres: code redeemed before")

// codeTable returns the table of a grant kind's codes.
func codeTable(kind keycard.GrantKind) (string, error) {
	switch kind {
	case keycard.GrantKindAuthCode:
		return "auth_codes", nil
	case keycard.GrantKindDeviceCode:
		return "device_codes", nil
	}
	return "", keycard.Errorf(keycard.EINVALID, "Unknown grant kind %d.", kind)
}

// Redeem implements keycard.GrantStore.
//
// A redemption takes two round trips, like a rotation (see
// DB.updatePipelined): BEGIN, the share lock on the code's session and the
// lock on the code in one; the inserts of the grant session and its token,
// the code's update and COMMIT in the other. The code's row is read by the
// statement that locks it, which after waiting for another Redeem returns
// the row as that one left it: of concurrent Redeems, the first redeems
// and the others find the code redeemed. Those are rolled back there and
// handled by a transaction of their own (redeemReused), which revokes the
// first one's grant session and appends to the feed.
func (s *GrantStore) Redeem(ctx context.Context, r keycard.RedeemRequest) (keycard.RedeemOutcome, error) {
	if r.Kind == keycard.GrantKindSealedCode {
		return s.redeemSealed(ctx, r)
	}
	table, err := codeTable(r.Kind)
	if err != nil {
		return 0, err
	}
	if r.Session == nil {
		return 0, &keycard.Error{Code: keycard.EINVALID, Message: "Redeem needs the grant session to create."}
	}
	if err := validSession(r.Session, r.First); err != nil {
		return 0, err
	}
	notFound := authCodeNotFound
	if r.Kind == keycard.GrantKindDeviceCode {
		notFound = deviceCodeNotFound
	}
	if !validText(r.ID) {
		return 0, notFound()
	}
	state := `'approved'` // an authorization code is approved when issued
	if r.Kind == keycard.GrantKindDeviceCode {
		state = `state`
	}
	first := func(b *pgx.Batch) {
		b.Queue(`SELECT `+sessionColumns+` FROM sessions
			WHERE id = (SELECT session_id FROM `+table+` WHERE id = $1) FOR SHARE`, r.ID)
		b.Queue(`SELECT client_id, user_id, session_id, `+state+`, expires_at, redeemed_at
			FROM `+table+` WHERE id = $1 FOR UPDATE`, r.ID)
	}
	err = s.db.updatePipelined(ctx, first, func(br pgx.BatchResults) (*pgx.Batch, error) {
		parent, perr := scanSession(br.QueryRow())
		var (
			clientID, codeState string
			userID, sessionID   *string
			expires             time.Time
			redeemed            *time.Time
		)
		cerr := br.QueryRow().Scan(&clientID, &userID, &sessionID, &codeState, &expires, &redeemed)
		if errors.Is(cerr, pgx.ErrNoRows) {
			return nil, notFound()
		}
		if err := errors.Join(ignoreNoRows(perr), cerr); err != nil {
			return nil, err
		}
		switch {
		case redeemed != nil:
			return nil, errReused
		case !r.At.Before(expires):
			return nil, codeExpired()
		case codeState != string(keycard.DeviceApproved):
			return nil, &keycard.Error{Code: keycard.EINVALID, Message: "The device code is not approved."}
		}
		if err := checkGrant(r.Session, orZero(sessionID), orZero(userID), clientID); err != nil {
			return nil, err
		}
		if parent == nil {
			return nil, sessionNotFound() // a code goes with its session: not reached
		}
		if err := checkParent(parent, r.Session); err != nil {
			return nil, err
		}
		if !parent.Active(r.At) {
			return nil, sessionEnded()
		}
		b := &pgx.Batch{}
		queueSession(b, r.Session, r.First)
		b.Queue(`UPDATE `+table+` SET redeemed_at = $1, grant_session_id = $2 WHERE id = $3`, r.At, r.Session.ID, r.ID)
		if r.Audit != nil {
			if err := queueAudit(b, r.Audit); err != nil {
				return nil, err
			}
		}
		return b, nil
	})
	switch {
	case errors.Is(err, errReused):
		err = s.redeemReused(ctx, table, r, notFound)
		if err == nil {
			return keycard.Reused, nil
		}
	case err == nil:
		if r.First != nil {
			r.First.SessionID = r.Session.ID
		}
		return keycard.Redeemed, nil
	}
	return 0, wrap("redeem", sessionConflict(err))
}

// redeemReused is the rest of Redeem for a code that was redeemed before:
// in one transaction, it revokes the grant session of the first
// redemption, if it is still there, and appends to the feed.
func (s *GrantStore) redeemReused(ctx context.Context, table string, r keycard.RedeemRequest, notFound func() error) error {
	return s.db.update(ctx, func(tx pgx.Tx) error {
		var grant *string
		err := tx.QueryRow(ctx, `SELECT grant_session_id FROM `+table+` WHERE id = $1 AND redeemed_at IS NOT NULL FOR UPDATE`, r.ID).Scan(&grant)
		if err != nil {
			// Redeem saw it redeemed, and a redeemed code stays so; it
			// can only have been pruned or deleted since.
			if errors.Is(err, pgx.ErrNoRows) {
				return notFound()
			}
			return err
		}
		if grant == nil {
			return nil
		}
		return s.revokeGrant(ctx, tx, *grant, r.At)
	})
}

// revokeGrant revokes the grant session of a reused code, if it is still
// there, and appends to the feed.
func (s *GrantStore) revokeGrant(ctx context.Context, tx pgx.Tx, id string, at time.Time) error {
	sess, err := getSession(ctx, tx, id, true)
	if keycard.ErrorCode(err) == keycard.ENOTFOUND {
		return nil // pruned
	} else if err != nil {
		return err
	}
	revs, err := revokeSession(ctx, tx, sess, at, keycard.RevokeCodeReuse)
	if err != nil {
		return err
	}
	return appendFeed(ctx, tx, s.db.revocationTTL, revs...)
}

// checkSealed checks the arguments of Redeem for a sealed code.
func checkSealed(r keycard.RedeemRequest) error {
	if r.ID == "" || len(r.ID) > keycard.MaxSealedCodeIDLen || r.ExpiresAt.IsZero() {
		return &keycard.Error{Code: keycard.EINVALID, Message: "A sealed code needs an id of 1 to 64 bytes and its expiry."}
	}
	if !validText(r.ID) {
		return invalidText()
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

// redeemSealed is Redeem for a sealed code, in two round trips like a
// stored code's: BEGIN, the share lock on the parent session (and on the
// consent, when needed) and the insert of the code's use in one; the
// grant session's inserts and COMMIT in the other. The insert's primary
// key lets one redemption in: a concurrent one waits for it, then
// inserts nothing, is rolled back, and revokes what the first got
// (redeemUsedSealed), as does any later use.
func (s *GrantStore) redeemSealed(ctx context.Context, r keycard.RedeemRequest) (keycard.RedeemOutcome, error) {
	if err := checkSealed(r); err != nil {
		return 0, err
	}
	if r.Session == nil || !r.At.Before(r.ExpiresAt) {
		used, err := s.redeemUsedSealed(ctx, r)
		switch {
		case err != nil:
			return 0, wrap("redeem", err)
		case used:
			return keycard.Reused, nil
		case r.Session == nil:
			return 0, authCodeNotFound()
		}
		return 0, codeExpired()
	}
	first := func(b *pgx.Batch) {
		b.Queue(`SELECT `+sessionColumns+` FROM sessions WHERE id = $1 FOR SHARE`, r.Session.ParentID)
		if r.NeedsConsent {
			b.Queue(`SELECT count(*) FROM (SELECT FROM consents WHERE user_id = $1 AND client_id = $2 AND created_at <= $3 FOR SHARE) c`,
				r.Session.UserID, r.Session.ClientID, r.ExpiresAt.Add(-keycard.AuthCodeLifetime))
		}
		b.Queue(`INSERT INTO used_auth_codes (expires_at, id, grant_session_id) VALUES ($1, $2, $3)
			ON CONFLICT DO NOTHING`, r.ExpiresAt, r.ID, r.Session.ID)
	}
	err := s.db.updatePipelined(ctx, first, func(br pgx.BatchResults) (*pgx.Batch, error) {
		parent, perr := scanSession(br.QueryRow())
		consents := 1
		var cerr error
		if r.NeedsConsent {
			cerr = br.QueryRow().Scan(&consents)
		}
		tag, ierr := br.Exec()
		if err := errors.Join(ignoreNoRows(perr), cerr, ierr); err != nil {
			return nil, err
		}
		switch {
		case tag.RowsAffected() == 0:
			return nil, errReused
		case parent == nil:
			return nil, sessionNotFound()
		}
		if err := checkParent(parent, r.Session); err != nil {
			return nil, err
		}
		if !parent.Active(r.At) {
			return nil, sessionEnded()
		}
		if consents == 0 {
			return nil, &keycard.Error{Code: keycard.EUNAUTHORIZED, Message: "The user's consent to the client was revoked."}
		}
		b := &pgx.Batch{}
		queueSession(b, r.Session, r.First)
		if r.Audit != nil {
			if err := queueAudit(b, r.Audit); err != nil {
				return nil, err
			}
		}
		return b, nil
	})
	switch {
	case errors.Is(err, errReused):
		used, err := s.redeemUsedSealed(ctx, r)
		if err != nil {
			return 0, wrap("redeem", err)
		}
		if used {
			return keycard.Reused, nil
		}
		// The row the insert met is gone: pruned, which takes an hour
		// past the code's expiry, so not reached in practice.
		return 0, codeExpired()
	case err == nil:
		if r.First != nil {
			r.First.SessionID = r.Session.ID
		}
		return keycard.Redeemed, nil
	}
	return 0, wrap("redeem", sessionConflict(err))
}

// redeemUsedSealed looks for the use of a sealed code and, if there was
// one, revokes the grant session it created (if it is still there) and
// appends to the feed, in one transaction; used reports whether it found
// the use.
func (s *GrantStore) redeemUsedSealed(ctx context.Context, r keycard.RedeemRequest) (used bool, err error) {
	err = s.db.update(ctx, func(tx pgx.Tx) error {
		used = false
		var grant string
		err := tx.QueryRow(ctx, `SELECT grant_session_id FROM used_auth_codes WHERE expires_at = $1 AND id = $2 FOR UPDATE`, r.ExpiresAt, r.ID).Scan(&grant)
		if errors.Is(err, pgx.ErrNoRows) {
			return nil
		} else if err != nil {
			return err
		}
		used = true
		return s.revokeGrant(ctx, tx, grant, r.At)
	})
	return used, err
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

const consentColumns = `user_id, client_id, scopes, created_at, updated_at`

func scanConsent(row pgx.Row) (*keycard.Consent, error) {
	var c keycard.Consent
	if err := row.Scan(&c.UserID, &c.ClientID, &c.Scopes, &c.CreatedAt, &c.UpdatedAt); err != nil {
		return nil, err
	}
	c.CreatedAt, c.UpdatedAt = c.CreatedAt.UTC(), c.UpdatedAt.UTC()
	return &c, nil
}

func consentNotFound() error {
	return &keycard.Error{Code: keycard.ENOTFOUND, Message: "Consent not found."}
}

// Consent implements keycard.GrantStore.
func (s *GrantStore) Consent(ctx context.Context, userID, clientID string) (*keycard.Consent, error) {
	if !validText(userID, clientID) {
		return nil, consentNotFound()
	}
	c, err := scanConsent(s.db.reads().QueryRow(ctx, `SELECT `+consentColumns+` FROM consents
		WHERE user_id = $1 AND client_id = $2`, userID, clientID))
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, consentNotFound()
	}
	return c, wrap("consent", err)
}

// SaveConsent implements keycard.GrantStore.
func (s *GrantStore) SaveConsent(ctx context.Context, c *keycard.Consent) error {
	if c.UserID == "" || c.ClientID == "" {
		return &keycard.Error{Code: keycard.EINVALID, Message: "Consent user and client are required."}
	}
	if !validText(c.UserID, c.ClientID) {
		return &keycard.Error{Code: keycard.ENOTFOUND, Message: "User or client not found."}
	}
	_, err := s.db.pool.Exec(ctx, `INSERT INTO consents (`+consentColumns+`) VALUES ($1, $2, $3, $4, $5)
		ON CONFLICT (user_id, client_id) DO UPDATE SET scopes = excluded.scopes, updated_at = excluded.updated_at`,
		c.UserID, c.ClientID, orEmpty(c.Scopes), c.CreatedAt, c.UpdatedAt)
	if pgCode(err) == foreignKeyViolation {
		return &keycard.Error{Code: keycard.ENOTFOUND, Message: "User or client not found."}
	}
	return wrap("save consent", err)
}

// ListConsents implements keycard.GrantStore.
func (s *GrantStore) ListConsents(ctx context.Context, userID string) ([]*keycard.Consent, error) {
	if !validText(userID) {
		return []*keycard.Consent{}, nil
	}
	rows, err := s.db.pool.Query(ctx, `SELECT `+consentColumns+` FROM consents WHERE user_id = $1 ORDER BY client_id`, userID)
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

// RevokeConsent implements keycard.GrantStore. The codes go before the
// grant sessions are revoked: deleting a code waits for a Redeem that
// holds it, and the revocation, a statement of its own, then sees that
// Redeem's grant session.
func (s *GrantStore) RevokeConsent(ctx context.Context, userID, clientID string, at time.Time) ([]string, error) {
	if !validText(userID, clientID) {
		return nil, consentNotFound()
	}
	var ids []string
	err := s.db.update(ctx, func(tx pgx.Tx) error {
		b := &pgx.Batch{}
		b.Queue(`DELETE FROM consents WHERE user_id = $1 AND client_id = $2`, userID, clientID)
		// Auth codes are found through the user's sessions, which are
		// indexed.
		b.Queue(`DELETE FROM auth_codes WHERE session_id IN (SELECT id FROM sessions WHERE user_id = $1)
			AND client_id = $2 AND redeemed_at IS NULL`, userID, clientID)
		b.Queue(`DELETE FROM device_codes WHERE user_id = $1 AND client_id = $2 AND redeemed_at IS NULL`, userID, clientID)
		br := tx.SendBatch(ctx, b)
		tag, err := br.Exec()
		if cerr := br.Close(); err == nil {
			err = cerr
		}
		if err != nil {
			return err
		}
		if tag.RowsAffected() == 0 {
			return consentNotFound()
		}
		revs, err := revokeClientSessions(ctx, tx, userID, clientID, at, keycard.RevokeConsentRevoked)
		if err != nil {
			return err
		}
		ids = revokedIDs(revs)
		return appendFeed(ctx, tx, s.db.revocationTTL, revs...)
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
	if !validText(p.ID) {
		return invalidText()
	}
	if !validText(p.ClientID) {
		return clientNotFound()
	}
	_, err := s.db.pool.Exec(ctx, `INSERT INTO pushed_requests (id, client_id, params, created_at, expires_at) VALUES ($1, $2, $3, $4, $5)`,
		p.ID, p.ClientID, p.Params, p.CreatedAt, p.ExpiresAt)
	switch pgCode(err) {
	case foreignKeyViolation:
		return clientNotFound()
	case uniqueViolation:
		return &keycard.Error{Code: keycard.ECONFLICT, Message: "Pushed request already exists."}
	}
	return wrap("create pushed request", err)
}

// PushedRequest implements keycard.GrantStore.
func (s *GrantStore) PushedRequest(ctx context.Context, id string, at time.Time) (*keycard.PushedRequest, error) {
	notFound := &keycard.Error{Code: keycard.ENOTFOUND, Message: "Pushed request not found."}
	if !validText(id) {
		return nil, notFound
	}
	var p keycard.PushedRequest
	err := s.db.reads().QueryRow(ctx, `SELECT id, client_id, params, created_at, expires_at FROM pushed_requests
		WHERE id = $1 AND expires_at > $2`, id, at).Scan(&p.ID, &p.ClientID, &p.Params, &p.CreatedAt, &p.ExpiresAt)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, notFound
	} else if err != nil {
		return nil, wrap("pushed request", err)
	}
	p.CreatedAt, p.ExpiresAt = p.CreatedAt.UTC(), p.ExpiresAt.UTC()
	return &p, nil
}

// DeletePushedRequest implements keycard.GrantStore.
func (s *GrantStore) DeletePushedRequest(ctx context.Context, id string) error {
	if !validText(id) {
		return nil
	}
	_, err := s.db.pool.Exec(ctx, `DELETE FROM pushed_requests WHERE id = $1`, id)
	return wrap("delete pushed request", err)
}

// UseOnce implements keycard.GrantStore: one upsert, which replaces only
// an expired marker; of concurrent ones, the row lock lets one insert and
// the others find its live marker.
func (s *GrantStore) UseOnce(ctx context.Context, key string, at, expiresAt time.Time) (bool, error) {
	if key == "" || len(key) > keycard.MaxUseOnceKeyLen || !validText(key) || !expiresAt.After(at) {
		return false, &keycard.Error{Code: keycard.EINVALID, Message: "A single-use marker needs a key of 1 to 256 bytes and an expiry after its time."}
	}
	tag, err := s.db.pool.Exec(ctx, `INSERT INTO used_once (key, expires_at) VALUES ($1, $2)
		ON CONFLICT (key) DO UPDATE SET expires_at = EXCLUDED.expires_at WHERE used_once.expires_at <= $3`,
		key, expiresAt, at)
	if err != nil {
		return false, wrap("use once", err)
	}
	return tag.RowsAffected() == 1, nil
}

// PruneGrants implements keycard.GrantStore: one statement, so one round
// trip and all or nothing.
func (s *GrantStore) PruneGrants(ctx context.Context, before time.Time) (int64, error) {
	var n int64
	err := s.db.pool.QueryRow(ctx, `WITH
			a AS (DELETE FROM auth_codes WHERE expires_at < $1 RETURNING 1),
			s AS (DELETE FROM used_auth_codes WHERE expires_at < $1 RETURNING 1),
			d AS (DELETE FROM device_codes WHERE expires_at < $1 RETURNING 1),
			p AS (DELETE FROM pushed_requests WHERE expires_at < $1 RETURNING 1),
			u AS (DELETE FROM used_once WHERE expires_at < $1 RETURNING 1)
		SELECT (SELECT count(*) FROM a) + (SELECT count(*) FROM s) + (SELECT count(*) FROM d) + (SELECT count(*) FROM p) + (SELECT count(*) FROM u)`, before).Scan(&n)
	return n, wrap("prune grants", err)
}

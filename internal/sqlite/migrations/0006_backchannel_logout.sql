-- Keycard schema, version 6: the outbox of back-channel logout (OpenID
-- Connect Back-Channel Logout 1.0; keycard.LogoutStore). A trigger owes a
-- delivery for every grant session that is revoked while its client has a
-- back-channel logout URI, in the revoking transaction, so that no way of
-- ending a session, by any code path, the command line or by hand, can
-- forget one (docs/decisions/backchannel-logout.md). A delivery keeps what
-- the logout token needs: the session may be pruned, or deleted with its
-- user, before the token is sent.
--
-- session_id identifies a delivery: a grant session has one client and
-- ends once. There is no foreign key to the client: a delivery of a client
-- deleted since is given up when claimed, and deleting a client must not
-- wait on the lock a delivery's insertion takes.

CREATE TABLE logout_deliveries (
	session_id      TEXT PRIMARY KEY,
	client_id       TEXT NOT NULL,
	user_id         TEXT NOT NULL,
	sid             TEXT NOT NULL, -- the grant session's parent: the ID tokens' sid
	reason          TEXT NOT NULL,
	ended_at        INTEGER NOT NULL,
	state           TEXT NOT NULL DEFAULT 'pending' CHECK (state IN ('pending', 'delivered', 'failed')),
	attempts        INTEGER NOT NULL DEFAULT 0,
	next_attempt_at INTEGER NOT NULL, -- due, or the end of the running attempt's lease
	last_error      TEXT NOT NULL DEFAULT '',
	updated_at      INTEGER NOT NULL
) STRICT, WITHOUT ROWID;

CREATE INDEX logout_deliveries_due ON logout_deliveries (next_attempt_at) WHERE state = 'pending';
CREATE INDEX logout_deliveries_ended ON logout_deliveries (ended_at, session_id);

CREATE TRIGGER sessions_backchannel_logout AFTER UPDATE OF revoked_at ON sessions
WHEN OLD.revoked_at IS NULL AND NEW.revoked_at IS NOT NULL AND NEW.parent_id IS NOT NULL AND NEW.client_id <> ''
BEGIN
	INSERT OR IGNORE INTO logout_deliveries (session_id, client_id, user_id, sid, reason, ended_at, next_attempt_at, updated_at)
	SELECT NEW.id, NEW.client_id, NEW.user_id, NEW.parent_id, NEW.revoke_reason, NEW.revoked_at, NEW.revoked_at, NEW.revoked_at
	FROM clients
	WHERE id = NEW.client_id AND COALESCE(json_extract(oauth, '$.backchannel_logout_uri'), '') <> '';
END;

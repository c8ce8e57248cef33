-- Keycard schema, version 6: single-use markers (keycard.GrantStore.UseOnce).
-- A client that authenticates with a signed assertion (private_key_jwt,
-- RFC 7523) names each assertion with a jti that may be used once: its
-- marker is kept until the assertion expires, so that a replay to any
-- process on the database is refused, and pruned after.

CREATE TABLE used_once (
	key        TEXT PRIMARY KEY,
	expires_at INTEGER NOT NULL
) STRICT, WITHOUT ROWID;

CREATE INDEX used_once_expires_at ON used_once (expires_at);

-- Keycard schema, version 1. Times are INTEGER microseconds since the Unix
-- epoch (UTC), NULL where the domain type has a zero time; durations are
-- INTEGER microseconds.

CREATE TABLE users (
	id                  TEXT PRIMARY KEY,
	username            TEXT NOT NULL,
	username_normalized TEXT NOT NULL UNIQUE,
	password_hash       TEXT NOT NULL,
	roles               TEXT NOT NULL DEFAULT '[]', -- JSON array of strings
	disabled            INTEGER NOT NULL DEFAULT 0,
	created_at          INTEGER NOT NULL,
	updated_at          INTEGER NOT NULL,
	password_changed_at INTEGER NOT NULL
) STRICT;

CREATE TABLE sessions (
	id            TEXT PRIMARY KEY,
	user_id       TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
	created_at    INTEGER NOT NULL,
	last_used_at  INTEGER NOT NULL,
	user_agent    TEXT NOT NULL DEFAULT '',
	client_addr   TEXT NOT NULL DEFAULT '',
	idle_timeout  INTEGER NOT NULL,
	expires_at    INTEGER NOT NULL,
	revoked_at    INTEGER,
	revoke_reason TEXT NOT NULL DEFAULT ''
) STRICT, WITHOUT ROWID;

CREATE INDEX sessions_user ON sessions (user_id, created_at);

CREATE TABLE refresh_tokens (
	id               TEXT PRIMARY KEY,
	session_id       TEXT NOT NULL REFERENCES sessions (id) ON DELETE CASCADE,
	secret_hash      BLOB NOT NULL,
	created_at       INTEGER NOT NULL,
	rotated_at       INTEGER,
	successor_id     TEXT,
	successor_sealed BLOB
) STRICT, WITHOUT ROWID;

CREATE INDEX refresh_tokens_session ON refresh_tokens (session_id);
-- A session never has two live refresh tokens.
CREATE UNIQUE INDEX refresh_tokens_one_live ON refresh_tokens (session_id) WHERE rotated_at IS NULL;

CREATE TABLE signing_keys (
	kid            TEXT PRIMARY KEY,
	alg            TEXT NOT NULL,
	state          TEXT NOT NULL CHECK (state IN ('next', 'active', 'retired')),
	private_sealed BLOB NOT NULL,
	public_jwk     BLOB,
	created_at     INTEGER NOT NULL,
	activates_at   INTEGER,
	retired_at     INTEGER,
	remove_after   INTEGER
) STRICT;

-- At most one key signs.
CREATE UNIQUE INDEX signing_keys_one_active ON signing_keys (state) WHERE state = 'active';

CREATE TABLE revocations (
	seq   INTEGER PRIMARY KEY AUTOINCREMENT,
	kind  TEXT NOT NULL,
	value TEXT NOT NULL,
	at    INTEGER NOT NULL
) STRICT;

CREATE INDEX revocations_at ON revocations (at);

CREATE TABLE audit_events (
	id          INTEGER PRIMARY KEY AUTOINCREMENT,
	time        INTEGER NOT NULL,
	type        TEXT NOT NULL,
	actor       TEXT NOT NULL DEFAULT '',
	subject     TEXT NOT NULL DEFAULT '',
	client_addr TEXT NOT NULL DEFAULT '',
	user_agent  TEXT NOT NULL DEFAULT '',
	detail      TEXT NOT NULL DEFAULT '{}'
) STRICT;

CREATE INDEX audit_events_subject ON audit_events (subject, id);
CREATE INDEX audit_events_type ON audit_events (type, id);

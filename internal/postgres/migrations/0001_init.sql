-- Keycard schema for PostgreSQL, version 1: the same tables as the SQLite
-- schema at its version 3. Instants are timestamptz (microsecond
-- precision, like the SQLite INTEGER microseconds), NULL where the domain
-- type has a zero time; durations are BIGINT microseconds. Identifiers and
-- usernames use the "C" collation, so that ordering and paging compare
-- bytes, as SQLite does, whatever the database's default collation.

CREATE TABLE users (
	id                  TEXT COLLATE "C" PRIMARY KEY,
	username            TEXT NOT NULL,
	username_normalized TEXT COLLATE "C" NOT NULL,
	password_hash       TEXT NOT NULL,
	roles               TEXT[] NOT NULL DEFAULT '{}',
	disabled            BOOLEAN NOT NULL DEFAULT false,
	created_at          TIMESTAMPTZ NOT NULL,
	updated_at          TIMESTAMPTZ NOT NULL,
	password_changed_at TIMESTAMPTZ NOT NULL,
	CONSTRAINT users_username_normalized_key UNIQUE (username_normalized)
);

CREATE TABLE sessions (
	id            TEXT COLLATE "C" PRIMARY KEY,
	user_id       TEXT COLLATE "C" NOT NULL REFERENCES users (id) ON DELETE CASCADE,
	created_at    TIMESTAMPTZ NOT NULL,
	last_used_at  TIMESTAMPTZ NOT NULL,
	user_agent    TEXT NOT NULL DEFAULT '',
	client_addr   TEXT NOT NULL DEFAULT '',
	idle_timeout  BIGINT NOT NULL, -- microseconds
	expires_at    TIMESTAMPTZ NOT NULL,
	revoked_at    TIMESTAMPTZ,
	revoke_reason TEXT NOT NULL DEFAULT ''
);

CREATE INDEX sessions_user ON sessions (user_id, created_at);

CREATE TABLE refresh_tokens (
	id               TEXT COLLATE "C" PRIMARY KEY,
	session_id       TEXT COLLATE "C" NOT NULL REFERENCES sessions (id) ON DELETE CASCADE,
	secret_hash      BYTEA NOT NULL,
	created_at       TIMESTAMPTZ NOT NULL,
	rotated_at       TIMESTAMPTZ,
	successor_id     TEXT COLLATE "C",
	successor_sealed BYTEA
);

CREATE INDEX refresh_tokens_session ON refresh_tokens (session_id);
-- A session never has two live refresh tokens.
CREATE UNIQUE INDEX refresh_tokens_one_live ON refresh_tokens (session_id) WHERE rotated_at IS NULL;

CREATE TABLE signing_keys (
	kid            TEXT COLLATE "C" PRIMARY KEY,
	alg            TEXT NOT NULL,
	state          TEXT NOT NULL CHECK (state IN ('next', 'active', 'retired')),
	private_sealed BYTEA NOT NULL,
	public_jwk     BYTEA,
	created_at     TIMESTAMPTZ NOT NULL,
	activates_at   TIMESTAMPTZ,
	retired_at     TIMESTAMPTZ,
	remove_after   TIMESTAMPTZ
);

-- At most one key signs.
CREATE UNIQUE INDEX signing_keys_one_active ON signing_keys (state) WHERE state = 'active';

-- The revocation feed. seq is not a serial: it comes from revocation_seq,
-- whose single row every appending transaction updates, so appenders
-- queue on that row lock until the one before commits and sequence numbers
-- become visible in commit order (see internal/postgres/revocation.go).
CREATE TABLE revocations (
	seq        BIGINT PRIMARY KEY,
	kind       TEXT NOT NULL CHECK (kind IN ('session', 'token', 'user', 'all', 'key')),
	value      TEXT COLLATE "C" NOT NULL,
	at         TIMESTAMPTZ NOT NULL,
	expires_at TIMESTAMPTZ NOT NULL
);

CREATE INDEX revocations_kind_value ON revocations (kind, value);
CREATE INDEX revocations_expires_at ON revocations (expires_at);

-- The highest seq ever assigned; one row, never deleted, so pruning the
-- feed never lowers it.
CREATE TABLE revocation_seq (
	one  BOOLEAN PRIMARY KEY DEFAULT true CHECK (one),
	last BIGINT NOT NULL
);

INSERT INTO revocation_seq (last) VALUES (0);

CREATE TABLE audit_events (
	id          BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
	time        TIMESTAMPTZ NOT NULL,
	type        TEXT NOT NULL,
	actor       TEXT NOT NULL DEFAULT '',
	subject     TEXT NOT NULL DEFAULT '',
	client_addr TEXT NOT NULL DEFAULT '',
	user_agent  TEXT NOT NULL DEFAULT '',
	detail      JSON NOT NULL DEFAULT '{}' -- json, not jsonb: kept byte for byte
);

CREATE INDEX audit_events_subject ON audit_events (subject, id);
CREATE INDEX audit_events_type ON audit_events (type, id);
CREATE INDEX audit_events_actor ON audit_events (actor, id);

CREATE TABLE clients (
	id          TEXT COLLATE "C" PRIMARY KEY,
	name        TEXT NOT NULL,
	secret_hash BYTEA NOT NULL, -- SHA-256 of the 256-bit secret
	scopes      TEXT[] NOT NULL DEFAULT '{}',
	audiences   TEXT[] NOT NULL DEFAULT '{}',
	created_at  TIMESTAMPTZ NOT NULL,
	updated_at  TIMESTAMPTZ NOT NULL
);

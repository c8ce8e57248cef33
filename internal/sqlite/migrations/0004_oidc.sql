-- Keycard schema, version 4: OpenID Connect. Clients get their OAuth
-- settings; a session can be a grant session, under the browser session it
-- was granted through; the OAuth flows keep their authorization codes,
-- device codes, consents and pushed requests (docs/decisions/storage.md,
-- "OpenID Connect tables").

-- keycard.OAuthSettings as JSON; '{}' is a service client, as every
-- client registered before this version is. A public client has an empty
-- secret_hash.
ALTER TABLE clients ADD COLUMN oauth TEXT NOT NULL DEFAULT '{}';

-- parent_id has no foreign key: a grant session that is still active
-- outlives the pruning of its parent, and revoking a parent revokes its
-- grant sessions explicitly, with feed entries.
ALTER TABLE sessions ADD COLUMN parent_id TEXT;
ALTER TABLE sessions ADD COLUMN client_id TEXT NOT NULL DEFAULT '';
ALTER TABLE sessions ADD COLUMN scope TEXT NOT NULL DEFAULT '';
ALTER TABLE sessions ADD COLUMN auth_time INTEGER;
ALTER TABLE sessions ADD COLUMN amr TEXT; -- JSON array of strings; NULL for none

CREATE INDEX sessions_parent ON sessions (parent_id) WHERE parent_id IS NOT NULL;
CREATE INDEX sessions_client ON sessions (client_id) WHERE client_id <> '';

-- An authorization code goes with the browser session it was issued in
-- (and so with its user) and with its client.
CREATE TABLE auth_codes (
	id               TEXT PRIMARY KEY,
	secret_hash      BLOB NOT NULL, -- SHA-256 of the code's secret part
	client_id        TEXT NOT NULL REFERENCES clients (id) ON DELETE CASCADE,
	user_id          TEXT NOT NULL,
	session_id       TEXT NOT NULL REFERENCES sessions (id) ON DELETE CASCADE,
	redirect_uri     TEXT NOT NULL,
	code_challenge   TEXT NOT NULL,
	scope            TEXT NOT NULL,
	nonce            TEXT NOT NULL,
	auth_time        INTEGER,
	amr              TEXT, -- JSON array of strings; NULL for none
	created_at       INTEGER NOT NULL,
	expires_at       INTEGER NOT NULL,
	redeemed_at      INTEGER,
	grant_session_id TEXT
) STRICT, WITHOUT ROWID;

CREATE INDEX auth_codes_session ON auth_codes (session_id);
CREATE INDEX auth_codes_expires_at ON auth_codes (expires_at);

-- A device code goes with its client and, once approved, with the browser
-- session that approved it. user_code is unique: CreateDeviceCode deletes
-- an expired code that holds the same user code.
CREATE TABLE device_codes (
	id               TEXT PRIMARY KEY,
	secret_hash      BLOB NOT NULL,
	user_code        TEXT NOT NULL,
	client_id        TEXT NOT NULL REFERENCES clients (id) ON DELETE CASCADE,
	scope            TEXT NOT NULL,
	state            TEXT NOT NULL CHECK (state IN ('pending', 'approved', 'denied')),
	poll_interval    INTEGER NOT NULL, -- microseconds
	created_at       INTEGER NOT NULL,
	expires_at       INTEGER NOT NULL,
	last_polled_at   INTEGER,
	user_id          TEXT,
	session_id       TEXT REFERENCES sessions (id) ON DELETE CASCADE,
	auth_time        INTEGER,
	amr              TEXT,
	redeemed_at      INTEGER,
	grant_session_id TEXT
) STRICT, WITHOUT ROWID;

CREATE UNIQUE INDEX device_codes_user_code ON device_codes (user_code);
CREATE INDEX device_codes_session ON device_codes (session_id) WHERE session_id IS NOT NULL;
CREATE INDEX device_codes_expires_at ON device_codes (expires_at);

CREATE TABLE consents (
	user_id    TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
	client_id  TEXT NOT NULL REFERENCES clients (id) ON DELETE CASCADE,
	scopes     TEXT NOT NULL DEFAULT '[]', -- JSON array of strings
	created_at INTEGER NOT NULL,
	updated_at INTEGER NOT NULL,
	PRIMARY KEY (user_id, client_id)
) STRICT, WITHOUT ROWID;

CREATE INDEX consents_client ON consents (client_id);

CREATE TABLE pushed_requests (
	id         TEXT PRIMARY KEY,
	client_id  TEXT NOT NULL REFERENCES clients (id) ON DELETE CASCADE,
	params     BLOB NOT NULL, -- a JSON object, kept byte for byte
	created_at INTEGER NOT NULL,
	expires_at INTEGER NOT NULL
) STRICT, WITHOUT ROWID;

CREATE INDEX pushed_requests_expires_at ON pushed_requests (expires_at);

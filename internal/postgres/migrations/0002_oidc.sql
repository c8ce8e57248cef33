-- Keycard schema for PostgreSQL, version 2: OpenID Connect, as SQLite's
-- version 4. Clients get their OAuth settings; a session can be a grant
-- session, under the browser session it was granted through; the OAuth
-- flows keep their authorization codes, device codes, consents and pushed
-- requests (docs/decisions/storage.md, "OpenID Connect tables").

-- keycard.OAuthSettings; '{}' is a service client, as every client
-- registered before this version is. json, not jsonb: the client's JWKS
-- comes back byte for byte. A public client has an empty secret_hash.
ALTER TABLE clients ADD COLUMN oauth JSON NOT NULL DEFAULT '{}';

-- parent_id has no foreign key: a grant session that is still active
-- outlives the pruning of its parent, and revoking a parent revokes its
-- grant sessions explicitly, with feed entries. Constant defaults: no
-- table rewrite.
ALTER TABLE sessions
	ADD COLUMN parent_id TEXT COLLATE "C",
	ADD COLUMN client_id TEXT COLLATE "C" NOT NULL DEFAULT '',
	ADD COLUMN scope     TEXT NOT NULL DEFAULT '',
	ADD COLUMN auth_time TIMESTAMPTZ,
	ADD COLUMN amr       TEXT[] NOT NULL DEFAULT '{}';

CREATE INDEX sessions_parent ON sessions (parent_id) WHERE parent_id IS NOT NULL;
CREATE INDEX sessions_client ON sessions (client_id) WHERE client_id <> '';

-- An authorization code goes with the browser session it was issued in
-- (and so with its user) and with its client.
CREATE TABLE auth_codes (
	id               TEXT COLLATE "C" PRIMARY KEY,
	secret_hash      BYTEA NOT NULL, -- SHA-256 of the code's secret part
	client_id        TEXT COLLATE "C" NOT NULL REFERENCES clients (id) ON DELETE CASCADE,
	user_id          TEXT COLLATE "C" NOT NULL,
	session_id       TEXT COLLATE "C" NOT NULL REFERENCES sessions (id) ON DELETE CASCADE,
	redirect_uri     TEXT NOT NULL,
	code_challenge   TEXT NOT NULL,
	scope            TEXT NOT NULL,
	nonce            TEXT NOT NULL,
	auth_time        TIMESTAMPTZ,
	amr              TEXT[] NOT NULL DEFAULT '{}',
	created_at       TIMESTAMPTZ NOT NULL,
	expires_at       TIMESTAMPTZ NOT NULL,
	redeemed_at      TIMESTAMPTZ,
	grant_session_id TEXT COLLATE "C"
);

CREATE INDEX auth_codes_session ON auth_codes (session_id);
CREATE INDEX auth_codes_expires_at ON auth_codes (expires_at);

-- A device code goes with its client and, once approved, with the browser
-- session that approved it. user_code is unique: CreateDeviceCode deletes
-- an expired code that holds the same user code.
CREATE TABLE device_codes (
	id               TEXT COLLATE "C" PRIMARY KEY,
	secret_hash      BYTEA NOT NULL,
	user_code        TEXT COLLATE "C" NOT NULL,
	client_id        TEXT COLLATE "C" NOT NULL REFERENCES clients (id) ON DELETE CASCADE,
	scope            TEXT NOT NULL,
	state            TEXT NOT NULL CHECK (state IN ('pending', 'approved', 'denied')),
	poll_interval    BIGINT NOT NULL, -- microseconds
	created_at       TIMESTAMPTZ NOT NULL,
	expires_at       TIMESTAMPTZ NOT NULL,
	last_polled_at   TIMESTAMPTZ,
	user_id          TEXT COLLATE "C",
	session_id       TEXT COLLATE "C" REFERENCES sessions (id) ON DELETE CASCADE,
	auth_time        TIMESTAMPTZ,
	amr              TEXT[] NOT NULL DEFAULT '{}',
	redeemed_at      TIMESTAMPTZ,
	grant_session_id TEXT COLLATE "C",
	CONSTRAINT device_codes_user_code_key UNIQUE (user_code)
);

CREATE INDEX device_codes_session ON device_codes (session_id) WHERE session_id IS NOT NULL;
CREATE INDEX device_codes_expires_at ON device_codes (expires_at);

CREATE TABLE consents (
	user_id    TEXT COLLATE "C" NOT NULL REFERENCES users (id) ON DELETE CASCADE,
	client_id  TEXT COLLATE "C" NOT NULL REFERENCES clients (id) ON DELETE CASCADE,
	scopes     TEXT[] NOT NULL DEFAULT '{}',
	created_at TIMESTAMPTZ NOT NULL,
	updated_at TIMESTAMPTZ NOT NULL,
	PRIMARY KEY (user_id, client_id)
);

CREATE INDEX consents_client ON consents (client_id);

CREATE TABLE pushed_requests (
	id         TEXT COLLATE "C" PRIMARY KEY,
	client_id  TEXT COLLATE "C" NOT NULL REFERENCES clients (id) ON DELETE CASCADE,
	params     BYTEA NOT NULL, -- a JSON object, kept byte for byte
	created_at TIMESTAMPTZ NOT NULL,
	expires_at TIMESTAMPTZ NOT NULL
);

CREATE INDEX pushed_requests_expires_at ON pushed_requests (expires_at);

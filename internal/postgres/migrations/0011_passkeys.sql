-- Keycard schema, version 10: passkeys (WebAuthn credentials) and the
-- server-side state of their ceremonies (keycard.PasskeyStore). A
-- credential id is unique among all users; a ceremony's state is taken
-- once (deleted as it is read) and pruned when it expires.

CREATE TABLE passkeys (
	id                 TEXT COLLATE "C" PRIMARY KEY,
	user_id            TEXT COLLATE "C" NOT NULL REFERENCES users (id) ON DELETE CASCADE,
	credential_id      BYTEA NOT NULL UNIQUE,
	public_key         BYTEA NOT NULL,
	aaguid             BYTEA,
	sign_count         BIGINT NOT NULL DEFAULT 0,
	transports         TEXT[] NOT NULL DEFAULT '{}',
	attestation_format TEXT NOT NULL DEFAULT '',
	backup_eligible    BOOLEAN NOT NULL DEFAULT false,
	backup_state       BOOLEAN NOT NULL DEFAULT false,
	user_verified      BOOLEAN NOT NULL DEFAULT false,
	name               TEXT NOT NULL,
	created_at         TIMESTAMPTZ NOT NULL,
	last_used_at       TIMESTAMPTZ
);

CREATE INDEX passkeys_user ON passkeys (user_id);

CREATE TABLE passkey_challenges (
	id         TEXT COLLATE "C" PRIMARY KEY,
	purpose    TEXT NOT NULL CHECK (purpose IN ('register', 'login', 'second_factor')),
	user_id    TEXT COLLATE "C",
	binding    TEXT NOT NULL DEFAULT '',
	state      BYTEA NOT NULL,
	created_at TIMESTAMPTZ NOT NULL,
	expires_at TIMESTAMPTZ NOT NULL
);

CREATE INDEX passkey_challenges_expires_at ON passkey_challenges (expires_at);

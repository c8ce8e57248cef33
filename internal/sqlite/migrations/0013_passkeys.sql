-- Keycard schema, version 12: passkeys (WebAuthn credentials) and the
-- server-side state of their ceremonies (keycard.PasskeyStore). A
-- credential id is unique among all users; a ceremony's state is taken
-- once (deleted as it is read) and pruned when it expires.

CREATE TABLE passkeys (
	id                 TEXT PRIMARY KEY,
	user_id            TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
	credential_id      BLOB NOT NULL UNIQUE,
	public_key         BLOB NOT NULL,
	aaguid             BLOB,
	sign_count         INTEGER NOT NULL DEFAULT 0,
	transports         TEXT,
	attestation_format TEXT NOT NULL DEFAULT '',
	backup_eligible    INTEGER NOT NULL DEFAULT 0,
	backup_state       INTEGER NOT NULL DEFAULT 0,
	user_verified      INTEGER NOT NULL DEFAULT 0,
	name               TEXT NOT NULL,
	created_at         INTEGER NOT NULL,
	last_used_at       INTEGER
) STRICT;

CREATE INDEX passkeys_user ON passkeys (user_id);

CREATE TABLE passkey_challenges (
	id         TEXT PRIMARY KEY,
	purpose    TEXT NOT NULL CHECK (purpose IN ('register', 'login', 'second_factor')),
	user_id    TEXT,
	binding    TEXT NOT NULL DEFAULT '',
	state      BLOB NOT NULL,
	created_at INTEGER NOT NULL,
	expires_at INTEGER NOT NULL
) STRICT;

CREATE INDEX passkey_challenges_expires_at ON passkey_challenges (expires_at);

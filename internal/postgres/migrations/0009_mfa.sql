-- Keycard schema, version 9: users' second factors (keycard.MFAStore).
-- A TOTP credential's secret is stored sealed under the master key; it is
-- pending (confirmed_at NULL) until the user confirms it with a code, and
-- last_step is the last time step whose code was accepted (RFC 6238
-- section 5.2: a code is accepted at most once). Recovery codes are kept
-- as hashes only.

CREATE TABLE totp_credentials (
	user_id       TEXT COLLATE "C" PRIMARY KEY REFERENCES users (id) ON DELETE CASCADE,
	secret_sealed BYTEA NOT NULL,
	created_at    TIMESTAMPTZ NOT NULL,
	confirmed_at  TIMESTAMPTZ,
	last_step     BIGINT NOT NULL DEFAULT -1
);

CREATE TABLE recovery_codes (
	user_id    TEXT COLLATE "C" NOT NULL REFERENCES users (id) ON DELETE CASCADE,
	code_hash  BYTEA NOT NULL,
	created_at TIMESTAMPTZ NOT NULL,
	used_at    TIMESTAMPTZ,
	PRIMARY KEY (user_id, code_hash)
);

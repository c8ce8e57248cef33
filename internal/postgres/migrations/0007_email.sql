-- Keycard schema, version 7: users' email addresses and the single-use
-- links sent to them (keycard.EmailStore). An address is kept in its
-- normalized form, unique among users; NULL when a user has none. A link
-- is "<id>.<secret>": only the SHA-256 of the secret is stored.

ALTER TABLE users ADD COLUMN email TEXT COLLATE "C";
ALTER TABLE users ADD COLUMN email_verified BOOLEAN NOT NULL DEFAULT false;
ALTER TABLE users ADD CONSTRAINT users_email_key UNIQUE (email);

CREATE TABLE email_tokens (
	id                  TEXT COLLATE "C" PRIMARY KEY,
	secret_hash         BYTEA NOT NULL,
	purpose             TEXT NOT NULL CHECK (purpose IN ('verify_email', 'reset_password')),
	user_id             TEXT COLLATE "C" NOT NULL REFERENCES users (id) ON DELETE CASCADE,
	email               TEXT NOT NULL,
	password_changed_at TIMESTAMPTZ,
	created_at          TIMESTAMPTZ NOT NULL,
	expires_at          TIMESTAMPTZ NOT NULL,
	used_at             TIMESTAMPTZ
);

CREATE INDEX email_tokens_user ON email_tokens (user_id);
CREATE INDEX email_tokens_expires_at ON email_tokens (expires_at);

-- Keycard schema, version 9: users' email addresses and the single-use
-- links sent to them (keycard.EmailStore). An address is kept in its
-- normalized form, unique among users; NULL when a user has none. A link
-- is "<id>.<secret>": only the SHA-256 of the secret is stored.

ALTER TABLE users ADD COLUMN email TEXT;
ALTER TABLE users ADD COLUMN email_verified INTEGER NOT NULL DEFAULT 0;
CREATE UNIQUE INDEX users_email ON users (email) WHERE email IS NOT NULL;

CREATE TABLE email_tokens (
	id                  TEXT PRIMARY KEY,
	secret_hash         BLOB NOT NULL,
	purpose             TEXT NOT NULL CHECK (purpose IN ('verify_email', 'reset_password')),
	user_id             TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
	email               TEXT NOT NULL,
	password_changed_at INTEGER,
	created_at          INTEGER NOT NULL,
	expires_at          INTEGER NOT NULL,
	used_at             INTEGER
) STRICT;

CREATE INDEX email_tokens_user ON email_tokens (user_id);
CREATE INDEX email_tokens_expires_at ON email_tokens (expires_at);

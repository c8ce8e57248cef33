-- Keycard schema, version 11: sign-in at upstream identity providers
-- (docs/federation.md). A linked identity is a user's account at a
-- provider, by the provider's name in the configuration and its subject;
-- a session remembers the provider it signed in through, the subject and
-- the provider's session id, which a back-channel logout names.

CREATE TABLE federated_identities (
	provider     TEXT NOT NULL,
	subject      TEXT NOT NULL,
	user_id      TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
	email        TEXT NOT NULL DEFAULT '',
	created_at   INTEGER NOT NULL,
	last_used_at INTEGER NOT NULL,
	PRIMARY KEY (provider, subject)
) STRICT;

CREATE INDEX federated_identities_user ON federated_identities (user_id);

ALTER TABLE sessions ADD COLUMN idp TEXT NOT NULL DEFAULT '';
ALTER TABLE sessions ADD COLUMN idp_subject TEXT NOT NULL DEFAULT '';
ALTER TABLE sessions ADD COLUMN idp_sid TEXT NOT NULL DEFAULT '';

CREATE INDEX sessions_idp ON sessions (idp, idp_subject) WHERE idp <> '';

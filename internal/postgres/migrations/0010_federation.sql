-- Keycard schema, version 9: sign-in at upstream identity providers
-- (docs/federation.md). A linked identity is a user's account at a
-- provider, by the provider's name in the configuration and its subject;
-- a session remembers the provider it signed in through, the subject and
-- the provider's session id, which a back-channel logout names.

CREATE TABLE federated_identities (
	provider     TEXT COLLATE "C" NOT NULL,
	subject      TEXT COLLATE "C" NOT NULL,
	user_id      TEXT COLLATE "C" NOT NULL REFERENCES users (id) ON DELETE CASCADE,
	email        TEXT NOT NULL DEFAULT '',
	created_at   TIMESTAMPTZ NOT NULL,
	last_used_at TIMESTAMPTZ NOT NULL,
	PRIMARY KEY (provider, subject)
);

CREATE INDEX federated_identities_user ON federated_identities (user_id);

ALTER TABLE sessions ADD COLUMN idp TEXT COLLATE "C" NOT NULL DEFAULT '';
ALTER TABLE sessions ADD COLUMN idp_subject TEXT COLLATE "C" NOT NULL DEFAULT '';
ALTER TABLE sessions ADD COLUMN idp_sid TEXT COLLATE "C" NOT NULL DEFAULT '';

CREATE INDEX sessions_idp ON sessions (idp, idp_subject) WHERE idp <> '';

-- Keycard schema, version 2: service clients, and a lookup of revocation
-- entries by value (is this jti revoked?) for introspection.

CREATE TABLE clients (
	id          TEXT PRIMARY KEY,
	name        TEXT NOT NULL,
	secret_hash BLOB NOT NULL, -- SHA-256 of the 256-bit secret
	scopes      TEXT NOT NULL DEFAULT '[]', -- JSON array of strings
	audiences   TEXT NOT NULL DEFAULT '[]', -- JSON array of strings
	created_at  INTEGER NOT NULL,
	updated_at  INTEGER NOT NULL
) STRICT, WITHOUT ROWID;

CREATE INDEX revocations_kind_value ON revocations (kind, value);

-- Keycard schema, version 3: each revocation entry says when it can no
-- longer match a valid token (its time plus the access-token lifetime plus
-- the leeway), and pruning goes by that. Entries written before this
-- version did not record it; they keep a generous day, since the lifetime
-- they were written under is not known.

ALTER TABLE revocations ADD COLUMN expires_at INTEGER NOT NULL DEFAULT 0;

UPDATE revocations SET expires_at = at + 86400000000;

CREATE INDEX revocations_expires_at ON revocations (expires_at);

-- Pruning no longer goes by at.
DROP INDEX revocations_at;

-- Keycard schema: the single use of sealed authorization codes
-- (docs/decisions/sealed-codes.md). A sealed code is not stored when it is
-- issued; its first redemption inserts its id here, with the grant session
-- it created, in the redemption's transaction: the primary key lets one
-- redemption in, and a second use finds the row and revokes that session
-- (RFC 6749 section 4.1.2). The key leads with the code's expiry (the same
-- for every use of one code, which is sealed in it), so that pruning is a
-- range of the primary key and a redemption writes one b-tree.

CREATE TABLE used_auth_codes (
	expires_at       INTEGER NOT NULL, -- microseconds, the code's expiry
	id               TEXT NOT NULL,
	grant_session_id TEXT NOT NULL,
	PRIMARY KEY (expires_at, id)
) STRICT, WITHOUT ROWID;

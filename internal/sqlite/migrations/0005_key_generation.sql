-- Keycard schema, version 5: the generation of the signing keys, a number
-- every change to signing_keys increases in the change's own transaction
-- (keycard.KeyStore.KeyGeneration). A server reads it with the reads it
-- makes anyway (a refresh token's rotation, a client's lookup) and, when it
-- differs from the one its copy of the keys was read at, reads the keys
-- again before it signs: an emergency key revocation by another process
-- takes effect at its next token. Triggers keep it, so no change to the
-- keys, by any code path or by hand, can forget it.

CREATE TABLE key_generation (
	id         INTEGER PRIMARY KEY CHECK (id = 1),
	generation INTEGER NOT NULL
) STRICT;

INSERT INTO key_generation (id, generation) VALUES (1, 1);

CREATE TRIGGER signing_keys_inserted AFTER INSERT ON signing_keys
BEGIN
	UPDATE key_generation SET generation = generation + 1 WHERE id = 1;
END;

CREATE TRIGGER signing_keys_updated AFTER UPDATE ON signing_keys
BEGIN
	UPDATE key_generation SET generation = generation + 1 WHERE id = 1;
END;

CREATE TRIGGER signing_keys_deleted AFTER DELETE ON signing_keys
BEGIN
	UPDATE key_generation SET generation = generation + 1 WHERE id = 1;
END;

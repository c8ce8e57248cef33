-- Keycard schema, version 3: the generation of the signing keys, a number
-- every change to signing_keys increases in the change's own transaction
-- (keycard.KeyStore.KeyGeneration). An instance reads it with the reads it
-- makes anyway (a refresh token's rotation, a client's lookup) and, when it
-- differs from the one its copy of the keys was read at, reads the keys
-- again before it signs: an emergency key revocation on any instance or by
-- the CLI takes effect at every instance's next token. A row-level trigger
-- keeps it, so no change to the keys, by any code path or by hand, can
-- forget it, and a statement that changes no key (the periodic deletion of
-- expired keys, most of the time) does not move it. Key changes queue on
-- the row's lock; they are rare.

CREATE TABLE key_generation (
	id         INTEGER PRIMARY KEY CHECK (id = 1),
	generation BIGINT NOT NULL
);

INSERT INTO key_generation (id, generation) VALUES (1, 1);

CREATE FUNCTION keycard_key_generation_bump() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
	UPDATE key_generation SET generation = generation + 1 WHERE id = 1;
	RETURN NULL;
END
$$;

CREATE TRIGGER signing_keys_changed AFTER INSERT OR UPDATE OR DELETE ON signing_keys
	FOR EACH ROW EXECUTE FUNCTION keycard_key_generation_bump();

-- Keycard schema: upstream identity providers added at run time through
-- the admin API (docs/federation.md). config is the provider's
-- configuration as JSON without its client secret; sealed_secret is the
-- client secret sealed under the master key (NULL for a public
-- registration).

CREATE TABLE upstream_providers (
	name          TEXT PRIMARY KEY,
	config        TEXT NOT NULL,
	sealed_secret BLOB,
	created_at    INTEGER NOT NULL,
	updated_at    INTEGER NOT NULL
) STRICT;

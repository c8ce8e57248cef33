-- Keycard schema, version 10: DPoP key bindings (RFC 9449). A public
-- client's grant session remembers the thumbprint of the DPoP key its
-- refresh token is bound to, and an authorization code the dpop_jkt of
-- its request. Empty means unbound.

ALTER TABLE sessions ADD COLUMN dpop_jkt TEXT NOT NULL DEFAULT '';
ALTER TABLE auth_codes ADD COLUMN dpop_jkt TEXT NOT NULL DEFAULT '';

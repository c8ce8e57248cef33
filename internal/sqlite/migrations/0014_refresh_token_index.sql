-- Keycard schema, version 11: one index on refresh_tokens (session_id)
-- instead of two. refresh_tokens_session served lookups by session and
-- refresh_tokens_one_live (partial, UNIQUE) kept a session to one live
-- token; every rotation wrote a leaf page of each. The expression column
-- is 1 for the live token and NULL for rotated ones, and a UNIQUE index
-- counts NULLs as distinct, so this one index still refuses a second live
-- token of a session and still serves WHERE session_id = ? (the foreign
-- key's cascade, revoking a session), with one page written per rotation
-- fewer.

CREATE UNIQUE INDEX refresh_tokens_session_live ON refresh_tokens (session_id, (CASE WHEN rotated_at IS NULL THEN 1 END));
DROP INDEX refresh_tokens_session;
DROP INDEX refresh_tokens_one_live;

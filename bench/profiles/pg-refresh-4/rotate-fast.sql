WITH s AS MATERIALIZED (
		SELECT s.id, s.user_id, s.parent_id, s.client_id, s.scope, s.created_at, s.auth_time, s.amr, s.last_used_at, s.user_agent, s.client_addr, s.idle_timeout, s.expires_at, s.revoked_at, s.revoke_reason, s.dpop_jkt, s.idp, s.idp_subject, s.idp_sid, u.id AS u_id, u.username AS u_username, u.username_normalized AS u_username_normalized, u.password_hash AS u_password_hash, u.roles AS u_roles, u.disabled AS u_disabled, u.created_at AS u_created_at, u.updated_at AS u_updated_at, u.password_changed_at AS u_password_changed_at, u.email AS u_email, u.email_verified AS u_email_verified FROM sessions s JOIN users u ON u.id = s.user_id
		WHERE s.id = (SELECT session_id FROM refresh_tokens WHERE id = $1)
			AND s.revoked_at IS NULL AND s.expires_at > $3 AND (s.last_used_at + s.idle_timeout * interval '1 microsecond') > $3
			AND ($7::text IS NULL OR s.dpop_jkt = '' OR s.dpop_jkt = $7)
			AND ($8::text IS NULL OR s.client_id = '' OR s.client_id = $8)
		FOR UPDATE OF s SKIP LOCKED),
	t AS (UPDATE refresh_tokens SET rotated_at = $3, successor_id = $4, successor_sealed = $5
		WHERE id = $1 AND secret_hash = $2 AND rotated_at IS NULL AND session_id = (SELECT id FROM s)
		RETURNING id, session_id, secret_hash, created_at),
	n AS (INSERT INTO refresh_tokens (id, session_id, secret_hash, created_at) SELECT $4, session_id, $6, $3 FROM t),
	l AS (UPDATE sessions SET last_used_at = $3 WHERE id = (SELECT session_id FROM t)),
	a AS (INSERT INTO audit_events (time, type, actor, subject, client_addr, user_agent, detail)
		SELECT $9::timestamptz, $10::text, COALESCE(NULLIF($11::text, ''), s.user_id), COALESCE(NULLIF($12::text, ''), s.user_id),
			$13::text, $14::text, $15::text::json FROM t, s)
	SELECT s.*, t.id, t.session_id, t.secret_hash, t.created_at, COALESCE((SELECT generation FROM key_generation WHERE id = 1), 0) FROM t, s
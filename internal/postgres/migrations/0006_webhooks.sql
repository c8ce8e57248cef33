-- Keycard schema, version 6: webhooks (keycard.WebhookStore). Endpoints
-- registered by an admin, and the outbox of their deliveries. A row-level
-- trigger on the audit log owes a delivery to every endpoint subscribed to
-- an event the moment its audit event is appended, in the same statement,
-- so that a webhook is exactly as durable as the audit log and no code path
-- that audits can forget one (docs/decisions/webhooks.md).
--
-- The audit types that are webhooks, and their webhook types, are listed
-- in the trigger; mfa.enrolled is routed before anything records it (issue
-- 15). A delivery copies what the body needs from the audit event.

CREATE TABLE webhook_endpoints (
	id          TEXT COLLATE "C" PRIMARY KEY,
	url         TEXT NOT NULL,
	secret      TEXT NOT NULL, -- whsec_…: an HMAC key, needed in clear to sign
	events      TEXT[] NOT NULL DEFAULT '{}', -- event types; empty is all
	description TEXT NOT NULL DEFAULT '',
	created_at  TIMESTAMPTZ NOT NULL
);

CREATE TABLE webhook_deliveries (
	id                BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
	endpoint_id       TEXT COLLATE "C" NOT NULL REFERENCES webhook_endpoints (id) ON DELETE CASCADE,
	event_id          BIGINT NOT NULL, -- the audit event's id: the message id
	event_type        TEXT NOT NULL,
	audit_type        TEXT NOT NULL,
	subject           TEXT NOT NULL,
	detail            JSON NOT NULL,
	event_time        TIMESTAMPTZ NOT NULL,
	state             TEXT NOT NULL DEFAULT 'pending' CHECK (state IN ('pending', 'delivered', 'failed')),
	attempts          INTEGER NOT NULL DEFAULT 0,
	replayed_attempts INTEGER NOT NULL DEFAULT 0,
	next_attempt_at   TIMESTAMPTZ NOT NULL, -- due, or the end of the running attempt's lease
	last_error        TEXT NOT NULL DEFAULT '',
	updated_at        TIMESTAMPTZ NOT NULL,
	UNIQUE (event_id, endpoint_id)
);

CREATE INDEX webhook_deliveries_due ON webhook_deliveries (next_attempt_at) WHERE state = 'pending';
CREATE INDEX webhook_deliveries_endpoint ON webhook_deliveries (endpoint_id, id);

CREATE FUNCTION keycard_webhooks_owed() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
	event_type TEXT := CASE NEW.type
		WHEN 'login.succeeded' THEN 'user.signed_in'
		WHEN 'refresh.reuse_detected' THEN 'session.revoked'
		ELSE NEW.type END;
BEGIN
	INSERT INTO webhook_deliveries (endpoint_id, event_id, event_type, audit_type, subject, detail, event_time, next_attempt_at, updated_at)
	SELECT e.id, NEW.id, event_type, NEW.type, NEW.subject, NEW.detail, NEW.time, NEW.time, NEW.time
	FROM webhook_endpoints e
	WHERE cardinality(e.events) = 0 OR event_type = ANY (e.events)
	ON CONFLICT (event_id, endpoint_id) DO NOTHING;
	RETURN NULL;
END
$$;

CREATE TRIGGER audit_events_webhooks AFTER INSERT ON audit_events
	FOR EACH ROW
	WHEN (NEW.type IN ('user.created', 'login.succeeded', 'user.password_changed', 'session.revoked', 'refresh.reuse_detected', 'mfa.enrolled'))
	EXECUTE FUNCTION keycard_webhooks_owed();

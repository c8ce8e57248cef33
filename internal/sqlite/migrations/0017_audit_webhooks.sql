-- Keycard schema: an audit event's webhook deliveries are queued by the
-- statement that appends the event (insertAudit in audit.go), no longer by
-- the trigger audit_events_webhooks. The trigger cost every audit insert
-- (one per refresh) about half of the insert's own work, for events that
-- owe no webhook: its WHEN clause's IN list of six strings built a
-- temporary b-tree on every run, and a table with a trigger makes each
-- insert keep a statement journal of the pages it changes. Dropping a
-- trigger changes the schema only; no row is read or written.
-- insertAudit queues exactly what the trigger did, in the same
-- transaction as the event.

DROP TRIGGER audit_events_webhooks;

-- payments upgrade from 0.1 to 0.2: unique constraints that Citus can keep
-- (each holds its table's distribution column), then the citus module
-- (sql/modules/citus.sql, appended by the Makefile).  Nothing else changed.

\echo Use "ALTER EXTENSION payments UPDATE TO '0.2'" to load this file. \quit

-- saga_events: its index on (saga_id, id) becomes the primary key
ALTER TABLE payments.saga_events DROP CONSTRAINT saga_events_pkey;
DROP INDEX payments.saga_events_saga_id_idx;
ALTER TABLE payments.saga_events ADD PRIMARY KEY (saga_id, id);

-- webhook_inbox: (endpoint, event_id), which deduplicates, becomes the
-- primary key; id, unique by its sequence, keeps an index for lookups
ALTER TABLE payments.webhook_inbox DROP CONSTRAINT webhook_inbox_pkey;
ALTER TABLE payments.webhook_inbox DROP CONSTRAINT webhook_inbox_endpoint_event_id_key;
ALTER TABLE payments.webhook_inbox ADD PRIMARY KEY (endpoint, event_id);
CREATE INDEX webhook_inbox_id_idx ON payments.webhook_inbox (id);


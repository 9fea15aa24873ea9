-- payments install script, module citus: spreading the tables over a Citus
-- cluster.  Nothing here runs unless called; without Citus the function
-- says so.  The layout is the design's ("Scale-out on Citus"):
--
--   reference tables (a copy on every node): webhook_endpoints,
--     webhook_secrets, fraud_rules, fraud_lists, status_map;
--   distributed by a key every unique constraint contains:
--     idempotency_keys by key; webhook_inbox by event_id;
--     webhook_rejections and fraud_evaluations by id; fraud_velocity by
--     key_value; sagas by id with saga_events by saga_id, colocated;
--     ledger with gateway_report by transaction_id, colocated;
--   left on the coordinator: reconciliation_runs and
--     reconciliation_discrepancies, written by the background worker that
--     runs there only.
--
-- The key-addressed functions become distributed functions colocated with
-- their table, so that Citus can run a call on the node that holds its key.

CREATE FUNCTION payments.citus_distribute()
RETURNS TABLE(table_name regclass, kind text, distribution_column text,
              colocation_id integer)
LANGUAGE plpgsql VOLATILE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    t record;
    f record;
    have text;
    held boolean;
    stale regclass[] := '{}';
BEGIN
    IF NOT EXISTS (SELECT 1 FROM pg_catalog.pg_extension WHERE extname = 'citus') THEN
        RAISE EXCEPTION 'Citus is not installed in this database'
            USING ERRCODE = 'object_not_in_prerequisite_state',
                  HINT = 'Add citus to shared_preload_libraries, run CREATE EXTENSION citus and add the worker nodes, then call payments.citus_distribute() on the coordinator.';
    END IF;
    IF NOT pg_catalog.citus_is_coordinator() THEN
        RAISE EXCEPTION 'payments.citus_distribute() must be called on the coordinator'
            USING ERRCODE = 'object_not_in_prerequisite_state';
    END IF;
    -- our triggers (the saga log's append-only guard, the fraud rule
    -- cache's invalidation) must fire on the shards, where rows change
    PERFORM pg_catalog.set_config('citus.enable_unsafe_triggers', 'on', true);
    -- a foreign key between reference tables is added over one connection
    -- per node, which a parallel operation earlier in the transaction
    -- would forbid
    PERFORM pg_catalog.set_config('citus.multi_shard_modify_mode', 'sequential', true);

    -- Citus would turn the secrets and the endpoint they reference into
    -- Citus local tables one at a time, which an extension's table cannot
    -- be: the foreign key goes while they become reference tables, here
    -- and on the workers' copies of the table (which hold no rows: theirs
    -- are in the shards), and comes back between the two reference tables.
    IF NOT EXISTS (SELECT 1 FROM pg_catalog.pg_dist_partition
                   WHERE logicalrelid = 'payments.webhook_secrets'::regclass) THEN
        ALTER TABLE payments.webhook_secrets
            DROP CONSTRAINT IF EXISTS webhook_secrets_endpoint_fkey;
        FOR t IN SELECT * FROM pg_catalog.run_command_on_workers(
            'ALTER TABLE payments.webhook_secrets DROP CONSTRAINT IF EXISTS webhook_secrets_endpoint_fkey')
            WHERE NOT success LOOP
            RAISE EXCEPTION 'could not change payments.webhook_secrets on worker node %:%',
                t.nodename, t.nodeport USING DETAIL = t.result;
        END LOOP;
    END IF;

    FOR t IN SELECT * FROM (VALUES
        (1, 'payments.webhook_endpoints'::regclass, NULL::text, NULL::regclass),
        (2, 'payments.webhook_secrets', NULL, NULL),
        (3, 'payments.fraud_rules', NULL, NULL),
        (4, 'payments.fraud_lists', NULL, NULL),
        (5, 'payments.status_map', NULL, NULL),
        (6, 'payments.idempotency_keys', 'key', NULL),
        (7, 'payments.webhook_inbox', 'event_id', NULL),
        (8, 'payments.webhook_rejections', 'id', NULL),
        (9, 'payments.fraud_evaluations', 'id', NULL),
        (10, 'payments.fraud_velocity', 'key_value', NULL),
        (11, 'payments.sagas', 'id', NULL),
        (12, 'payments.saga_events', 'saga_id', 'payments.sagas'),
        (13, 'payments.ledger', 'transaction_id', NULL),
        (14, 'payments.gateway_report', 'transaction_id', 'payments.ledger'))
        AS layout(n, rel, col, colocate) ORDER BY n
    LOOP
        SELECT coalesce(pg_catalog.column_to_column_name(p.logicalrelid, p.partkey), '')
          INTO have
          FROM pg_catalog.pg_dist_partition p WHERE p.logicalrelid = t.rel;
        IF FOUND THEN
            IF have IS DISTINCT FROM coalesce(t.col, '') THEN
                RAISE EXCEPTION 'table % is already distributed on another column', t.rel
                    USING ERRCODE = 'object_not_in_prerequisite_state',
                          DETAIL = pg_catalog.format('It is distributed by "%s"; payments expects %s.',
                                                     have, coalesce('"' || t.col || '"', 'a reference table')),
                          HINT = 'Undo it with undistribute_table() and call payments.citus_distribute() again.';
            END IF;
            CONTINUE;
        END IF;
        EXECUTE pg_catalog.format('SELECT EXISTS (SELECT 1 FROM %s)', t.rel) INTO held;
        IF held THEN
            stale := stale || t.rel;
        END IF;
        IF t.col IS NULL THEN
            PERFORM pg_catalog.create_reference_table(t.rel);
        ELSE
            PERFORM pg_catalog.create_distributed_table(t.rel, t.col,
                colocate_with => coalesce(t.colocate::text, 'none'));
        END IF;
    END LOOP;
    -- rows the tables held before now live in their shards: drop the
    -- coordinator's stale copies, once every table is distributed
    FOR t IN SELECT unnest(stale) AS rel LOOP
        PERFORM pg_catalog.truncate_local_data_after_distributing_table(t.rel);
    END LOOP;

    IF NOT EXISTS (SELECT 1 FROM pg_catalog.pg_constraint
                   WHERE conrelid = 'payments.webhook_secrets'::regclass
                     AND conname = 'webhook_secrets_endpoint_fkey') THEN
        ALTER TABLE payments.webhook_secrets
            ADD CONSTRAINT webhook_secrets_endpoint_fkey FOREIGN KEY (endpoint)
            REFERENCES payments.webhook_endpoints (name)
            ON DELETE CASCADE ON UPDATE CASCADE;
    END IF;

    -- A row inserted on a worker node (a distributed function call run
    -- there, or a client connected to it) takes its id from that node's
    -- copy of the column's sequence.  Citus gives each node a range of its
    -- own for a distributed table's bigserial, but not for an extension's
    -- tables: the same is done here, node group g getting
    -- [g * 2^48 + 1, (g + 1) * 2^48).  A node added later gets its range
    -- when this function is called again.
    FOR t IN SELECT * FROM pg_catalog.run_command_on_workers($cmd$
        DO $do$
        DECLARE
            g bigint := (SELECT groupid FROM pg_catalog.pg_dist_local_group);
            s text;
        BEGIN
            FOREACH s IN ARRAY ARRAY['webhook_inbox_id_seq', 'webhook_rejections_id_seq',
                                     'fraud_evaluations_id_seq', 'saga_events_id_seq'] LOOP
                IF (SELECT min_value FROM pg_catalog.pg_sequences
                    WHERE schemaname = 'payments' AND sequencename = s) <> (g << 48) + 1 THEN
                    EXECUTE pg_catalog.format(
                        'ALTER SEQUENCE payments.%I MINVALUE %s MAXVALUE %s START %s RESTART',
                        s, (g << 48) + 1, ((g + 1) << 48) - 1, (g << 48) + 1);
                END IF;
            END LOOP;
        END
        $do$
    $cmd$) WHERE NOT success LOOP
        RAISE EXCEPTION 'could not give worker node %:% its range of ids', t.nodename, t.nodeport
            USING DETAIL = t.result;
    END LOOP;

    FOR f IN SELECT * FROM (VALUES
        ('payments.idempotency_begin(text, jsonb, text, interval, interval)'::regprocedure,
         'key', 'payments.idempotency_keys'),
        ('payments.idempotency_checkpoint(text, text, text, uuid)', 'key', 'payments.idempotency_keys'),
        ('payments.idempotency_complete(text, jsonb, text, uuid)', 'key', 'payments.idempotency_keys'),
        ('payments.idempotency_fail(text, jsonb, boolean, text, uuid)', 'key', 'payments.idempotency_keys'),
        ('payments.idempotency_status(text, text)', 'key', 'payments.idempotency_keys'),
        ('payments.saga_next(text)', 'saga_id', 'payments.sagas'),
        ('payments.saga_record(text, text, text, jsonb)', 'saga_id', 'payments.sagas'))
        AS fns(fn, arg, tab)
    LOOP
        PERFORM pg_catalog.create_distributed_function(f.fn, f.arg, colocate_with => f.tab);
    END LOOP;

    RETURN QUERY
        SELECT p.logicalrelid,
               CASE p.partmethod WHEN 'n' THEN 'reference' ELSE 'distributed' END,
               pg_catalog.column_to_column_name(p.logicalrelid, p.partkey),
               p.colocationid
          FROM pg_catalog.pg_dist_partition p
          JOIN pg_catalog.pg_class c ON c.oid = p.logicalrelid
         WHERE c.relnamespace = 'payments'::regnamespace
         ORDER BY 2 DESC, p.logicalrelid::text;
END
$$;

COMMENT ON FUNCTION payments.citus_distribute() IS
    'on a Citus coordinator: distribute the payments tables and functions as the design lays out; idempotent; returns the layout';

REVOKE ALL ON FUNCTION payments.citus_distribute() FROM PUBLIC;

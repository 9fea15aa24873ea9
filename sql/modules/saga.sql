-- payments install script, module saga: durable logs of multi-step
-- checkouts and their compensations.  See src/saga.c.
--
-- The state machine is in C and is the only writer: the functions run with
-- the caller's rights, and the C code runs their SQL as the owner of
-- payments.sagas with search_path pinned (src/stmt.c); ordinary roles have
-- no privilege on the tables, so the log cannot be bypassed.

-- One row per saga.  position is the index (from 0) of the step to run
-- (running) or to compensate (compensating); attempts counts the tries of
-- that action so far.
CREATE TABLE payments.sagas (
    id            text COLLATE pg_catalog."C" PRIMARY KEY,
    name          text NOT NULL,
    state         text NOT NULL CONSTRAINT sagas_state_check
                      CHECK (state IN ('running', 'compensating', 'completed',
                                       'compensated', 'failed_compensation')),
    steps         jsonb NOT NULL,
    context       jsonb NOT NULL DEFAULT '{}',
    position      integer NOT NULL DEFAULT 0,
    attempts      integer NOT NULL DEFAULT 0,
    failed_step   text,
    created_at    timestamptz NOT NULL DEFAULT pg_catalog.now(),
    updated_at    timestamptz NOT NULL DEFAULT pg_catalog.now(),
    claimed_until timestamptz,
    claimed_by    text,
    stale_since   timestamptz
) WITH (fillfactor = 70);

-- The in-flight sagas, for recovery and the worker (which then look at
-- updated_at).  Nothing a step changes is indexed, and pages keep room, so
-- a step's update is a HOT update; only the end of a saga leaves the index.
CREATE INDEX sagas_in_flight_idx ON payments.sagas (created_at)
    WHERE state IN ('running', 'compensating');

COMMENT ON TABLE payments.sagas IS
    'one row per saga: state, steps, context, progress (position, attempts, updated_at) and recovery claim';

-- Append-only: every transition, with its time and detail.  The key leads
-- with saga_id, so that on Citus the events are distributed with their saga
-- (a unique constraint there must contain the distribution column); id is
-- unique by its sequence.
CREATE TABLE payments.saga_events (
    id         bigserial NOT NULL,
    saga_id    text COLLATE pg_catalog."C" NOT NULL
                   REFERENCES payments.sagas ON DELETE CASCADE,
    at         timestamptz NOT NULL DEFAULT pg_catalog.clock_timestamp(),
    event      text NOT NULL,
    step       text,
    attempt    integer,
    from_state text,
    to_state   text NOT NULL,
    detail     jsonb,
    PRIMARY KEY (saga_id, id)
);

COMMENT ON TABLE payments.saga_events IS
    'append-only log of every saga transition: event, step, attempt, states before and after, detail';

CREATE FUNCTION payments.saga_events_append_only() RETURNS trigger
LANGUAGE c
AS 'MODULE_PATHNAME', 'payments_saga_events_append_only';

CREATE TRIGGER saga_events_append_only
    BEFORE UPDATE OR DELETE ON payments.saga_events
    FOR EACH ROW EXECUTE FUNCTION payments.saga_events_append_only();

CREATE FUNCTION payments.saga_start(
    name text, steps jsonb, context jsonb DEFAULT '{}', saga_id text DEFAULT NULL)
RETURNS text
LANGUAGE c VOLATILE
AS 'MODULE_PATHNAME', 'payments_saga_start';

COMMENT ON FUNCTION payments.saga_start(text, jsonb, jsonb, text) IS
    'start a saga (idempotent on saga_id: the same steps return it, other steps are an error); returns its id';

CREATE FUNCTION payments.saga_next(saga_id text)
RETURNS TABLE(action text, step text, attempt integer, state text)
LANGUAGE c STABLE ROWS 1
AS 'MODULE_PATHNAME', 'payments_saga_next';

COMMENT ON FUNCTION payments.saga_next(text) IS
    'what the orchestrator does next: run or compensate a step (and which attempt), or done';

CREATE FUNCTION payments.saga_record(
    saga_id text, step text, outcome text, detail jsonb DEFAULT NULL)
RETURNS text
LANGUAGE c VOLATILE
AS 'MODULE_PATHNAME', 'payments_saga_record';

COMMENT ON FUNCTION payments.saga_record(text, text, text, jsonb) IS
    'record the outcome (succeeded or failed) of the step saga_next gave; returns the saga''s new state';

CREATE FUNCTION payments.saga_step_key(saga_id text, step text, attempt integer,
                                       action text DEFAULT 'run')
RETURNS text
LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE
RETURN saga_id || ':' || step || ':' ||
       CASE action WHEN 'compensate' THEN 'compensate:' ELSE '' END || attempt;

COMMENT ON FUNCTION payments.saga_step_key(text, text, integer, text) IS
    'the stable idempotency key of one attempt of a step (or of its compensation), to pass to the gateway';

CREATE FUNCTION payments.saga_recoverable(stale interval DEFAULT '5 minutes')
RETURNS TABLE(saga_id text, name text, action text, step text, attempt integer,
              state text, updated_at timestamptz)
LANGUAGE c VOLATILE
AS 'MODULE_PATHNAME', 'payments_saga_recoverable';

COMMENT ON FUNCTION payments.saga_recoverable(interval) IS
    'claim the running or compensating sagas with no progress for stale, each for one caller at a time (for stale), and say what to do next';

SELECT pg_catalog.pg_extension_config_dump('payments.sagas', '');
SELECT pg_catalog.pg_extension_config_dump('payments.saga_events', '');
SELECT pg_catalog.pg_extension_config_dump('payments.saga_events_id_seq', '');

REVOKE ALL ON payments.sagas, payments.saga_events FROM PUBLIC;
REVOKE ALL ON FUNCTION
    payments.saga_start(text, jsonb, jsonb, text),
    payments.saga_next(text),
    payments.saga_record(text, text, text, jsonb),
    payments.saga_recoverable(interval),
    payments.saga_events_append_only()
    FROM PUBLIC;
GRANT EXECUTE ON FUNCTION
    payments.saga_start(text, jsonb, jsonb, text),
    payments.saga_next(text),
    payments.saga_record(text, text, text, jsonb),
    payments.saga_recoverable(interval)
    TO PUBLIC;

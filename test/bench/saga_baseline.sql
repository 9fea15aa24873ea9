-- The plain-SQL baseline of test/bench/saga.sh: what a careful engineer
-- writes for a durable saga log without the extension.  One status row per
-- saga (id, state, position of the step to run, updated_at) and an
-- append-only events table, indexed on (saga_id, id) like
-- payments.saga_events; ids in the "C" collation, as ours are.  No
-- foreign key and no CHECK: the bare minimum of the same writes.
CREATE SCHEMA saga_bare;

CREATE TABLE saga_bare.status (
    id         text COLLATE "C" PRIMARY KEY,
    state      text NOT NULL,
    position   integer NOT NULL DEFAULT 0,
    updated_at timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE saga_bare.events (
    id      bigserial PRIMARY KEY,
    saga_id text COLLATE "C" NOT NULL,
    event   text NOT NULL,
    step    text,
    at      timestamptz NOT NULL DEFAULT clock_timestamp(),
    detail  jsonb
);
CREATE INDEX ON saga_bare.events (saga_id, id);

-- The same tables again for the variant that writes the status row and
-- the event in separate statements (saga_split.pgbench).
CREATE SCHEMA saga_split;

CREATE TABLE saga_split.status (
    id         text COLLATE "C" PRIMARY KEY,
    state      text NOT NULL,
    position   integer NOT NULL DEFAULT 0,
    updated_at timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE saga_split.events (
    id      bigserial PRIMARY KEY,
    saga_id text COLLATE "C" NOT NULL,
    event   text NOT NULL,
    step    text,
    at      timestamptz NOT NULL DEFAULT clock_timestamp(),
    detail  jsonb
);
CREATE INDEX ON saga_split.events (saga_id, id);

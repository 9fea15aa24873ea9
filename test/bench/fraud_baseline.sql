-- The fraud screen written in PL/pgSQL, as a careful engineer would write
-- it without the extension: the baseline of test/bench/fraud.sh.
--
-- The same tables, indexes and contract as payments.fraud_evaluate: a
-- generic engine that, on each call, reads the enabled rules (one query),
-- runs them in (position, name) order dispatching on kind, and decides
-- the same way: the first enforcing block stops; then challenge; then
-- review on an enforcing review or a score at the review threshold; else
-- approve (payments.fraud_review_threshold and payments.fraud_on_error
-- are read as payments reads them).  A recorded evaluation first locks
-- its velocity key values (one query over the velocity rules finds them),
-- then writes the audit row (the context through payments.redact) and the
-- velocity rows: two INSERTs, which measured faster here than one
-- statement with a data-modifying WITH.
--
-- Work that depends only on a rule is done once, when the rule is stored:
-- a row trigger compiles params into typed columns and translates an
-- expression into a SQL boolean over the context (column condition; NULL
-- is "cannot run": types that cannot be compared, an object where a value
-- is wanted; AND and OR keep payments' left-to-right order), and a
-- statement trigger gathers every condition into one PL/pgSQL function,
-- fraud_plpgsql.condition(rule, context), so that each condition is a
-- plan PL/pgSQL prepares once per session (EXECUTE ... USING would parse
-- and plan it again on every call).
--
-- Left out: payments' thorough validation of rules (payments.fraud_rules
-- has a CHECK constraint; here only what the engine needs is checked),
-- the rule that only the tables' owner may record at a time other than
-- now(), and running as the tables' owner with search_path pinned (as in
-- idempotency_baseline.sql).  Verdicts have the same keys and values but
-- for the texts of detail and error.
--
-- "fraud_bare" holds an audit table of the same shape for the plain-SQL
-- minimum of the pgbench comparison.

CREATE SCHEMA fraud_plpgsql;
CREATE SCHEMA fraud_bare;

CREATE TABLE fraud_plpgsql.rules (
    name       text COLLATE "C" PRIMARY KEY,
    kind       text NOT NULL CHECK (kind IN ('blocklist', 'avs_cvv', 'velocity',
                                             'country_mismatch', 'high_amount', 'expression')),
    params     jsonb NOT NULL DEFAULT '{}',
    action     text CHECK (action IN ('block', 'challenge', 'review', 'score')),
    score      integer CHECK (score BETWEEN -1000 AND 1000),
    position   integer NOT NULL DEFAULT 0,
    enabled    boolean NOT NULL DEFAULT true,
    mode       text NOT NULL DEFAULT 'enforce' CHECK (mode IN ('enforce', 'shadow')),
    created_at timestamptz NOT NULL DEFAULT now(),
    -- compiled from kind and params by fraud_plpgsql.compile_rule()
    field         text COLLATE "C",    -- blocklist field, velocity key
    path          text[],              -- its keys
    email         boolean,             -- compared ASCII-case-insensitively
    list          text,                -- blocklist
    time_window   interval,            -- velocity
    max_count     bigint,
    sum_field     text,
    sum_path      text[],
    max_sum       numeric,
    fields        text[],              -- country_mismatch
    threshold     numeric,             -- high_amount
    currency      text,
    amount_field  text,
    amount_path   text[],
    currency_path text[],
    condition     text                 -- expression, as SQL over context
);

CREATE TABLE fraud_plpgsql.lists (
    list_name text COLLATE "C" NOT NULL CHECK (list_name <> ''),
    value     text COLLATE "C" NOT NULL,
    note      text,
    added_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (list_name, value)
);
CREATE INDEX ON fraud_plpgsql.lists (list_name, lower(value));

CREATE TABLE fraud_plpgsql.evaluations (
    id           bigserial PRIMARY KEY,
    evaluated_at timestamptz NOT NULL,
    decision     text NOT NULL CHECK (decision IN ('approve', 'review', 'challenge', 'block')),
    score        integer NOT NULL,
    blocked_by   text,
    context      jsonb NOT NULL,
    verdicts     jsonb NOT NULL
);
CREATE INDEX ON fraud_plpgsql.evaluations USING brin (evaluated_at);

CREATE TABLE fraud_plpgsql.velocity (
    key_value     text COLLATE "C" NOT NULL,
    key_field     text COLLATE "C" NOT NULL,
    at            timestamptz NOT NULL,
    evaluation_id bigint NOT NULL,
    amounts       jsonb,
    PRIMARY KEY (key_value, key_field, at, evaluation_id)
);
CREATE INDEX ON fraud_plpgsql.velocity USING brin (at);

CREATE TABLE fraud_bare.evaluations (
    id           bigserial PRIMARY KEY,
    evaluated_at timestamptz NOT NULL,
    decision     text NOT NULL CHECK (decision IN ('approve', 'review', 'challenge', 'block')),
    score        integer NOT NULL,
    blocked_by   text,
    context      jsonb NOT NULL,
    verdicts     jsonb NOT NULL
);
CREATE INDEX ON fraud_bare.evaluations USING brin (evaluated_at);

------------------------------------------------------------------------
-- Values as rules see them.  A value is missing when the field is absent
-- or JSON null.

-- The text under which a value is listed or counted: a string as it is
-- (ASCII lower case for an email field), a number in normal form (42 and
-- 42.0 are one key), true or false; NULL when missing, an object or array.
CREATE FUNCTION fraud_plpgsql.key_text(v jsonb, email boolean) RETURNS text
LANGUAGE sql IMMUTABLE AS $$
    SELECT CASE jsonb_typeof(v)
               WHEN 'string' THEN CASE WHEN email THEN lower((v #>> '{}') COLLATE "C")
                                       ELSE v #>> '{}' END
               WHEN 'number' THEN trim_scale(v::numeric)::text
               WHEN 'boolean' THEN v::text
           END
$$;

-- A value as a number: a JSON number, or a string that is a plain decimal
-- number ("12.50"); NULL otherwise.
CREATE FUNCTION fraud_plpgsql.number(v jsonb) RETURNS numeric
LANGUAGE sql IMMUTABLE AS $$
    SELECT CASE jsonb_typeof(v)
               WHEN 'number' THEN v::numeric
               WHEN 'string' THEN
                   CASE WHEN v #>> '{}' ~ '^[+-]?([0-9]+\.?[0-9]*|\.[0-9]+)$'
                             AND octet_length(v #>> '{}') <= 64
                        THEN (v #>> '{}')::numeric END
           END
$$;

-- Whether the last key of a field path names an email address.
CREATE FUNCTION fraud_plpgsql.is_email(path text) RETURNS boolean
LANGUAGE sql IMMUTABLE AS $$
    SELECT lower(substring(path FROM '[^.]*$') COLLATE "C") ~ '^(email|.+_email)$'
$$;

-- a op b for any two values (op: = <> < <= > >=): false when either is
-- missing; numbers compare as numbers (a numeric string with a number
-- too), strings byte-wise (folded for an email field), booleans for
-- (in)equality only; NULL when the two cannot be compared.  Translated
-- conditions call it only off their fast path.
CREATE FUNCTION fraud_plpgsql.compare(a jsonb, op text, b jsonb, fold boolean)
RETURNS boolean LANGUAGE plpgsql IMMUTABLE AS $$
DECLARE
    ta text := jsonb_typeof(a);
    tb text := jsonb_typeof(b);
    na numeric := fraud_plpgsql.number(a);
    nb numeric := fraud_plpgsql.number(b);
    sa text := a #>> '{}';
    sb text := b #>> '{}';
    c integer;
BEGIN
    IF coalesce(ta, 'null') = 'null' OR coalesce(tb, 'null') = 'null' THEN
        RETURN false;
    ELSIF 'number' IN (ta, tb) AND na IS NOT NULL AND nb IS NOT NULL THEN
        c := sign(na - nb);
    ELSIF ta = 'string' AND tb = 'string' THEN
        IF fold THEN
            sa := lower(sa COLLATE "C");
            sb := lower(sb COLLATE "C");
        END IF;
        c := CASE WHEN sa = sb THEN 0 WHEN sa COLLATE "C" < sb THEN -1 ELSE 1 END;
    ELSIF ta = 'boolean' AND tb = 'boolean' AND op IN ('=', '<>') THEN
        c := CASE WHEN a = b THEN 0 ELSE 1 END;
    ELSE
        RETURN NULL;
    END IF;
    RETURN CASE op WHEN '=' THEN c = 0 WHEN '<>' THEN c <> 0 WHEN '<' THEN c < 0
                   WHEN '<=' THEN c <= 0 WHEN '>' THEN c > 0 ELSE c >= 0 END;
END $$;

-- a [NOT] IN (items), items a JSON array of literals: false when a is
-- missing; NULL when a cannot be compared with an item before a match.
CREATE FUNCTION fraud_plpgsql.is_in(a jsonb, items jsonb, fold boolean, negated boolean)
RETURNS boolean LANGUAGE plpgsql IMMUTABLE AS $$
DECLARE
    item jsonb;
    eq boolean;
BEGIN
    IF coalesce(jsonb_typeof(a), 'null') = 'null' THEN
        RETURN false;
    END IF;
    FOR item IN SELECT jsonb_array_elements(items) LOOP
        eq := fraud_plpgsql.compare(a, '=', item, fold);
        IF eq IS NULL OR eq THEN
            RETURN eq <> negated;
        END IF;
    END LOOP;
    RETURN negated;
END $$;

-- a [NOT] IN LIST list: false when a is missing; NULL for an object or
-- array.
CREATE FUNCTION fraud_plpgsql.in_list(a jsonb, list text, fold boolean, negated boolean)
RETURNS boolean LANGUAGE plpgsql STABLE AS $$
DECLARE
    k text := fraud_plpgsql.key_text(a, fold);
BEGIN
    IF coalesce(jsonb_typeof(a), 'null') = 'null' THEN
        RETURN false;
    ELSIF k IS NULL THEN
        RETURN NULL;
    ELSIF fold THEN
        RETURN EXISTS (SELECT FROM fraud_plpgsql.lists l
                       WHERE l.list_name = list AND lower(l.value) = k) <> negated;
    ELSE
        RETURN EXISTS (SELECT FROM fraud_plpgsql.lists l
                       WHERE l.list_name = list AND l.value = k) <> negated;
    END IF;
END $$;

------------------------------------------------------------------------
-- Translating an expression (payments' condition language) into SQL over
-- a jsonb parameter named context.  Done once per stored rule.

-- The tokens: strings, numbers, words (fields and keywords), operators,
-- parentheses and commas; any other character is a token of its own,
-- which the parser refuses.
CREATE FUNCTION fraud_plpgsql.tokens(expr text) RETURNS text[]
LANGUAGE sql IMMUTABLE AS $$
    SELECT coalesce(array_agg(m[1] ORDER BY n), '{}')
    FROM regexp_matches(expr,
        '(''(?:[^'']|'''')*''|-?[0-9]+(?:\.[0-9]+)?(?:[eE][+-]?[0-9]+)?'
        '|[A-Za-z_][A-Za-z0-9_]*(?:\.[A-Za-z_][A-Za-z0-9_]*)*|==|!=|<>|<=|>=|[=<>(),]|\S)',
        'g') WITH ORDINALITY AS t(m, n)
$$;

-- One operand token: its kind (field, number, string, bool; NULL when it
-- is none), its value as SQL jsonb (j) and text (t), a literal's JSON
-- value (lit) and whether it is an email field (fold).
CREATE FUNCTION fraud_plpgsql.operand(tok text, OUT kind text, OUT j text,
                                      OUT t text, OUT lit jsonb, OUT fold boolean)
LANGUAGE plpgsql IMMUTABLE AS $$
DECLARE
    path text[] := string_to_array(tok, '.');
BEGIN
    fold := false;
    IF tok LIKE '''%' THEN
        kind := 'string';
        lit := to_jsonb(replace(substr(tok, 2, length(tok) - 2), '''''', ''''));
    ELSIF tok ~ '^-?[0-9]' THEN
        kind := 'number';
        lit := tok::numeric::text::jsonb;
    ELSIF tok ~ '^[A-Za-z_]' AND (cardinality(path) > 1
          OR upper(tok) NOT IN ('AND', 'OR', 'NOT', 'IN', 'LIST', 'TRUE', 'FALSE')) THEN
        kind := 'field';
        fold := fraud_plpgsql.is_email(tok);
        IF cardinality(path) = 1 THEN
            j := format('(context -> %L)', tok);
            t := format('(context ->> %L)', tok);
        ELSE
            j := format('(context #> %L)', path);
            t := format('(context #>> %L)', path);
        END IF;
        RETURN;
    ELSIF upper(tok) IN ('TRUE', 'FALSE') THEN
        kind := 'bool';
        lit := lower(tok)::jsonb;
    ELSE
        RETURN;
    END IF;
    j := format('%L::jsonb', lit);
    t := quote_literal(lit #>> '{}');
END $$;

-- a op b, a and b operand tokens.  The fast path handles the types the
-- rule expects (a field against a number: numbers; against a string or
-- another field: strings); anything else goes to fraud_plpgsql.compare.
CREATE FUNCTION fraud_plpgsql.translate_compare(atok text, op text, btok text)
RETURNS text LANGUAGE plpgsql IMMUTABLE AS $$
DECLARE
    a record := fraud_plpgsql.operand(atok);
    b record := fraud_plpgsql.operand(btok);
    swap record;
    fold boolean;
    generic text;
BEGIN
    IF a.kind IS NULL OR b.kind IS NULL THEN
        RAISE EXCEPTION 'expected an operand at "%"', CASE WHEN a.kind IS NULL THEN atok ELSE btok END
            USING ERRCODE = '22023';
    END IF;
    op := CASE op WHEN '==' THEN '=' WHEN '!=' THEN '<>' ELSE op END;
    IF a.kind <> 'field' AND b.kind = 'field' THEN    -- the field first
        swap := a; a := b; b := swap;
        op := CASE op WHEN '<' THEN '>' WHEN '>' THEN '<' WHEN '<=' THEN '>='
                      WHEN '>=' THEN '<=' ELSE op END;
    END IF;
    fold := a.fold OR b.fold;
    generic := format('fraud_plpgsql.compare(%s, %L, %s, %s)', a.j, op, b.j, fold::text);
    IF a.kind = 'field' AND b.kind = 'number' THEN
        RETURN format('(CASE coalesce(jsonb_typeof(%1$s), ''null'') WHEN ''number'' THEN %1$s::numeric %2$s %3$s::numeric '
                      'WHEN ''null'' THEN false ELSE %4$s END)', a.j, op, b.t, generic);
    ELSIF a.kind = 'field' AND b.kind = 'string' THEN
        RETURN format('(CASE coalesce(jsonb_typeof(%1$s), ''null'') WHEN ''string'' THEN %2$s %3$s %4$L '
                      'WHEN ''null'' THEN false ELSE %5$s END)', a.j,
                      CASE WHEN fold THEN format('lower(%s COLLATE "C")', a.t) ELSE a.t || ' COLLATE "C"' END,
                      op, CASE WHEN fold THEN lower((b.lit #>> '{}') COLLATE "C") ELSE b.lit #>> '{}' END,
                      generic);
    ELSIF a.kind = 'field' AND b.kind = 'field' THEN
        RETURN format('(CASE WHEN jsonb_typeof(%1$s) = ''string'' AND jsonb_typeof(%2$s) = ''string'' THEN %3$s %4$s %5$s '
                      'WHEN coalesce(jsonb_typeof(%1$s), ''null'') = ''null'' OR coalesce(jsonb_typeof(%2$s), ''null'') = ''null'' THEN false '
                      'ELSE %6$s END)', a.j, b.j,
                      CASE WHEN fold THEN format('lower(%s COLLATE "C")', a.t) ELSE a.t || ' COLLATE "C"' END, op,
                      CASE WHEN fold THEN format('lower(%s COLLATE "C")', b.t) ELSE b.t END,
                      generic);
    END IF;
    RETURN generic;
END $$;

-- The predicate at t[pos]: a op b, a [NOT] IN (literals), a [NOT] IN
-- LIST 'name'.
CREATE FUNCTION fraud_plpgsql.translate_predicate(t text[], INOUT pos integer, OUT res text)
LANGUAGE plpgsql IMMUTABLE AS $$
DECLARE
    a record := fraud_plpgsql.operand(t[pos]);
    item record;
    negated boolean := false;
    items jsonb := '[]';
    strings text[] := '{}';
    all_strings boolean := true;
    list text;
BEGIN
    IF a.kind IS NULL THEN
        RAISE EXCEPTION 'expected an operand at "%"', coalesce(t[pos], 'the end') USING ERRCODE = '22023';
    END IF;
    pos := pos + 1;
    IF upper(t[pos]) = 'NOT' AND upper(t[pos + 1]) = 'IN' THEN
        negated := true;
        pos := pos + 1;
    END IF;
    IF upper(t[pos]) = 'IN' AND upper(t[pos + 1]) = 'LIST' THEN
        IF t[pos + 2] NOT LIKE '''%' THEN
            RAISE EXCEPTION 'expected a quoted list name after IN LIST' USING ERRCODE = '22023';
        END IF;
        list := (fraud_plpgsql.operand(t[pos + 2])).lit #>> '{}';
        pos := pos + 3;
        IF a.kind <> 'field' THEN
            res := format('fraud_plpgsql.in_list(%s, %L, false, %s)', a.j, list, negated::text);
        ELSE
            res := format('(CASE coalesce(jsonb_typeof(%1$s), ''null'') WHEN ''string'' THEN %2$sEXISTS '
                          '(SELECT FROM fraud_plpgsql.lists l WHERE l.list_name = %3$L AND %4$s) '
                          'WHEN ''null'' THEN false ELSE fraud_plpgsql.in_list(%1$s, %3$L, %5$s, %6$s) END)',
                          a.j, CASE WHEN negated THEN 'NOT ' ELSE '' END, list,
                          CASE WHEN a.fold THEN format('lower(l.value) = lower(%s COLLATE "C")', a.t)
                               ELSE format('l.value = %s', a.t) END,
                          a.fold::text, negated::text);
        END IF;
    ELSIF upper(t[pos]) = 'IN' THEN
        IF t[pos + 1] IS DISTINCT FROM '(' THEN
            RAISE EXCEPTION 'expected ( or LIST after IN' USING ERRCODE = '22023';
        END IF;
        pos := pos + 1;
        LOOP
            item := fraud_plpgsql.operand(t[pos + 1]);
            IF item.kind IS NULL OR item.kind = 'field' THEN
                RAISE EXCEPTION 'expected a literal at "%"', coalesce(t[pos + 1], 'the end') USING ERRCODE = '22023';
            END IF;
            items := items || jsonb_build_array(item.lit);
            all_strings := all_strings AND item.kind = 'string';
            strings := strings || CASE WHEN a.fold THEN lower((item.lit #>> '{}') COLLATE "C") ELSE item.lit #>> '{}' END;
            pos := pos + 2;
            EXIT WHEN t[pos] IS DISTINCT FROM ',';
        END LOOP;
        IF t[pos] IS DISTINCT FROM ')' THEN
            RAISE EXCEPTION 'expected , or ) in the IN list' USING ERRCODE = '22023';
        END IF;
        pos := pos + 1;
        res := format('fraud_plpgsql.is_in(%s, %L::jsonb, %s, %s)', a.j, items, a.fold::text, negated::text);
        IF a.kind = 'field' AND all_strings THEN
            res := format('(CASE coalesce(jsonb_typeof(%1$s), ''null'') WHEN ''string'' THEN %2$s(%3$s = ANY (%4$L::text[])) '
                          'WHEN ''null'' THEN false ELSE %5$s END)',
                          a.j, CASE WHEN negated THEN 'NOT ' ELSE '' END,
                          CASE WHEN a.fold THEN format('lower(%s COLLATE "C")', a.t) ELSE a.t END,
                          strings, res);
        END IF;
    ELSIF t[pos] IN ('=', '==', '!=', '<>', '<', '<=', '>', '>=') AND NOT negated THEN
        res := fraud_plpgsql.translate_compare(t[pos - 1], t[pos], t[pos + 1]);
        pos := pos + 2;
    ELSE
        RAISE EXCEPTION 'expected a comparison operator at "%"', coalesce(t[pos], 'the end')
            USING ERRCODE = '22023';
    END IF;
END $$;

-- The expression at t[pos]: level 0 an OR chain, 1 an AND chain, 2 NOT,
-- a parenthesis, is_missing(field) or a predicate.  AND and OR keep
-- payments' order and its errors: the left side decides first, and a left
-- side that cannot run makes the whole unable to run.
CREATE FUNCTION fraud_plpgsql.translate_expr(t text[], INOUT pos integer, level integer,
                                             OUT res text)
LANGUAGE plpgsql IMMUTABLE AS $$
DECLARE
    rhs record;
    f record;
BEGIN
    IF level < 2 THEN
        SELECT * INTO pos, res FROM fraud_plpgsql.translate_expr(t, pos, level + 1);
        WHILE upper(t[pos]) = CASE level WHEN 0 THEN 'OR' ELSE 'AND' END LOOP
            rhs := fraud_plpgsql.translate_expr(t, pos + 1, level + 1);
            res := format(CASE level WHEN 0 THEN '(CASE %s WHEN false THEN %s WHEN true THEN true END)'
                                     ELSE '(CASE %s WHEN true THEN %s WHEN false THEN false END)' END,
                          res, rhs.res);
            pos := rhs.pos;
        END LOOP;
    ELSIF upper(t[pos]) = 'NOT' THEN
        SELECT * INTO pos, res FROM fraud_plpgsql.translate_expr(t, pos + 1, 2);
        res := format('(NOT %s)', res);
    ELSIF t[pos] = '(' THEN
        SELECT * INTO pos, res FROM fraud_plpgsql.translate_expr(t, pos + 1, 0);
        IF t[pos] IS DISTINCT FROM ')' THEN
            RAISE EXCEPTION 'expected ) at "%"', coalesce(t[pos], 'the end') USING ERRCODE = '22023';
        END IF;
        pos := pos + 1;
    ELSIF lower(t[pos]) = 'is_missing' AND t[pos + 1] = '(' THEN
        f := fraud_plpgsql.operand(t[pos + 2]);
        IF f.kind IS DISTINCT FROM 'field' OR t[pos + 3] IS DISTINCT FROM ')' THEN
            RAISE EXCEPTION 'expected is_missing(field)' USING ERRCODE = '22023';
        END IF;
        res := format('(coalesce(jsonb_typeof(%s), ''null'') = ''null'')', f.j);
        pos := pos + 4;
    ELSE
        SELECT * INTO pos, res FROM fraud_plpgsql.translate_predicate(t, pos);
    END IF;
END $$;

-- An expression as a SQL boolean over context: true, false, or NULL when
-- it cannot run on that context.
CREATE FUNCTION fraud_plpgsql.translate(expr text) RETURNS text
LANGUAGE plpgsql IMMUTABLE AS $$
DECLARE
    t text[] := fraud_plpgsql.tokens(expr);
    r record;
BEGIN
    IF cardinality(t) = 0 THEN
        RAISE EXCEPTION 'empty expression' USING ERRCODE = '22023';
    END IF;
    r := fraud_plpgsql.translate_expr(t, 1, 0);
    IF r.pos <= cardinality(t) THEN
        RAISE EXCEPTION 'expected AND or OR at "%"', t[r.pos] USING ERRCODE = '22023';
    END IF;
    RETURN r.res;
END $$;

------------------------------------------------------------------------
-- Compiling rules when they are stored.

CREATE FUNCTION fraud_plpgsql.compile_rule() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
    p jsonb := NEW.params;
BEGIN
    NEW.field := NULL; NEW.list := NULL; NEW.time_window := NULL; NEW.max_count := NULL;
    NEW.sum_field := NULL; NEW.max_sum := NULL; NEW.fields := NULL; NEW.threshold := NULL;
    NEW.currency := NULL; NEW.amount_field := NULL; NEW.currency_path := NULL; NEW.condition := NULL;
    CASE NEW.kind
    WHEN 'blocklist' THEN
        NEW.field := p ->> 'field';
        NEW.list := p ->> 'list';
        IF NEW.field IS NULL OR NEW.list IS NULL THEN
            RAISE EXCEPTION 'fraud rule "%": field and list are required', NEW.name USING ERRCODE = '22023';
        END IF;
    WHEN 'velocity' THEN
        NEW.field := p ->> 'key';
        NEW.time_window := (p ->> 'window')::interval;
        NEW.max_count := (p ->> 'max_count')::bigint;
        NEW.sum_field := p ->> 'sum_field';
        NEW.max_sum := (p ->> 'max_sum')::numeric;
        IF NEW.field IS NULL OR NEW.time_window IS NULL
           OR (NEW.sum_field IS NULL) <> (NEW.max_sum IS NULL)
           OR (NEW.max_count IS NULL AND NEW.sum_field IS NULL) THEN
            RAISE EXCEPTION 'fraud rule "%": a velocity rule needs key, window and max_count or sum_field with max_sum',
                NEW.name USING ERRCODE = '22023';
        END IF;
    WHEN 'country_mismatch' THEN
        NEW.fields := CASE WHEN p ? 'fields'
                           THEN ARRAY(SELECT jsonb_array_elements_text(p -> 'fields'))
                           ELSE ARRAY['card_country', 'billing_country'] END;
    WHEN 'high_amount' THEN
        NEW.threshold := (p ->> 'threshold')::numeric;
        NEW.currency := p ->> 'currency';
        NEW.amount_field := coalesce(p ->> 'amount_field', 'amount');
        NEW.currency_path := string_to_array(coalesce(p ->> 'currency_field', 'currency'), '.');
        IF NEW.threshold IS NULL THEN
            RAISE EXCEPTION 'fraud rule "%": threshold is required', NEW.name USING ERRCODE = '22023';
        END IF;
    WHEN 'expression' THEN
        BEGIN
            NEW.condition := fraud_plpgsql.translate(p ->> 'expr');
        EXCEPTION WHEN invalid_parameter_value THEN
            RAISE EXCEPTION 'fraud rule "%": %', NEW.name, SQLERRM USING ERRCODE = '22023';
        END;
    ELSE
        NULL;    -- avs_cvv: no parameters
    END CASE;
    NEW.path := string_to_array(NEW.field, '.');
    NEW.email := fraud_plpgsql.is_email(NEW.field);
    NEW.sum_path := string_to_array(NEW.sum_field, '.');
    NEW.amount_path := string_to_array(NEW.amount_field, '.');
    RETURN NEW;
END $$;

CREATE TRIGGER compile_rule BEFORE INSERT OR UPDATE ON fraud_plpgsql.rules
    FOR EACH ROW EXECUTE FUNCTION fraud_plpgsql.compile_rule();

-- Every expression rule's condition in one function: a CASE on the rule's
-- name, each branch a plan prepared once per session.
CREATE FUNCTION fraud_plpgsql.build_conditions() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
    branches text;
BEGIN
    SELECT string_agg(format('        WHEN %L THEN RETURN %s;', r.name, r.condition), E'\n' ORDER BY r.name)
    INTO branches
    FROM fraud_plpgsql.rules r WHERE r.kind = 'expression';
    EXECUTE format('CREATE OR REPLACE FUNCTION fraud_plpgsql.condition(rule text, context jsonb) '
                   'RETURNS boolean LANGUAGE plpgsql STABLE AS %L',
                   CASE WHEN branches IS NULL THEN E'BEGIN\n    RETURN NULL;\nEND'
                        ELSE format(E'BEGIN\n    CASE rule\n%s\n        ELSE RETURN NULL;\n    END CASE;\nEND',
                                    branches) END);
    RETURN NULL;
END $$;

CREATE TRIGGER build_conditions AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON fraud_plpgsql.rules
    FOR EACH STATEMENT EXECUTE FUNCTION fraud_plpgsql.build_conditions();

CREATE FUNCTION fraud_plpgsql.condition(rule text, context jsonb) RETURNS boolean
LANGUAGE plpgsql STABLE AS $$ BEGIN RETURN NULL; END $$;

------------------------------------------------------------------------
-- The engine.

CREATE FUNCTION fraud_plpgsql.evaluate(
    context jsonb, at timestamptz DEFAULT now(), record boolean DEFAULT true)
RETURNS TABLE(decision text, score integer, blocked_by text, verdicts jsonb,
              evaluation_id bigint)
LANGUAGE plpgsql AS $$
#variable_conflict use_column
DECLARE
    v_threshold integer := coalesce(current_setting('payments.fraud_review_threshold', true)::integer, 50);
    v_on_error text := coalesce(current_setting('payments.fraud_on_error', true), 'review');
    r record;
    -- the velocity keys of a recorded evaluation, in key order
    v_key_fields text[];
    v_key_values text[];
    v_key_amounts jsonb[];
    -- the outcome so far
    v_verdicts jsonb[] := '{}';
    v_total bigint := 0;
    v_challenge boolean := false;
    v_review boolean := false;
    v_blocked text;
    -- one rule's run: a hit sets v_action and v_score
    v_hit boolean;
    v_action text;
    v_score integer;
    v_detail text;
    v_error text;
    v_value jsonb;
    v_text text;
    v_first text;
    v_first_field text;
    v_field text;
    v_amount numeric;
    v_count bigint;
    v_sum numeric;
    v_avs text;
    v_cvv text;
BEGIN
    IF evaluate.context IS NULL OR evaluate.at IS NULL OR evaluate.record IS NULL THEN
        RAISE EXCEPTION 'context, at and record must not be NULL' USING ERRCODE = '22023';
    END IF;
    IF jsonb_typeof(evaluate.context) <> 'object' THEN
        RAISE EXCEPTION 'a fraud context must be a JSON object' USING ERRCODE = '22023';
    END IF;

    -- A recorded evaluation first locks each velocity key value it carries,
    -- so that two evaluations of one key count one after the other.
    IF evaluate.record THEN
        SELECT array_agg(k.field ORDER BY k.field), array_agg(k.value ORDER BY k.field),
               array_agg(k.amounts ORDER BY k.field)
        INTO v_key_fields, v_key_values, v_key_amounts
        FROM (SELECT x.field,
                     fraud_plpgsql.key_text(evaluate.context #> x.path, x.email) AS value,
                     jsonb_object_agg(x.sum_field, fraud_plpgsql.number(evaluate.context #> x.sum_path))
                         FILTER (WHERE fraud_plpgsql.number(evaluate.context #> x.sum_path) IS NOT NULL) AS amounts
              FROM fraud_plpgsql.rules x
              WHERE x.enabled AND x.kind = 'velocity'
              GROUP BY 1, 2) AS k
        WHERE k.value IS NOT NULL;
        FOR i IN 1 .. coalesce(cardinality(v_key_fields), 0) LOOP
            PERFORM pg_advisory_xact_lock(hashtextextended(v_key_fields[i] || ':' || v_key_values[i], 0));
        END LOOP;
    END IF;

    FOR r IN
        SELECT x.name, x.kind, x.action, x.score, x.mode, x.field, x.path, x.email, x.list,
               x.time_window, x.max_count, x.sum_field, x.sum_path, x.max_sum, x.fields,
               x.threshold, x.currency, x.amount_field, x.amount_path, x.currency_path
        FROM fraud_plpgsql.rules x WHERE x.enabled ORDER BY x.position, x.name
    LOOP
        IF v_blocked IS NOT NULL THEN
            v_verdicts := array_append(v_verdicts,
                jsonb_build_object('rule', r.name, 'kind', r.kind, 'skipped', true));
            CONTINUE;
        END IF;
        v_hit := false;
        v_action := NULL;
        v_score := NULL;
        v_detail := NULL;
        v_error := NULL;

        CASE r.kind
        WHEN 'blocklist' THEN
            v_value := evaluate.context #> r.path;
            v_text := fraud_plpgsql.key_text(v_value, r.email);
            IF jsonb_typeof(v_value) IN ('object', 'array') THEN
                v_error := format('field %s is an object or array', r.field);
            ELSIF v_text IS NOT NULL THEN
                IF r.email THEN
                    v_hit := EXISTS (SELECT FROM fraud_plpgsql.lists l
                                     WHERE l.list_name = r.list AND lower(l.value) = v_text);
                ELSE
                    v_hit := EXISTS (SELECT FROM fraud_plpgsql.lists l
                                     WHERE l.list_name = r.list AND l.value = v_text);
                END IF;
                IF v_hit THEN
                    v_action := 'block';
                    v_score := 100;
                    v_detail := format('%s is on list %s', r.field, r.list);
                END IF;
            END IF;

        WHEN 'avs_cvv' THEN
            -- missing (or JSON null) is unchecked; a number, a boolean or an
            -- object reads as text that is no result
            v_avs := lower(coalesce(evaluate.context ->> 'avs_result', 'unchecked') COLLATE "C");
            v_cvv := lower(coalesce(evaluate.context ->> 'cvv_result', 'unchecked') COLLATE "C");
            IF v_cvv NOT IN ('pass', 'fail', 'partial', 'unavailable', 'unchecked') THEN
                v_error := 'cvv_result is not pass, fail, partial, unavailable or unchecked';
            ELSIF v_avs NOT IN ('pass', 'fail', 'partial', 'unavailable', 'unchecked') THEN
                v_error := 'avs_result is not pass, fail, partial, unavailable or unchecked';
            ELSIF v_cvv = 'fail' THEN
                v_action := 'block'; v_score := 100; v_detail := 'cvv_result is fail';
            ELSIF v_avs = 'fail' THEN
                v_action := 'block'; v_score := 80; v_detail := 'avs_result is fail';
            ELSIF v_avs = 'partial' THEN
                v_action := 'challenge'; v_score := 20; v_detail := 'avs_result is partial';
            END IF;
            v_hit := v_action IS NOT NULL;

        WHEN 'velocity' THEN
            v_value := evaluate.context #> r.path;
            v_text := fraud_plpgsql.key_text(v_value, r.email);
            v_amount := 0;
            IF jsonb_typeof(v_value) IN ('object', 'array') THEN
                v_error := format('field %s is an object or array', r.field);
            ELSIF v_text IS NOT NULL THEN
                v_value := evaluate.context #> r.sum_path;
                IF coalesce(jsonb_typeof(v_value), 'null') <> 'null' THEN
                    v_amount := fraud_plpgsql.number(v_value);
                    IF v_amount IS NULL THEN
                        v_error := format('field %s is not a number', r.sum_field);
                    END IF;
                END IF;
            END IF;
            IF v_text IS NOT NULL AND v_error IS NULL THEN
                SELECT count(*), coalesce(sum((v.amounts ->> r.sum_field)::numeric), 0)
                INTO v_count, v_sum
                FROM fraud_plpgsql.velocity v
                WHERE v.key_value = v_text AND v.key_field = r.field
                  AND v.at > evaluate.at - r.time_window AND v.at <= evaluate.at;
                IF v_count >= r.max_count THEN
                    v_detail := format('%s earlier evaluations with this %s in the window (max %s)',
                                       v_count, r.field, r.max_count);
                ELSIF v_sum + v_amount > r.max_sum THEN
                    v_detail := format('%s with this %s in the window goes over %s',
                                       r.sum_field, r.field, trim_scale(r.max_sum));
                END IF;
                IF v_detail IS NOT NULL THEN
                    v_hit := true; v_action := 'block'; v_score := 100;
                END IF;
            END IF;

        WHEN 'country_mismatch' THEN
            v_first := NULL;
            FOREACH v_field IN ARRAY r.fields LOOP
                v_value := evaluate.context #> string_to_array(v_field, '.');
                CONTINUE WHEN coalesce(jsonb_typeof(v_value), 'null') = 'null';
                IF jsonb_typeof(v_value) <> 'string' THEN
                    v_error := format('field %s is not a string', v_field);
                    EXIT;
                END IF;
                v_text := lower((v_value #>> '{}') COLLATE "C");
                IF v_first IS NULL THEN
                    v_first := v_text;
                    v_first_field := v_field;
                ELSIF v_text <> v_first THEN
                    v_hit := true; v_action := 'challenge'; v_score := 30;
                    v_detail := format('%s differs from %s', v_field, v_first_field);
                    EXIT;
                END IF;
            END LOOP;

        WHEN 'high_amount' THEN
            v_value := evaluate.context #> r.amount_path;
            IF coalesce(jsonb_typeof(v_value), 'null') <> 'null'
               AND (r.currency IS NULL
                    OR (jsonb_typeof(evaluate.context #> r.currency_path) = 'string'
                        AND lower((evaluate.context #>> r.currency_path) COLLATE "C")
                            = lower(r.currency COLLATE "C"))) THEN
                v_amount := fraud_plpgsql.number(v_value);
                IF v_amount IS NULL THEN
                    v_error := format('field %s is not a number', r.amount_field);
                ELSIF v_amount >= r.threshold THEN
                    v_hit := true; v_action := 'challenge'; v_score := 15;
                    v_detail := format('%s is at or over %s', r.amount_field, trim_scale(r.threshold));
                END IF;
            END IF;

        WHEN 'expression' THEN
            v_hit := fraud_plpgsql.condition(r.name, evaluate.context);
            IF v_hit IS NULL THEN
                v_hit := false;
                v_error := 'the expression cannot run on this context';
            ELSIF v_hit THEN
                v_action := 'review'; v_score := 50;
            END IF;
        END CASE;

        IF v_hit THEN
            v_action := coalesce(r.action, v_action);
            v_score := coalesce(r.score, v_score);
        ELSIF v_error IS NOT NULL THEN
            IF v_on_error = 'raise' THEN
                RAISE EXCEPTION 'fraud rule "%" could not run: %', r.name, v_error
                    USING ERRCODE = '22023';
            END IF;
            v_action := CASE v_on_error WHEN 'block' THEN 'block' ELSE 'review' END;
            v_score := 0;
        END IF;
        IF v_action IS NULL AND r.mode = 'enforce' THEN    -- the common case
            v_verdicts := array_append(v_verdicts,
                jsonb_build_object('rule', r.name, 'kind', r.kind, 'hit', false));
            CONTINUE;
        END IF;
        v_verdicts := array_append(v_verdicts, jsonb_strip_nulls(jsonb_build_object(
            'rule', r.name, 'kind', r.kind, 'hit', v_hit, 'action', v_action, 'score', v_score,
            'shadow', CASE WHEN r.mode = 'shadow' THEN true END,
            'detail', v_detail, 'error', v_error)));
        IF v_action IS NOT NULL AND r.mode = 'enforce' THEN
            v_total := v_total + v_score;
            CASE v_action
            WHEN 'block' THEN v_blocked := r.name;
            WHEN 'challenge' THEN v_challenge := true;
            WHEN 'review' THEN v_review := true;
            ELSE NULL;
            END CASE;
        END IF;
    END LOOP;

    decision := CASE WHEN v_blocked IS NOT NULL THEN 'block'
                     WHEN v_challenge THEN 'challenge'
                     WHEN v_review OR v_total >= v_threshold THEN 'review'
                     ELSE 'approve' END;
    score := greatest(least(v_total, 2147483647), -2147483648);
    blocked_by := v_blocked;
    verdicts := to_jsonb(v_verdicts);
    IF evaluate.record THEN
        INSERT INTO fraud_plpgsql.evaluations AS e
            (evaluated_at, decision, score, blocked_by, context, verdicts)
        VALUES (evaluate.at, evaluate.decision, evaluate.score, v_blocked,
                payments.redact(evaluate.context), evaluate.verdicts)
        RETURNING e.id INTO evaluation_id;
        INSERT INTO fraud_plpgsql.velocity (key_value, key_field, at, evaluation_id, amounts)
        SELECT k.value, k.field, evaluate.at, evaluate.evaluation_id, k.amounts
        FROM unnest(v_key_fields, v_key_values, v_key_amounts) AS k(field, value, amounts);
    END IF;
    RETURN NEXT;
END $$;

-- The idempotency contract written in PL/pgSQL, as a careful engineer would
-- write it without the extension: the baseline of test/bench/idempotency.sh.
-- Same table shape and indexes, same validation, same fingerprint (SHA-256
-- of the canonical jsonb text), same algorithm (lock-free lookup, then
-- INSERT ... ON CONFLICT DO NOTHING, then decide on the row locked FOR
-- UPDATE), same outcomes and errors.  "bare" holds the same table for the
-- plain-SQL minimum of the pgbench comparison.

CREATE SCHEMA idem_plpgsql;
CREATE SCHEMA bare;

CREATE TABLE idem_plpgsql.keys (
    scope          text COLLATE "C" NOT NULL,
    key            text COLLATE "C" NOT NULL,
    fingerprint    bytea NOT NULL,
    state          text NOT NULL,
    recovery_point text,
    response       jsonb,
    error          jsonb,
    created_at     timestamptz NOT NULL,
    locked_until   timestamptz,
    expires_at     timestamptz NOT NULL,
    lease          interval NOT NULL,
    ttl            interval NOT NULL,
    owner_token    uuid,
    PRIMARY KEY (scope, key),
    CHECK (char_length(key) <= 255 AND key <> ''),
    CHECK (char_length(scope) <= 255 AND scope <> ''),
    CHECK (octet_length(fingerprint) = 32),
    CHECK (state = ANY (ARRAY['in_flight', 'completed', 'failed']))
);
CREATE INDEX ON idem_plpgsql.keys (expires_at);

CREATE TABLE bare.keys (LIKE idem_plpgsql.keys INCLUDING ALL);

CREATE FUNCTION idem_plpgsql.begin(
    p_key text, p_request jsonb, p_scope text DEFAULT 'default',
    p_ttl interval DEFAULT '24 hours', p_lease interval DEFAULT '1 minute')
RETURNS TABLE(outcome text, recovery_point text, response jsonb,
              error jsonb, created_at timestamptz, token uuid)
LANGUAGE plpgsql AS $$
DECLARE
    v_now timestamptz := clock_timestamp();
    v_token uuid;
    v_fp bytea;
    r idem_plpgsql.keys;
    v_locked boolean := false;
    v_expired boolean;
BEGIN
    IF p_key IS NULL OR p_key = '' OR char_length(p_key) > 255 THEN
        RAISE EXCEPTION 'invalid idempotency key' USING ERRCODE = '22023';
    END IF;
    IF p_scope IS NULL OR p_scope = '' OR char_length(p_scope) > 255 THEN
        RAISE EXCEPTION 'invalid idempotency scope' USING ERRCODE = '22023';
    END IF;
    IF p_request IS NULL THEN
        RAISE EXCEPTION 'request must not be null' USING ERRCODE = '22023';
    END IF;
    IF p_ttl IS NULL OR v_now + p_ttl <= v_now OR p_ttl > interval '100 years'
       OR p_lease IS NULL OR v_now + p_lease <= v_now OR p_lease > interval '100 years' THEN
        RAISE EXCEPTION 'ttl and lease must be positive' USING ERRCODE = '22023';
    END IF;
    v_fp := sha256(convert_to(p_request::text, 'UTF8'));

    SELECT * INTO r FROM idem_plpgsql.keys k
    WHERE k.scope = p_scope AND k.key = p_key;
    FOR attempt IN 1..5 LOOP
        IF NOT FOUND THEN
            v_token := gen_random_uuid();
            INSERT INTO idem_plpgsql.keys AS k
                (scope, key, fingerprint, state, created_at, locked_until,
                 expires_at, lease, ttl, owner_token)
            VALUES (p_scope, p_key, v_fp, 'in_flight', v_now, v_now + p_lease,
                    v_now + p_ttl, p_lease, p_ttl, v_token)
            ON CONFLICT (scope, key) DO NOTHING;
            IF FOUND THEN
                RETURN QUERY SELECT 'started'::text, NULL::text, NULL::jsonb,
                                    NULL::jsonb, v_now, v_token;
                RETURN;
            END IF;
            SELECT * INTO r FROM idem_plpgsql.keys k
            WHERE k.scope = p_scope AND k.key = p_key FOR UPDATE;
            v_locked := true;
            CONTINUE WHEN NOT FOUND;
        END IF;

        v_expired := r.expires_at <= v_now
            AND NOT (r.state = 'in_flight' AND r.locked_until > v_now);
        IF NOT v_expired AND r.fingerprint <> v_fp THEN
            RAISE EXCEPTION 'idempotency key "%" was already used with a different request', p_key
                USING ERRCODE = 'PM001';
        END IF;
        IF NOT v_expired AND r.state <> 'in_flight' THEN
            RETURN QUERY SELECT r.state, r.recovery_point, r.response, r.error,
                                r.created_at, NULL::uuid;
            RETURN;
        END IF;
        IF NOT v_expired AND r.locked_until > v_now THEN
            RAISE EXCEPTION 'idempotency key "%" is in flight', p_key
                USING ERRCODE = 'PM002';
        END IF;
        IF NOT v_locked THEN
            SELECT * INTO r FROM idem_plpgsql.keys k
            WHERE k.scope = p_scope AND k.key = p_key FOR UPDATE;
            v_locked := true;
            CONTINUE;
        END IF;
        v_token := gen_random_uuid();
        IF v_expired THEN
            UPDATE idem_plpgsql.keys k
            SET fingerprint = v_fp, state = 'in_flight', recovery_point = NULL,
                response = NULL, error = NULL, created_at = v_now,
                locked_until = v_now + p_lease, expires_at = v_now + p_ttl,
                lease = p_lease, ttl = p_ttl, owner_token = v_token
            WHERE k.scope = p_scope AND k.key = p_key;
            RETURN QUERY SELECT 'started'::text, NULL::text, NULL::jsonb,
                                NULL::jsonb, v_now, v_token;
            RETURN;
        END IF;
        UPDATE idem_plpgsql.keys k
        SET locked_until = v_now + p_lease, lease = p_lease,
            expires_at = greatest(k.expires_at, v_now + p_lease),
            owner_token = v_token
        WHERE k.scope = p_scope AND k.key = p_key;
        RETURN QUERY SELECT 'resumed'::text, r.recovery_point, r.response,
                            r.error, r.created_at, v_token;
        RETURN;
    END LOOP;
    RAISE EXCEPTION 'idempotency key "%" is changing concurrently', p_key
        USING ERRCODE = 'PM002';
END $$;

CREATE FUNCTION idem_plpgsql.complete(p_key text, p_response jsonb,
                                      p_scope text DEFAULT 'default',
                                      p_token uuid DEFAULT NULL)
RETURNS void LANGUAGE plpgsql AS $$
DECLARE
    v_now timestamptz := clock_timestamp();
BEGIN
    IF p_key IS NULL OR p_key = '' OR char_length(p_key) > 255
       OR p_scope IS NULL OR p_scope = '' OR char_length(p_scope) > 255
       OR p_response IS NULL THEN
        RAISE EXCEPTION 'invalid argument' USING ERRCODE = '22023';
    END IF;
    UPDATE idem_plpgsql.keys k
    SET state = 'completed', response = p_response, locked_until = NULL,
        expires_at = greatest(k.expires_at, v_now + k.ttl)
    WHERE k.scope = p_scope AND k.key = p_key AND k.state = 'in_flight'
      AND (k.expires_at > v_now OR k.locked_until > v_now)
      AND (p_token IS NULL OR k.owner_token = p_token);
    IF NOT FOUND THEN
        RAISE EXCEPTION 'idempotency key "%" is not in flight', p_key
            USING ERRCODE = 'PM003';
    END IF;
END $$;

-- test/bench/redact_baseline.sql: what a user would write without the
-- extension to do redact()'s main job: find 13-19 digit candidates (single
-- spaces or dashes between digits, not inside a longer run of digits) with
-- a regular expression, check each with Luhn in PL/pgSQL, mask the valid
-- ones as payments.redact does (every digit but the last four becomes '*',
-- separators go).  It does less than redact (no brand rule, no CVVs or
-- tracks, no UUID or hex rules), which only favours it.

CREATE FUNCTION redact_bench_luhn(digits text) RETURNS boolean
LANGUAGE plpgsql IMMUTABLE STRICT AS $$
DECLARE
    s int := 0;
    d int;
    n int := length(digits);
BEGIN
    FOR i IN 1..n LOOP
        d := ascii(substr(digits, n - i + 1, 1)) - 48;
        IF i % 2 = 0 THEN
            d := d * 2;
            IF d > 9 THEN
                d := d - 9;
            END IF;
        END IF;
        s := s + d;
    END LOOP;
    RETURN s % 10 = 0;
END $$;

CREATE FUNCTION redact_bench_regexp(t text) RETURNS text
LANGUAGE plpgsql IMMUTABLE STRICT AS $$
DECLARE
    m text;
    digits text;
    res text := t;
BEGIN
    FOR m IN SELECT (regexp_matches(t, '(?<![0-9])[1-9](?:[ -]?[0-9]){12,18}(?![0-9])', 'g'))[1] LOOP
        digits := translate(m, ' -', '');
        IF redact_bench_luhn(digits) THEN
            res := replace(res, m, repeat('*', length(digits) - 4) || right(digits, 4));
        END IF;
    END LOOP;
    RETURN res;
END $$;

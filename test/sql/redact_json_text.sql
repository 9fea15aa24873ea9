-- redact(text) on a JSON document (what a driver sends for a JSON value
-- without a cast): scrubbed as redact(jsonb) scrubs it, and still valid
-- JSON, for generated documents with card numbers as JSON numbers and
-- strings (every separator style, escaped digits), sensitive keys at any
-- depth, and card numbers in keys; any other text is scrubbed as text.
CREATE FUNCTION pg_temp.luhn_pan(prefix text, len int, seed int) RETURNS text
LANGUAGE plpgsql AS $$
DECLARE
    body text := prefix;
    total int := 0;
    d int;
BEGIN
    WHILE length(body) < len - 1 LOOP
        body := body || ((seed * 7 + length(body) * 13) % 10)::text;
    END LOOP;
    FOR i IN REVERSE length(body)..1 LOOP
        d := substr(body, i, 1)::int;
        IF (length(body) - i) % 2 = 0 THEN
            d := d * 2;
            IF d > 9 THEN d := d - 9; END IF;
        END IF;
        total := total + d;
    END LOOP;
    RETURN body || ((10 - total % 10) % 10)::text;
END $$;

-- pg_temp.doc(n): a document mixing what a payment payload holds
CREATE FUNCTION pg_temp.doc(n int) RETURNS text LANGUAGE sql AS $$
    WITH p AS (SELECT pg_temp.luhn_pan((ARRAY['4', '51', '37', '6011', '35'])[1 + n % 5],
                                       (ARRAY[16, 16, 15, 16, 16])[1 + n % 5], n) AS pan)
    SELECT CASE n % 6
        WHEN 0 THEN format('{"card": %s, "amount": %s}', pan, n)
        WHEN 1 THEN format('{"order": %s, "payment": {"card_number": "%s", "cvv": %s}}', n, pan, 100 + n % 900)
        WHEN 2 THEN format('[{"note": "paid with %s"}, %s, "%s"]',
                           regexp_replace(pan, '(\d{4})', '\1 ', 'g'), pan,
                           regexp_replace(pan, '(\d{4})(?=\d)', '\1-', 'g'))
        WHEN 3 THEN format('{"k%s": true, "list": [null, false, 1.5, {"pan": [%s]}]}', pan, pan)
        WHEN 4 THEN format(E'{\n  "memo": "\\u00%s%s",\n  "security_code": null\n}',
                           to_hex(ascii(substr(pan, 1, 1))), substr(pan, 2))
        ELSE format('{"nested": {"deeper": {"cardNumber": {"a": "%s"}}}, "ok": "%s"}', pan, n)
        END
    FROM p
$$;

CREATE FUNCTION pg_temp.check_docs(n int, OUT docs int, OUT invalid int, OUT differing int,
                                   OUT pans_left int)
LANGUAGE plpgsql AS $$
DECLARE
    d text;
    r text;
BEGIN
    docs := 0; invalid := 0; differing := 0; pans_left := 0;
    FOR i IN 1..n LOOP
        d := pg_temp.doc(i);
        r := payments.redact(d);
        docs := docs + 1;
        BEGIN
            IF r::jsonb IS DISTINCT FROM payments.redact(d::jsonb) THEN
                differing := differing + 1;
            END IF;
        EXCEPTION WHEN invalid_text_representation THEN
            invalid := invalid + 1;
        END;
        IF payments.contains_pan(r) THEN
            pans_left := pans_left + 1;
        END IF;
    END LOOP;
END $$;

SELECT * FROM pg_temp.check_docs(600);

-- examples, as they come out
SELECT pg_temp.doc(n) AS document, payments.redact(pg_temp.doc(n)) AS redacted
FROM generate_series(0, 5) AS n;

-- not a JSON object or array: text rules (a lone number is a card number)
SELECT payments.redact('4111111111111111') AS bare_number,
       payments.redact('{"card": 4111111111111111') AS broken_json,
       payments.redact('{"a": 1} 4111111111111111') AS json_then_text;
-- a redact_trigger text column holding JSON keeps it JSON
CREATE TEMP TABLE payloads (body text, note varchar(40));
CREATE TRIGGER payloads_redact BEFORE INSERT ON payloads
    FOR EACH ROW EXECUTE FUNCTION payments.redact_trigger();
INSERT INTO payloads VALUES ('{"card": 4111111111111111, "cvv": 123}', '{"card": 4111111111111111}');
SELECT body, body::jsonb IS NOT NULL AS body_is_json, note FROM payloads;

-- redact_generated: generated card numbers in hostile contexts, through the
-- SQL functions, with a fixed seed (test/fuzz/fuzz_redact_gen.c runs the
-- same properties with random seeds).  Luhn-valid PANs of every brand and
-- length, in every separator style, after and before numbers, years,
-- quantities, '*', '**', '+', '#', '>', backticks, comment markers and
-- markdown, and inside JSON, XML, URLs and CSV.  For each: contains_pan
-- is true, redact leaves no 7 consecutive digits of the PAN (separators
-- ignored), with either mask, redacting again changes nothing, and
-- redact_trigger stores no PAN.

SELECT setseed(0.1111);

-- A Luhn-valid PAN: the prefix, random digits, the check digit.
CREATE FUNCTION pg_temp.gen_pan(prefix text, n int) RETURNS text
LANGUAGE plpgsql AS $$
DECLARE
    body text := prefix;
    s int := 0;
    d int;
BEGIN
    WHILE length(body) < n - 1 LOOP
        body := body || floor(random() * 10)::int;
    END LOOP;
    FOR i IN 1..n - 1 LOOP
        d := substr(body, n - i, 1)::int;
        IF i % 2 = 1 THEN
            d := d * 2;
            IF d > 9 THEN d := d - 9; END IF;
        END IF;
        s := s + d;
    END LOOP;
    RETURN body || ((10 - s % 10) % 10);
END $$;

-- The PAN written with separators: none, fours, Amex/Diners 4-6-x, 4-3-3-3.
CREATE FUNCTION pg_temp.grouped(pan text, style int, sep text) RETURNS text
LANGUAGE sql AS $$
SELECT CASE
    WHEN style = 0 THEN pan
    WHEN style = 2 AND length(pan) IN (14, 15)
        THEN substr(pan, 1, 4) || sep || substr(pan, 5, 6) || sep || substr(pan, 11)
    WHEN style = 3 AND length(pan) = 13
        THEN substr(pan, 1, 4) || sep || substr(pan, 5, 3) || sep || substr(pan, 8, 3) || sep || substr(pan, 11)
    ELSE array_to_string(ARRAY(SELECT substr(pan, i, 4) FROM generate_series(1, length(pan), 4) AS i), sep)
END $$;

CREATE TEMP TABLE brands (prefix text, n int);
INSERT INTO brands VALUES
    ('4', 13), ('4', 16), ('4', 19), ('51', 16), ('55', 16), ('2221', 16), ('2720', 16),
    ('34', 15), ('37', 15), ('6011', 16), ('6011', 19), ('644', 16), ('65', 19),
    ('36', 14), ('300', 14), ('38', 16), ('3528', 16), ('3589', 19), ('62', 17),
    ('62', 18), ('50', 16), ('6759', 13), ('58', 19), ('1', 15), ('2200', 16),
    ('60', 16), ('81', 16), ('508', 16), ('9792', 16), ('6759', 12), ('50', 12);

CREATE TEMP TABLE contexts (before text, after text);
INSERT INTO contexts VALUES
    ('card ', ''), ('qty 6 ', ' qty 3'), ('ref 1997 ', ' 2024'), ('2024 ', ' 12'),
    ('order 790903096570 ', ''), ('* ', ' *'), ('** ', ''), ('**', '**'), ('*', '*'),
    ('+', ''), ('+1 ', ''), ('#', ''), ('> ', ''), ('`', '`'), ('/* ', ' */'),
    ('-- ', ''), ('<!-- ', ' -->'), ('- ', ' 6'), ('**Card:** ', ''),
    ('{"card": "', '"}'), ('<pan>', '</pan>'), ('<card><number>', '</number></card>'),
    ('https://shop.test/pay?card=', '&x=1'), ('a,b,', ',c,d'), ('note=paid+with+', ''),
    ('| ', ' |'), ('id 42, amount 19.99, card ', ' exp 12/26'), ('paid 3 x 25 with ', '.'),
    ('tel +44 20 7946 0958 ', ''), ('x', ' 123'), ('"', '",'), ('(', ')');

CREATE TEMP TABLE cards AS
SELECT g, pan, style,
       CASE WHEN length(pan) = 12 THEN 'maestro ' ELSE c.before END
       || pg_temp.grouped(pan, style, sep) || c.after AS input
FROM (SELECT g, pg_temp.gen_pan(b.prefix, b.n) AS pan,
             floor(random() * 4)::int AS style,
             (ARRAY[' ', '-', E'\u00a0'])[1 + floor(random() * 3)::int] AS sep,
             1 + floor(random() * (SELECT count(*) FROM contexts))::int AS ctx
      FROM generate_series(1, 3000) AS g,
           LATERAL (SELECT * FROM brands ORDER BY random() + g * 0 LIMIT 1) AS b) AS r
JOIN (SELECT row_number() OVER () AS k, * FROM contexts) AS c ON c.k = r.ctx;

-- visible7: whether any 7 consecutive digits of pan are in t, separators
-- ignored (a '*' breaks a run).
CREATE FUNCTION pg_temp.visible7(pan text, t text) RETURNS boolean
LANGUAGE sql AS $$
SELECT EXISTS (SELECT 1 FROM generate_series(1, length(pan) - 6) AS i
               WHERE strpos(regexp_replace(t, '[^0-9*]', '', 'g'), substr(pan, i, 7)) > 0)
$$;

SELECT count(*) AS cards,
       count(DISTINCT length(pan)) AS lengths,
       count(DISTINCT style) AS styles,
       count(*) FILTER (WHERE NOT payments.contains_pan(input)) AS not_found,
       count(*) FILTER (WHERE pg_temp.visible7(pan, payments.redact(input))) AS leaked,
       count(*) FILTER (WHERE payments.redact(payments.redact(input)) <> payments.redact(input)) AS unstable,
       count(*) FILTER (WHERE payments.contains_pan(payments.redact(input))) AS found_again
FROM cards;

-- Any failing card, shown whole.
SELECT g, input, payments.redact(input) AS output FROM cards
WHERE NOT payments.contains_pan(input) OR pg_temp.visible7(pan, payments.redact(input))
ORDER BY g LIMIT 10;

-- first6_last4: the first six and the last four show, never 7 digits in a
-- row (test/fuzz/fuzz_redact_gen.c also checks each digit's position).
SET payments.pan_mask = 'first6_last4';
SELECT count(*) FILTER (WHERE pg_temp.visible7(pan, payments.redact(input))) AS leaked,
       count(*) FILTER (WHERE payments.redact(payments.redact(input)) <> payments.redact(input)) AS unstable
FROM cards;
RESET payments.pan_mask;

-- The same cards in a table with redact_trigger: nothing stored has a PAN.
CREATE TEMP TABLE tickets (body text);
CREATE TRIGGER tickets_redact BEFORE INSERT ON tickets
    FOR EACH ROW EXECUTE FUNCTION payments.redact_trigger();
INSERT INTO tickets SELECT input FROM cards;
SELECT count(*) AS stored, count(*) FILTER (WHERE payments.contains_pan(body)) AS with_pan
FROM tickets;

-- redact_trigger: payments.redact_trigger() on INSERT, UPDATE and COPY,
-- with named columns and with none, on text, varchar(n), char(n), jsonb,
-- text[] and a domain; and the errors for misuse.

CREATE DOMAIN memo AS text;
CREATE TABLE orders (
    id int PRIMARY KEY,
    note text,
    short varchar(20),
    fixed char(19),
    payload jsonb,
    tags text[],
    remark memo,
    amount numeric,
    untouched text
);

-- Every text-like column when no column is named.
CREATE TRIGGER orders_redact BEFORE INSERT OR UPDATE ON orders
    FOR EACH ROW EXECUTE FUNCTION payments.redact_trigger();

INSERT INTO orders VALUES
    (1, 'paid with 4111 1111 1111 1111, cvv 123', '4111-1111-1111-1111', '4111111111111111',
     '{"card_number": "4111111111111111", "note": "5555555555554444"}',
     ARRAY['4242424242424242', 'fine', NULL], 'card 378282246310005', 4111111111111111,
     'no card'),
    (2, 'nothing to hide', 'short text', 'fixed', '{"a": 1}', ARRAY['x'], 'memo', 1, NULL),
    (3, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL);
SELECT * FROM orders ORDER BY id;

-- varchar(20) and char(19) keep their length: the mask keeps the
-- separators and turns each masked digit into '*', so the row still fits.
SELECT id, short, length(short) AS short_len, fixed, length(fixed) AS fixed_len
FROM orders WHERE id = 1;
INSERT INTO orders (id, short) VALUES (4, '5555 5555 5555 4444'), (5, 'cvv: 1234 ok');
SELECT id, short FROM orders WHERE id IN (4, 5) ORDER BY id;

-- UPDATE goes through the trigger as well.
UPDATE orders SET note = 'customer now uses 6011-1111-1111-1117', tags = ARRAY['5105105105105100']
WHERE id = 2;
SELECT id, note, tags FROM orders WHERE id = 2;

-- COPY FROM STDIN fires the trigger for every row.
COPY orders (id, note, payload) FROM STDIN;
10	copied 4000056655665556	{"pan": "4000056655665556"}
11	copied nothing	{"x": 1}
12	track ;4111111111111111=25121010000000000?	{"t": "%B4111111111111111^DOE/JOHN^2512101?"}
\.
SELECT id, note, payload FROM orders WHERE id >= 10 ORDER BY id;

-- Named columns: only those are scrubbed.
CREATE TABLE tickets (id int, subject text, body varchar, raw text);
CREATE TRIGGER tickets_redact BEFORE INSERT OR UPDATE ON tickets
    FOR EACH ROW EXECUTE FUNCTION payments.redact_trigger('subject', 'body');
INSERT INTO tickets VALUES (1, 'card 4111111111111111', 'cvc: 999, pan 5555555555554444', '4111111111111111');
SELECT * FROM tickets;

-- A named column that does not exist, or of another type.
CREATE TABLE bad_cols (id int, note text);
CREATE TRIGGER bad_cols_missing BEFORE INSERT ON bad_cols
    FOR EACH ROW EXECUTE FUNCTION payments.redact_trigger('note', 'nope');
INSERT INTO bad_cols VALUES (1, 'x');
DROP TRIGGER bad_cols_missing ON bad_cols;
CREATE TRIGGER bad_cols_type BEFORE INSERT ON bad_cols
    FOR EACH ROW EXECUTE FUNCTION payments.redact_trigger('id');
INSERT INTO bad_cols VALUES (1, 'x');
DROP TRIGGER bad_cols_type ON bad_cols;

-- Fired the wrong way: AFTER, FOR EACH STATEMENT, on DELETE, or called directly.
CREATE TRIGGER bad_after AFTER INSERT ON bad_cols
    FOR EACH ROW EXECUTE FUNCTION payments.redact_trigger();
INSERT INTO bad_cols VALUES (1, 'x');
DROP TRIGGER bad_after ON bad_cols;
CREATE TRIGGER bad_statement BEFORE INSERT ON bad_cols
    FOR EACH STATEMENT EXECUTE FUNCTION payments.redact_trigger();
INSERT INTO bad_cols VALUES (1, 'x');
DROP TRIGGER bad_statement ON bad_cols;
CREATE TRIGGER bad_delete BEFORE DELETE ON bad_cols
    FOR EACH ROW EXECUTE FUNCTION payments.redact_trigger();
INSERT INTO bad_cols VALUES (1, 'x');
DELETE FROM bad_cols;
DROP TRIGGER bad_delete ON bad_cols;
SELECT payments.redact_trigger();

-- Stored generated columns are computed after BEFORE triggers: two halves
-- that are harmless alone make a PAN in the generated column.
CREATE TABLE halves (a text, b text,
    joined text GENERATED ALWAYS AS (a || ' ' || b) STORED);
CREATE TRIGGER halves_redact BEFORE INSERT OR UPDATE ON halves
    FOR EACH ROW EXECUTE FUNCTION payments.redact_trigger();
INSERT INTO halves (a, b) VALUES ('4111 1111', '1111 1111');
SELECT a, b, joined, payments.contains_pan(joined) AS joined_has_pan FROM halves;
-- The fix the README gives: a CHECK on the generated column, which is
-- checked after it is computed; the failing row in the error is masked.
DELETE FROM halves;
ALTER TABLE halves ADD CONSTRAINT joined_no_pan CHECK (NOT payments.contains_pan(joined));
INSERT INTO halves (a, b) VALUES ('4111 1111', '1111 1111');
INSERT INTO halves (a, b) VALUES ('order', '1234');
SELECT a, b, joined FROM halves;

DROP TABLE orders, tickets, bad_cols, halves;
DROP DOMAIN memo;

-- redact_log_statement: the server-log scrubber masks the logged statement
-- without changing what the statement's own code sees.  A trigger that
-- logs a warning with the statement (log_min_error_statement = warning)
-- and then reads current_query() gets the original text, card number and
-- all, for every row; the log gets the masked text (test/t/030).
CREATE TABLE query_seen (n int, q text);
CREATE FUNCTION note_query() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE WARNING 'row % logged with its statement', NEW.n;
    INSERT INTO query_seen VALUES (NEW.n, current_query());
    RETURN NEW;
END $$;
CREATE TABLE card_notes (n int, note text);
CREATE TRIGGER note_query BEFORE INSERT ON card_notes
    FOR EACH ROW EXECUTE FUNCTION note_query();

SET log_min_error_statement = warning;
INSERT INTO card_notes VALUES (1, 'card 4111 1111 1111 1111'), (2, 'again');
RESET log_min_error_statement;

SELECT n, q LIKE '%card 4111 1111 1111 1111%' AS original_text
FROM query_seen ORDER BY n;

DROP TABLE card_notes, query_seen;
DROP FUNCTION note_query();

-- payments install script, module redact: PCI redaction of card numbers,
-- CVVs and magnetic-stripe tracks in text, jsonb, table rows and logs.

CREATE FUNCTION payments.luhn_valid(text) RETURNS boolean
LANGUAGE c IMMUTABLE STRICT PARALLEL SAFE
AS 'MODULE_PATHNAME', 'payments_luhn_valid';

COMMENT ON FUNCTION payments.luhn_valid(text) IS
    'whether the digits pass the Luhn check (spaces and dashes ignored; any other character, or fewer than 2 digits, gives false)';

CREATE FUNCTION payments.contains_pan(text) RETURNS boolean
LANGUAGE c IMMUTABLE STRICT PARALLEL SAFE
AS 'MODULE_PATHNAME', 'payments_contains_pan';

COMMENT ON FUNCTION payments.contains_pan(text) IS
    'whether the text holds a card number (alone or in track data), by the rules of payments.redact; usable in CHECK constraints';

CREATE FUNCTION payments.redact(text) RETURNS text
LANGUAGE c STABLE STRICT PARALLEL SAFE
AS 'MODULE_PATHNAME', 'payments_redact_text';

COMMENT ON FUNCTION payments.redact(text) IS
    'mask card numbers (payments.pan_mask), replace labelled CVVs and track data';

CREATE FUNCTION payments.redact(jsonb) RETURNS jsonb
LANGUAGE c STABLE STRICT PARALLEL SAFE
AS 'MODULE_PATHNAME', 'payments_redact_jsonb';

COMMENT ON FUNCTION payments.redact(jsonb) IS
    'scrub every string and key, mask numbers that are card numbers, replace values of sensitive keys (cvv, card_number, pan, track1, ...) at any depth';

CREATE FUNCTION payments.redact_trigger() RETURNS trigger
LANGUAGE c
AS 'MODULE_PATHNAME', 'payments_redact_trigger';

COMMENT ON FUNCTION payments.redact_trigger() IS
    'BEFORE INSERT OR UPDATE FOR EACH ROW trigger: scrubs the named columns (text, varchar, char, jsonb, text[]), every such column when none is named';

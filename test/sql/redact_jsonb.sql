-- redact_jsonb: payments.redact(jsonb): strings scrubbed, numbers that are
-- PANs masked as strings, values of sensitive keys replaced at any depth,
-- keys scrubbed too; the result is always valid jsonb.

SELECT payments.redact(j) AS redacted
FROM (VALUES
    ('{"card": {"number": "4242424242424242", "exp_month": 12, "exp_year": 2027, "cvc": "123"}}'::jsonb),
    ('{"Card_Number": "4111 1111 1111 1111", "CVV": 123, "PAN": null, "Track2": ";4111111111111111=2512?"}'),
    ('{"payment": {"source": {"cardNumber": "x", "security-code": {"v": 1}, "pin": [1, 2]}}}'),
    ('{"amount": 4111111111111111, "small": 1999, "price": 4111111111111111.5, "neg": -4111111111111111}'),
    ('{"note": "customer gave cvv: 123 and card 5555 5555 5555 4444"}'),
    ('{"4111111111111111": "key holds a pan", "ok": true}'),
    ('[["4111111111111111"], [5555555555554444, {"deep": {"deeper": {"cvv2": "999"}}}]]'),
    ('"4111111111111111"'),
    ('4111111111111111'),
    ('"nothing here"'),
    ('{"id": "550e8400-e29b-41d4-a716-446655440000", "order": 100045678, "phone": "+1 415-555-2671"}'),
    ('{"log": "%B4111111111111111^DOE/JOHN^2512101000000000000?"}'),
    ('[]'),
    ('{}')
) AS t(j);

-- Unchanged documents come back as they were; changed ones are valid jsonb
-- whose text form parses again.
SELECT payments.redact('{"a": [1, "two", {"b": null}]}'::jsonb) = '{"a": [1, "two", {"b": null}]}' AS same,
       payments.redact('{"cvc": 123, "x": "4111111111111111"}'::jsonb)::text::jsonb IS NOT NULL AS reparses;

-- first6_last4 applies to jsonb as well.
SET payments.pan_mask = 'first6_last4';
SELECT payments.redact('{"pan_like": "4111111111111111"}'::jsonb);
RESET payments.pan_mask;

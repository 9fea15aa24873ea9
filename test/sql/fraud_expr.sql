-- Fraud expression rules: the condition language, its semantics on
-- contexts, and its errors, each with the position.
-- Start from empty fraud tables, whatever ran before.
TRUNCATE payments.fraud_rules, payments.fraud_lists,
    payments.fraud_evaluations, payments.fraud_velocity;

-- x(expr, ctx): whether an expression rule hits ctx, its error at run
-- time, or why it was refused.
CREATE FUNCTION x(expr text, ctx jsonb) RETURNS text
LANGUAGE plpgsql AS $$
DECLARE
    v jsonb;
BEGIN
    DELETE FROM payments.fraud_rules;
    INSERT INTO payments.fraud_rules (name, kind, params)
        VALUES ('x', 'expression', jsonb_build_object('expr', expr));
    SELECT e.verdicts -> 0 INTO v FROM payments.fraud_evaluate(ctx, record => false) AS e;
    RETURN coalesce('error: ' || (v ->> 'error'), (v ->> 'hit'));
EXCEPTION WHEN invalid_parameter_value OR invalid_datetime_format
               OR numeric_value_out_of_range THEN
    RETURN 'refused: ' || SQLERRM;
END
$$;

CREATE TEMP TABLE ctx AS SELECT '{
    "amount": 600, "amount_text": "600.00", "currency": "USD",
    "email": "Bob@Example.com", "user_id": 42, "vip": true,
    "ip_country": "FR", "billing_country": "US", "card_country": "US",
    "billing": {"address": {"country": "US", "zip": "10001"}},
    "coupon": null, "tags": ["a", "b"], "note": "it''s"
}'::jsonb AS c;

SELECT e, x(e, c) FROM ctx, (VALUES
    -- comparisons of numbers, numeric strings and strings
    ('amount > 500'), ('amount >= 600'), ('amount < 600'), ('amount <= 600.0'),
    ('amount = 600'), ('amount == 6e2'), ('amount != 600'), ('amount <> 601'),
    ('amount_text = 600'), ('amount_text > 599.99'), ('amount > -1.5'),
    ('currency = ''USD'''), ('currency = ''usd'''), ('currency < ''USE'''),
    ('ip_country != billing_country'), ('card_country = billing_country'),
    -- emails compare case-insensitively
    ('email = ''bob@example.COM'''), ('email IN (''x@y.z'', ''BOB@example.com'')'),
    -- booleans, numbers as keys, dotted paths
    ('vip = true'), ('vip != false'), ('user_id = 42'), ('user_id IN (1, 42)'),
    ('billing.address.country = card_country'), ('billing.address.zip = ''10001'''),
    ('note = ''it''''s'''),
    -- missing fields (absent or null): comparisons are false, NOT flips
    ('device_id = ''d1'''), ('device_id != ''d1'''), ('NOT device_id = ''d1'''),
    ('coupon = ''X'''), ('is_missing(coupon)'), ('is_missing(device_id)'),
    ('is_missing(amount)'), ('NOT is_missing(amount)'), ('is_missing(billing.address.zip)'),
    ('billing.nothing.country = ''US'''), ('device_id IN (''a'')'), ('device_id NOT IN (''a'')'),
    -- IN and NOT IN
    ('currency IN (''USD'', ''EUR'')'), ('currency NOT IN (''USD'', ''EUR'')'),
    ('amount IN (600)'), ('amount NOT IN (1, 2)'),
    -- AND, OR, NOT, precedence, parentheses, keywords in any case
    ('amount > 500 AND ip_country != billing_country'),
    ('amount > 700 OR currency = ''USD'''),
    ('amount > 700 OR currency = ''USD'' AND vip = false'),
    ('(amount > 700 OR currency = ''USD'') AND vip = false'),
    ('not amount > 700 and Not (vip = false)'),
    -- values that cannot be compared are the rule's error
    ('currency > 5'), ('vip > false'), ('tags = ''a'''), ('amount = ''six hundred''')
) AS t(e);

-- Lists: IN LIST and NOT IN LIST, emails folded.
INSERT INTO payments.fraud_lists (list_name, value) VALUES
    ('vip', 'bob@example.com'), ('users', '42'), ('countries', 'FR');
SELECT e, x(e, c) FROM ctx, (VALUES
    ('email IN LIST ''vip'''), ('email NOT IN LIST ''vip'''),
    ('user_id IN LIST ''users'''), ('ip_country IN LIST ''countries'''),
    ('billing_country IN LIST ''countries'''), ('device_id IN LIST ''vip'''),
    ('device_id NOT IN LIST ''vip'''), ('email in list ''nobody'''),
    ('tags IN LIST ''vip''')
) AS t(e);

-- Errors, with the 1-based position of the problem.
SELECT e, x(e, '{}') FROM (VALUES
    (''), ('   '), ('amount'), ('amount >'), ('> 5'), ('amount > 5 AND'),
    ('amount > 5 5'), ('(amount > 5'), ('amount > 5)'), ('currency = ''USD'),
    ('amount IN ()'), ('amount IN (1,)'), ('amount IN (field)'), ('amount IN LIST 5'),
    ('is_missing(5)'), ('is_missing amount'), ('amount > 1e'), ('amount > 1.5.2'),
    ('amount => 5'), ('a.b. = 1'), ('AND = 1'), ('amount > 5 # comment'),
    ('amount > 9e999999')
) AS t(e);
-- limits: length, nesting
SELECT x(repeat('(', 40) || 'a = 1' || repeat(')', 40), '{}');
SELECT x(repeat('NOT ', 40) || 'a = 1', '{}');
SELECT x('a = ''' || repeat('x', 5000) || '''', '{}');
-- a rule that does not parse is never stored
SELECT count(*) FROM payments.fraud_rules WHERE params ->> 'expr' = 'amount >';

TRUNCATE payments.fraud_rules, payments.fraud_lists,
    payments.fraud_evaluations, payments.fraud_velocity;

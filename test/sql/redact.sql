-- redact: payments.redact(text) over a corpus of positive and negative
-- cases.  Positives use the brands' published test numbers; every expected
-- output is written out by hand.  Each row shows the input, what redact
-- answered, and whether that is what the case expects; contains_pan must
-- agree with whether a PAN (or a track) was masked.

CREATE TEMP TABLE corpus (n int PRIMARY KEY, label text, input text, expected text);
INSERT INTO corpus VALUES
(1, 'visa 16', '4111111111111111', '************1111'),
(2, 'visa 16 stripe', '4242424242424242', '************4242'),
(3, 'visa 16 stripe debit', '4000056655665556', '************5556'),
(4, 'visa 13', '4222222222222', '*********2222'),
(5, 'visa 19', '4000000000000000006', '***************0006'),
(6, 'visa 19 other', '4917610000000000003', '***************0003'),
(7, 'mastercard', '5555555555554444', '************4444'),
(8, 'mastercard 51', '5105105105105100', '************5100'),
(9, 'mastercard 2-series', '2223003122003222', '************3222'),
(10, 'mastercard debit', '5200828282828210', '************8210'),
(11, 'amex', '378282246310005', '***********0005'),
(12, 'amex 34/37', '371449635398431', '***********8431'),
(13, 'amex corporate', '378734493671000', '***********1000'),
(14, 'discover', '6011111111111117', '************1117'),
(15, 'discover 2', '6011000990139424', '************9424'),
(16, 'diners 14', '30569309025904', '**********5904'),
(17, 'diners 38', '38520000023237', '**********3237'),
(18, 'diners 36', '36227206271667', '**********1667'),
(19, 'jcb', '3530111333300000', '************0000'),
(20, 'jcb 2', '3566002020360505', '************0505'),
(21, 'unionpay', '6200000000000005', '************0005'),
(22, 'unionpay 2', '6250941006528599', '************8599'),
(23, 'maestro 16', '6759649826438453', '************8453'),
(24, 'maestro 19', '6799990100000000019', '***************0019'),
(25, 'maestro 50', '5019717010103742', '************3742'),
(26, 'dashes', '4111-1111-1111-1111', '************1111'),
(27, 'spaces', '4111 1111 1111 1111', '************1111'),
(28, 'amex 4-6-5', '3782 822463 10005', '***********0005'),
(29, 'mixed separators', '4242 4242-4242 4242', '************4242'),
(30, 'two spaces do not join', '4111  1111 1111 1111', '4111  1111 1111 1111'),
(31, 'double dash does not join', '4111--1111-1111-1111', '4111--1111-1111-1111'),
(32, 'dot does not join', '4111.1111.1111.1111', '4111.1111.1111.1111'),
(33, 'at the start', '4111111111111111 was declined', '************1111 was declined'),
(34, 'at the end', 'declined: 4111111111111111', 'declined: ************1111'),
(35, 'glued to letters', 'card4111111111111111x', 'card************1111x'),
(36, 'glued underscore', 'pan_4111111111111111_end', 'pan_************1111_end'),
(37, 'glued multibyte', 'carte№4111111111111111€', 'carte№************1111€'),
(38, 'in parentheses', '(4111111111111111)', '(************1111)'),
(39, 'two in one text', 'old 4111111111111111 new 5555555555554444', 'old ************1111 new ************4444'),
(40, 'three comma-separated', '4111111111111111,4242424242424242,378282246310005', '************1111,************4242,***********0005'),
(41, 'json string', '{"card":"4111111111111111","exp":"12/26"}', '{"card":"************1111","exp":"12/26"}'),
(42, 'json number (a JSON text stays JSON)', '{"card":4111111111111111,"amount":1999}', '{"card":"************1111","amount":1999}'),
(43, 'url query', 'GET /pay?pan=4111111111111111&exp=1226 HTTP/1.1', 'GET /pay?pan=************1111&exp=1226 HTTP/1.1'),
(44, 'url path', 'https://api.example.com/cards/4242424242424242/verify', 'https://api.example.com/cards/************4242/verify'),
(45, 'form body', 'name=Jo+Doe&number=5555-5555-5555-4444&cvc=', 'name=Jo+Doe&number=************4444&cvc='),
(46, 'xml', '<pan>378282246310005</pan>', '<pan>***********0005</pan>'),
(47, 'log line', '2026-11-22 00:12:01 UTC [4242] ERROR: charge failed for card 4000 0566 5566 5556 (insufficient funds)', '2026-11-22 00:12:01 UTC [4242] ERROR: charge failed for card ************5556 (insufficient funds)'),
(48, 'csv', '42,Jo Doe,6011111111111117,12/27', '42,Jo Doe,************1117,12/27'),
(49, 'tab separated', 'id	4111111111111111	ok', 'id	************1111	ok'),
(50, 'newline separated', 'a
4111111111111111
b', 'a
************1111
b'),
(51, 'quoted in sql', 'INSERT INTO t VALUES (''4111111111111111'')', 'INSERT INTO t VALUES (''************1111'')'),
(52, 'cvv after mastercard', '5555555555554444 737', '************4444 737'),
(53, 'chain with identifier around', 'ref 0000 4012 8888 8888 1881 0000', 'ref 0000 ************1881 0000'),
(54, 'digits after a pan', '4111111111111111 2024', '************1111 2024'),
(55, 'digits before a pan', '2024 4111111111111111', '2024 ************1111'),
(56, 'separator then pan', 'order 12-4111111111111111', 'order 12-************1111'),
(57, 'visa 16 then 3 digits', '4111 1111 1111 1111 123', '************1111 123'),
(58, 'visa 19 across groups', '4000 0000 0000 0000 006', '***************0006'),
(59, 'phone then pan', 'call +1 415 4111111111111111', 'call +1 415 ************1111'),
(60, 'leading zero', '0004111111111111111', '0004111111111111111'),
(61, 'luhn fails', '4111111111111112', '4111111111111112'),
(62, 'luhn fails spaced', '4111 1111 1111 1112', '4111 1111 1111 1112'),
(63, '12 digits', '411111111113', '411111111113'),
(64, '20-digit identifier', '41111111111111111111', '41111111111111111111'),
(65, '23-digit identifier', 'txn 12345678901234567890123', 'txn 12345678901234567890123'),
(66, 'identifier hides a pan', 'ref 04111111111111111100', 'ref 04111111111111111100'),
(67, 'amount with cents', 'amount 4111111111111111.25 USD', 'amount 4111111111111111.25 USD'),
(68, 'decimal before', 'ratio 0.4111111111111111', 'ratio 0.4111111111111111'),
(69, 'ip address', 'from 192.168.100.200 port 5432', 'from 192.168.100.200 port 5432'),
(70, 'version', 'PostgreSQL 15.20 on x86_64', 'PostgreSQL 15.20 on x86_64'),
(71, 'uuid', 'request 550e8400-e29b-41d4-a716-446655440000 done', 'request 550e8400-e29b-41d4-a716-446655440000 done'),
(72, 'uuid all digits', 'id 12345678-1234-4234-8234-123456789012', 'id 12345678-1234-4234-8234-123456789012'),
(73, 'sha256', 'sha256 e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855', 'sha256 e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855'),
(74, 'hex token with pan-like digits', 'token a1b4111111111111111c2d', 'token a1b4111111111111111c2d'),
(75, 'stripe-like id', 'pi_3Ma1b4242424242424242cd5', 'pi_3Ma1b4242424242424242cd5'),
(76, 'us phone', 'call (415) 555-2671 or +1 415-555-2671', 'call (415) 555-2671 or +1 415-555-2671'),
(77, 'phone then date', '+1 415-555-2671 2024-01-15', '+1 415-555-2671 2024-01-15'),
(78, 'uk phone', '+44 20 7946 0958', '+44 20 7946 0958'),
(79, 'date', '2026-11-22', '2026-11-22'),
(80, 'timestamp', '2026-11-22 00:12:01.123456+00', '2026-11-22 00:12:01.123456+00'),
(81, 'expiry', 'exp 12/26', 'exp 12/26'),
(82, 'last four alone', 'card ending in 4242', 'card ending in 4242'),
(83, 'masked already', 'card ************1111', 'card ************1111'),
(84, 'masked first6', 'card 411111******1111', 'card 411111******1111'),
(85, 'order id', 'order 100045678', 'order 100045678'),
(86, 'iban', 'IBAN DE89 3704 0044 0532 0130 00', 'IBAN DE89 3704 0044 0532 0130 00'),
(87, 'iban compact', 'GB82WEST12345698765432', 'GB82WEST12345698765432'),
(88, 'brand names', 'Visa Mastercard Amex', 'Visa Mastercard Amex'),
(89, 'no digits', 'nothing to see here', 'nothing to see here'),
(90, 'empty', '', ''),
(91, 'short numbers', '1 22 333 4444 55555', '1 22 333 4444 55555'),
(92, 'zip codes', '94103-1234', '94103-1234'),
(93, 'luhn-valid 11 digits', '79927398713', '79927398713'),
(94, 'cvv colon', 'cvv: 123', 'cvv: [REDACTED_CVV]'),
(95, 'cvc json string (a sensitive key, as in jsonb)', '{"cvc":"1234"}', '{"cvc":"[REDACTED]"}'),
(96, 'cvc json number (a sensitive key, as in jsonb)', '{"cvc": 123}', '{"cvc": "[REDACTED]"}'),
(97, 'cvv2 equals', 'CVV2=123', 'CVV2=[REDACTED_CVV]'),
(98, 'cvc2', 'cvc2 456', 'cvc2 [REDACTED_CVV]'),
(99, 'cid', 'CID: 1234', 'CID: [REDACTED_CVV]'),
(100, 'security code', 'security code 123', 'security code [REDACTED_CVV]'),
(101, 'security_code', 'security_code=999', 'security_code=[REDACTED_CVV]'),
(102, 'upper case', 'CVV 321', 'CVV [REDACTED_CVV]'),
(103, 'query string', 'number=4111111111111111&cvv=123&exp=1226', 'number=************1111&cvv=[REDACTED_CVV]&exp=1226'),
(104, 'card_cvv key', 'card_cvv=999', 'card_cvv=[REDACTED_CVV]'),
(105, 'cvv 5 digits is no cvv', 'cvv 12345', 'cvv 12345'),
(106, 'cvv 2 digits is no cvv', 'cvv: 12', 'cvv: 12'),
(107, 'not a label: acid', 'acid 123', 'acid 123'),
(108, 'not a label: cidr', 'cidr 123', 'cidr 123'),
(109, 'label without value', 'cvv check passed', 'cvv check passed'),
(110, 'label with decimal', 'cvv 1.5', 'cvv 1.5'),
(111, 'track 1', '%B4111111111111111^DOE/JOHN^2512101000000000000?', '[REDACTED_TRACK]'),
(112, 'track 1 in text', 'swipe %B4111111111111111^DOE/JOHN^25121010000000?;x', 'swipe [REDACTED_TRACK];x'),
(113, 'track 1 no end sentinel', 'data %B4111111111111111^DOE/JOHN^2512101 end', 'data [REDACTED_TRACK] end'),
(114, 'track 2', ';4111111111111111=25121010000000000?', '[REDACTED_TRACK]'),
(115, 'track 2 no end sentinel', 't2=;5555555555554444=2512101000000', 't2=[REDACTED_TRACK]'),
(116, 'both tracks', '%B4111111111111111^DOE/JOHN^2512101?;4111111111111111=2512101?', '[REDACTED_TRACK][REDACTED_TRACK]'),
(117, 'percent semicolon question', '50% off; really? yes; 100%', '50% off; really? yes; 100%'),
(118, 'percent B not a track', 'grew %B12 ^ then', 'grew %B12 ^ then'),
(119, 'semicolon equals short', 'a;1234=5678?', 'a;1234=5678?'),
-- issue 11: ways a card number used to get through
(120, 'markdown bold label', '**Card:** 4111 1111 1111 1111', '**Card:** ************1111'),
(121, 'markdown bullet', '* 4111 1111 1111 1111', '* ************1111'),
(122, 'sql comment', '/* card 4111 1111 1111 1111 */', '/* card ************1111 */'),
(123, 'markdown bold around', '**4111 1111 1111 1111**', '**************1111**'),
(124, 'quantity before', 'qty 6 4111 1111 1111 1111', 'qty 6 ************1111'),
(125, 'reference before', 'ref 1997 4729 1428 9859 8463', 'ref 1997 ************8463'),
(126, 'order number before, label', 'card 790903096570 5555 5555 5555 4444 amount', 'card ************************4444 amount'),
(127, 'order number before, no label', 'order 790903096570 5555 5555 5555 4444', 'order 790903096570 ************4444'),
(128, 'plus in a query string', 'note=paid+with+4111111111111111', 'note=paid+with+************1111'),
(129, 'country code before', '+1 4111 1111 1111 1111', '+1 ************1111'),
(130, 'maestro 12 labelled', 'maestro 675971081392', 'maestro ********1392'),
(131, 'maestro 12 unlabelled', 'ref 675971081392', 'ref 675971081392'),
(132, 'zero fraction', 'n=4111111111111111.0', 'n=************1111.0'),
(133, 'xml cvv', '<cvv>123</cvv><cvc2>4567</cvc2>', '<cvv>[REDACTED_CVV]</cvv><cvc2>[REDACTED_CVV]</cvc2>'),
(134, 'track 2 bare', 'track2=4111111111111111=25121011234567890', 'track2=[REDACTED_TRACK]'),
(135, 'emv tag 57 lower case', 'data=57134761739001010010d2212201', 'data=[REDACTED_TRACK]'),
(136, 'emv tag 57 hex', '9F2608ab57134761739001010010D22122011143878089F5F2002', '9F2608ab[REDACTED_TRACK]5F2002'),
(137, 'cut value', 'Failing row contains (null, xxxxxxxx411111111111111...)', 'Failing row contains (null, xxxxxxxx***************...)'),
(138, 'cut short prefix stays', 'id 411111...', 'id 411111...'),
(139, 'phone pair', 'call 841-555-7951 564-555-1584 today', 'call 841-555-7951 564-555-1584 today'),
(140, 'epoch milliseconds', 'at 1733097600000 ms', 'at 1733097600000 ms'),
(141, 'uatp', 'uatp 135412345678911', 'uatp ***********8911'),
(142, 'phone then year', '+1 415-555-2671 2024-01-15', '+1 415-555-2671 2024-01-15')
;

SELECT n, label, input, payments.redact(input) AS output,
       payments.redact(input) = expected AS ok
FROM corpus ORDER BY n;

-- The summary: every case right, both kinds well represented.
SELECT count(*) AS cases,
       count(*) FILTER (WHERE input <> expected) AS positives,
       count(*) FILTER (WHERE input = expected) AS negatives,
       count(*) FILTER (WHERE payments.redact(input) IS DISTINCT FROM expected) AS wrong
FROM corpus;

-- contains_pan is true exactly where a PAN or a track was masked.
SELECT n, label, payments.contains_pan(input) AS contains_pan
FROM corpus
WHERE payments.contains_pan(input) <> (expected ~ '\*{4}|REDACTED_TRACK' AND input !~ '\*{4}')
ORDER BY n;

-- Redacting twice changes nothing (the masks are not found again).
SELECT n, label FROM corpus
WHERE payments.redact(payments.redact(input)) <> payments.redact(input);

-- first6_last4 keeps the first six digits too (PCI DSS display limit).
SET payments.pan_mask = 'first6_last4';
SELECT payments.redact('card 4111-1111-1111-1111 and 378282246310005 and 4222222222222');
SHOW payments.pan_mask;
RESET payments.pan_mask;
SET payments.pan_mask = 'all';

-- UTF-8 extras: no-break spaces as separators, fullwidth and Arabic-Indic digits.
SELECT payments.redact(E'4111\u00a01111\u00a01111\u00a01111') AS nbsp,
       payments.redact(E'\uff14\uff11\uff11\uff11\uff11\uff11\uff11\uff11\uff11\uff11\uff11\uff11\uff11\uff11\uff11\uff11') AS fullwidth,
       payments.redact(E'\u0664\u0662\u0664\u0662\u0664\u0662\u0664\u0662\u0664\u0662\u0664\u0662\u0664\u0662\u0664\u0662') AS arabic_indic;

-- luhn_valid: digits with optional spaces and dashes.
SELECT s, payments.luhn_valid(s)
FROM (VALUES ('4111111111111111'), ('4111-1111-1111-1111'), ('4111 1111 1111 1111'),
             ('4111111111111112'), ('79927398713'), ('0'), ('00'), (''), ('4111x1111'),
             ('12345678901234567890123456789012345678901234567897'), (NULL)) AS t(s);

-- NULL in, NULL out.
SELECT payments.redact(NULL::text) IS NULL AS text_null,
       payments.redact(NULL::jsonb) IS NULL AS jsonb_null,
       payments.contains_pan(NULL) IS NULL AS contains_null;

-- Text without anything to scrub is returned as it is, even a large one.
SELECT payments.redact(repeat('no card here, ', 100000)) = repeat('no card here, ', 100000) AS same;
SELECT length(payments.redact(repeat('x 4111111111111111 ', 100000))) AS masked_length;

-- contains_pan in a CHECK constraint.
CREATE TEMP TABLE notes (body text CHECK (NOT payments.contains_pan(body)));
INSERT INTO notes VALUES ('customer called about order 1234');
INSERT INTO notes VALUES ('customer read out 4242 4242 4242 4242');
SELECT body FROM notes;

-- The counter of masked PANs moves (the test cluster preloads the library).
SELECT value AS before FROM payments.stats WHERE name = 'redact_pans_masked' \gset
SELECT payments.redact('4111111111111111 and 5555555555554444 cvv 123');
SELECT value - :before AS masked FROM payments.stats WHERE name = 'redact_pans_masked';

-- The functions' volatility: contains_pan is usable in CHECK and indexes,
-- redact depends on payments.pan_mask.
SELECT p.oid::regprocedure, p.provolatile, p.proisstrict, p.proparallel
FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace AND n.nspname = 'payments'
WHERE p.proname IN ('redact', 'contains_pan', 'luhn_valid', 'redact_trigger')
ORDER BY p.oid::regprocedure::text;

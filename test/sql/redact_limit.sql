-- redact_limit: a text whose scrubbed form would be larger than a text value
-- can be (1 GB) is refused with ERROR 54000 before any output is
-- allocated, never a crash.  480 MB of "cvv 123 " would grow to 1.14 GB.
SELECT length(payments.redact(repeat('cvv 123 ', 60000000)));

-- The same text in a size that fits is scrubbed whole.
SELECT length(payments.redact(repeat('cvv 123 ', 1000000))) AS scrubbed_length,
       payments.redact(repeat('cvv 123 ', 1000000)) = repeat('cvv [REDACTED_CVV] ', 1000000) AS all_replaced;

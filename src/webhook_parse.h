/*-------------------------------------------------------------------------
 *
 * webhook_parse.h
 *	  Pure-C parsers of webhook signature headers.
 *
 * Everything here works on (pointer, length) input that may hold any bytes
 * and writes only into caller-provided fixed-size structs: no allocation,
 * no server, no errors thrown.  A parser answers true with its results, or
 * false when the input is malformed.  The SQL wrapper (webhook.c) and the
 * libFuzzer targets (test/fuzz/fuzz_webhook_*.c) are its only callers.
 *
 *-------------------------------------------------------------------------
 */
#ifndef PAYMENTS_WEBHOOK_PARSE_H
#define PAYMENTS_WEBHOOK_PARSE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Length of an HMAC-SHA256 signature, in bytes. */
#define WH_MAC_LEN 32

/*
 * Candidate signatures kept from one header.  A header naming more v1
 * signatures than this is refused as malformed rather than truncated, so
 * that no signature a sender put in the header is silently ignored.
 */
#define WH_MAX_SIGS 16

/* Longest header value parsed at all; longer ones are malformed. */
#define WH_MAX_HEADER_LEN 8192

/* Longest event or message id taken from a header or a body. */
#define WH_MAX_ID_LEN 1024

/*
 * Largest accepted unix timestamp: 9999-12-31 23:59:59 UTC, so that every
 * accepted value is a valid timestamptz.
 */
#define WH_MAX_UNIX_TIME INT64_C(253402300799)

/* What a signature header said. */
typedef struct WhSignatures
{
	int			nsigs;			/* candidate signatures in sigs[] */
	uint8_t		sigs[WH_MAX_SIGS][WH_MAC_LEN];
	bool		has_timestamp;	/* Stripe's t=...; false for the others */
	int64_t		timestamp;		/* unix seconds, when has_timestamp */
	const char *ts;				/* the timestamp as written in the header */
	size_t		ts_len;
} WhSignatures;

extern bool wh_parse_timestamp(const char *s, size_t len, int64_t *out);
extern int	wh_hex_decode(const char *s, size_t len, uint8_t *out, size_t cap);
extern int	wh_base64_decode(const char *s, size_t len, uint8_t *out, size_t cap);

extern bool wh_parse_stripe(const char *h, size_t len, WhSignatures *out);
extern bool wh_parse_standard(const char *h, size_t len, WhSignatures *out);
extern bool wh_parse_github(const char *h, size_t len, WhSignatures *out);
extern bool wh_parse_shopify(const char *h, size_t len, WhSignatures *out);
extern bool wh_parse_slack(const char *h, size_t len, WhSignatures *out);

extern bool wh_standard_secret(const char *s, size_t len,
							   uint8_t *out, size_t cap, size_t *outlen);
extern bool wh_json_top_string(const char *json, size_t len, const char *key,
							   const char **val, size_t *val_len);

#endif							/* PAYMENTS_WEBHOOK_PARSE_H */

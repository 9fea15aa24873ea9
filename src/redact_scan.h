/*-------------------------------------------------------------------------
 *
 * redact_scan.h
 *	  Pure-C scanner of card data (PANs, labelled CVVs, magnetic tracks).
 *
 * One left-to-right pass over (pointer, length) input that may hold any
 * bytes: no allocation, no server, no errors thrown, no regex.  The scanner
 * reports what it finds as spans, in order and never overlapping, to a
 * callback; rs_redact writes the scrubbed text into a caller's buffer.
 * redact.c (SQL functions, trigger, log hook), the libFuzzer target
 * test/fuzz/fuzz_redact_scan.c and the bench program use it.
 *
 * Output size: the scrubbed text is never longer than
 * RS_OUT_MAX(len) bytes (a CVV of 3 digits after a label of at least 3
 * letters and one separator grows by at most 13 bytes; masks and track
 * replacements never grow), and with keep_length it has exactly as many
 * characters as the input and never more bytes.
 *
 *-------------------------------------------------------------------------
 */
#ifndef PAYMENTS_REDACT_SCAN_H
#define PAYMENTS_REDACT_SCAN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Worst-case length of rs_redact's output for an input of len bytes. */
#define RS_OUT_MAX(len) (3 * (size_t) (len) + 16)

/* What replaces a labelled CVV value and a whole track. */
#define RS_CVV_TEXT "[REDACTED_CVV]"
#define RS_TRACK_TEXT "[REDACTED_TRACK]"

/*
 * PAN digits: the fewest and most a PAN has; a Maestro PAN of 12 digits
 * counts only where a card label names it.
 */
#define RS_PAN_MIN 13
#define RS_PAN_MAX 19
#define RS_PAN_MIN_LABELLED 12

/* How a PAN is masked. */
typedef enum RsMaskStyle
{
	RS_MASK_LAST4,				/* ************1111 */
	RS_MASK_FIRST6_LAST4		/* 411111******1111 */
} RsMaskStyle;

/* Options of one scan. */
typedef struct RsOptions
{
	RsMaskStyle mask;
	bool		keep_length;	/* mask in place: same number of characters */
	bool		utf8;			/* also NBSP separators, non-ASCII digits */
} RsOptions;

/* What a span holds. */
typedef enum RsKind
{
	RS_PAN,						/* digits and separators of a card number */
	RS_CVV,						/* the digits of a labelled CVV */
	RS_TRACK					/* a whole track 1 or track 2 */
} RsKind;

/* One finding: bytes [start, end) of the input. */
typedef struct RsSpan
{
	size_t		start;
	size_t		end;
	RsKind		kind;
	int			ndigits;		/* RS_PAN: digits in the span */
	bool		prefix;			/* RS_PAN: cut short ("..."), mask every digit */
	bool		json_quote;		/* RS_CVV: a bare JSON number, quote it */
} RsSpan;

/* Called for each span in order; answer false to stop the scan. */
typedef bool (*RsCallback) (void *arg, const RsSpan *span);

extern size_t rs_scan(const char *s, size_t len, const RsOptions *opt,
					  RsCallback cb, void *arg);
extern size_t rs_scan_all(const char *s, size_t len, const RsOptions *opt,
						  RsCallback cb, void *arg);
extern bool rs_quiet(const char *s, size_t len, const RsOptions *opt);
extern size_t rs_redacted_len(const char *s, size_t len, const RsOptions *opt,
							  size_t *nspans, size_t *npans);
extern size_t rs_redact(const char *s, size_t len, const RsOptions *opt,
						char *out, size_t *npans);
extern bool rs_contains_pan(const char *s, size_t len, const RsOptions *opt);
extern int	rs_luhn_text(const char *s, size_t len);
extern bool rs_luhn(const uint8_t *d, int n);

#endif							/* PAYMENTS_REDACT_SCAN_H */

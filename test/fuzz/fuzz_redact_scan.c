// sources: src/redact_scan.c
/*
 * fuzz_redact_scan.c
 *	  libFuzzer target of the card-data scanner (rs_scan, rs_redact).
 *
 * The first input byte picks the options (mask style, keep_length, utf8);
 * the rest is the text.  Invariants, for every option set:
 *	- spans are in order, inside the input, never overlapping, and
 *	  rs_redacted_len agrees with what rs_redact writes;
 *	- the output fits RS_OUT_MAX; with keep_length it has exactly as many
 *	  characters as the input and never more bytes;
 *	- the output has no more ASCII digits than the input, and scrubbing
 *	  it again can only mask more: no more digits come back, and with
 *	  keep_length only digits (and track text) turn into '*'.  (That a
 *	  second scrub changes nothing and finds no PAN is checked on
 *	  generated cards in fuzz_redact_gen.c: in byte soup, masking one
 *	  number can change how a neighbour next to it reads.)
 *	- a PAN span holds at least 12 digits (a PAN, or overlapping ones),
 *	  or is a value cut short, and its digits are all counted;
 *	- rs_quiet, rs_scan's shortcut, never says "no span" of a text in which
 *	  every rule (rs_scan_all) finds one.
 */
#include <stdlib.h>
#include <string.h>

#include "redact_scan.h"

int			LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* State of the span checker. */
typedef struct FuzzCheck
{
	const char *s;
	size_t		len;
	size_t		last_end;
	const RsOptions *opt;
} FuzzCheck;

/* ascii_digits - how many ASCII digits s[0..len) has. */
static size_t
ascii_digits(const char *s, size_t len)
{
	size_t		n = 0;

	for (size_t i = 0; i < len; i++)
		n += (s[i] >= '0' && s[i] <= '9');
	return n;
}

/* chars - how many UTF-8 characters (non-continuation bytes). */
static size_t
chars(const char *s, size_t len)
{
	size_t		n = 0;

	for (size_t i = 0; i < len; i++)
		n += ((unsigned char) s[i] & 0xc0) != 0x80;
	return n;
}

/* check_span - abort on a span out of order, out of bounds or not a PAN. */
static bool
check_span(void *arg, const RsSpan *span)
{
	FuzzCheck  *c = (FuzzCheck *) arg;

	if (span->start < c->last_end || span->end <= span->start || span->end > c->len)
		abort();
	c->last_end = span->end;
	if (span->kind == RS_PAN)
	{
		if (span->ndigits < (span->prefix ? 1 : RS_PAN_MIN_LABELLED))
			abort();
		if (ascii_digits(c->s + span->start, span->end - span->start) > (size_t) span->ndigits)
			abort();
	}
	return true;
}

/* check_options - every invariant for one option set. */
static void
check_options(const char *s, size_t len, const RsOptions *opt)
{
	FuzzCheck	c = {s, len, 0, opt};
	size_t		nspans,
				npans,
				olen,
				olen2,
				np;
	char	   *out,
			   *out2;

	rs_scan(s, len, opt, check_span, &c);
	if (rs_quiet(s, len, opt) && rs_scan_all(s, len, opt, NULL, NULL) != 0)
		abort();
	olen = rs_redacted_len(s, len, opt, &nspans, &npans);
	if (olen > RS_OUT_MAX(len))
		abort();
	out = malloc(RS_OUT_MAX(len));
	if (rs_redact(s, len, opt, out, &np) != olen || np != npans)
		abort();
	if (nspans == 0 && (olen != len || memcmp(out, s, len) != 0))
		abort();
	if (opt->keep_length && (olen > len || chars(out, olen) != chars(s, len)))
		abort();
	if (ascii_digits(out, olen) > ascii_digits(s, len))
		abort();
	out2 = malloc(RS_OUT_MAX(olen));
	olen2 = rs_redact(out, olen, opt, out2, &np);
	if (ascii_digits(out2, olen2) > ascii_digits(out, olen))
		abort();
	if (opt->keep_length)
	{
		if (olen2 > olen || chars(out2, olen2) != chars(out, olen))
			abort();
		for (size_t i = 0; i < olen2 && olen2 == olen; i++)
		{
			if (out2[i] != out[i] && out2[i] != '*')
				abort();
		}
	}
	free(out2);
	free(out);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	RsOptions	opt;

	if (size < 1)
		return 0;
	opt.mask = (data[0] & 1) ? RS_MASK_FIRST6_LAST4 : RS_MASK_LAST4;
	opt.keep_length = (data[0] & 2) != 0;
	opt.utf8 = (data[0] & 4) != 0;
	check_options((const char *) data + 1, size - 1, &opt);
	return 0;
}

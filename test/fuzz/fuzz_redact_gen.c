// sources: src/redact_scan.c
/*
 * fuzz_redact_gen.c
 *	  libFuzzer target: generated card numbers in hostile contexts.
 *
 * The input seeds test/fuzz/redact_gen.h's generator; each run builds 64
 * Luhn-valid PANs of random brands and lengths, in random separator
 * styles, before and after numbers, years, asterisks, '+', markup, JSON,
 * XML, URLs and CSV, and aborts unless, for each:
 *	- rs_contains_pan finds it (with utf8 and, for ASCII text, without);
 *	- scrubbing with keep_length leaves no more of it visible than the
 *	  mask style allows (the last four; or the first six and last four);
 *	- the scrubbed text holds no PAN, and scrubbing it again changes
 *	  nothing, with and without keep_length.
 */
#include <stdlib.h>

#include "../fuzz/redact_gen.h"

int			LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* check_card - abort, saying why, when the card gets through. */
static void
check_card(const RgCard *c, bool utf8)
{
	static const RsMaskStyle styles[] = {RS_MASK_LAST4, RS_MASK_FIRST6_LAST4};
	char		out[RS_OUT_MAX(RG_TEXT_MAX)];
	char		again[RS_OUT_MAX(RS_OUT_MAX(RG_TEXT_MAX))];

	for (int k = 0; k < 2; k++)
	{
		RsOptions	opt = {styles[k], true, utf8};
		size_t		np,
					olen;
		const char *why;

		if (!rs_contains_pan(c->text, c->len, &opt))
			why = "contains_pan is false";
		else
		{
			olen = rs_redact(c->text, c->len, &opt, out, &np);
			why = rg_check_masked(c, out, olen, styles[k]);
		}
		for (int keep = 0; keep < 2 && why == NULL; keep++)
		{
			opt.keep_length = keep;
			olen = rs_redact(c->text, c->len, &opt, out, &np);
			if (rs_contains_pan(out, olen, &opt))
				why = "the scrubbed text holds a PAN";
			else if (rs_redact(out, olen, &opt, again, &np) != olen ||
					 memcmp(out, again, olen) != 0)
				why = "scrubbing twice changes the text";
		}
		if (why != NULL)
		{
			fprintf(stderr, "%s (utf8 %d, mask %d): %s [PAN %s]\n", why, utf8, k,
					c->text, c->pan);
			abort();
		}
	}
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	RgRand		r = {UINT64_C(0x9e3779b97f4a7c15)};
	RgCard		c;

	for (size_t i = 0; i < size && i < 8; i++)
		r.s = (r.s << 8 | r.s >> 56) ^ data[i];
	if (r.s == 0)
		r.s = 1;
	for (int n = 0; n < 64; n++)
	{
		rg_card(&r, &c);
		check_card(&c, true);
		if (memchr(c.text, 0xc2, c.len) == NULL)
			check_card(&c, false);
	}
	return 0;
}

// sources: src/webhook_parse.c
/*
 * fuzz_webhook_stripe.c
 *	  libFuzzer target of wh_parse_stripe, the Stripe-Signature parser.
 *
 * Invariants: a parse never reads or writes out of bounds (ASan), accepts
 * only a header with a timestamp within range whose text lies inside the
 * input, keeps at most WH_MAX_SIGS signatures and never more than the
 * header has "v1=" entries.
 */
#include <stdlib.h>
#include <string.h>

#include "webhook_parse.h"

int			LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* count_v1 - how many entries of the header start with "v1=". */
static int
count_v1(const char *h, size_t len)
{
	int			n = 0;

	for (size_t i = 0; i + 3 <= len; i++)
	{
		if (memcmp(h + i, "v1=", 3) == 0)
			n++;
	}
	return n;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *h = (const char *) data;
	WhSignatures s;

	if (!wh_parse_stripe(h, size, &s))
		return 0;
	if (!s.has_timestamp || s.timestamp < 0 || s.timestamp > WH_MAX_UNIX_TIME)
		abort();
	if (s.ts < h || s.ts_len == 0 || s.ts + s.ts_len > h + size)
		abort();
	if (s.nsigs < 0 || s.nsigs > WH_MAX_SIGS || s.nsigs > count_v1(h, size))
		abort();
	if (size > WH_MAX_HEADER_LEN)
		abort();
	return 0;
}

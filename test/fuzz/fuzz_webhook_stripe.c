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

#include "fuzz_util.h"
#include "webhook_parse.h"

int			LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

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
	if (s.nsigs < 0 || s.nsigs > WH_MAX_SIGS || s.nsigs > fuzz_count(h, size, "v1="))
		abort();
	if (size > WH_MAX_HEADER_LEN)
		abort();
	return 0;
}

// sources: src/webhook_parse.c
/*
 * fuzz_webhook_shopify.c
 *	  libFuzzer target of wh_parse_shopify (X-Shopify-Hmac-Sha256) and the
 *	  base64 decoder under it.
 *
 * Invariants: no out-of-bounds access (ASan); an accepted header is the
 * canonical base64 of its one signature (encoding it back gives the input
 * exactly); any decoding is at most 3/4 of its input.
 */
#include <stdlib.h>
#include <string.h>

#include "webhook_parse.h"

int			LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* encode - canonical padded base64 of n bytes into out (4*ceil(n/3)+1). */
static void
encode(const uint8_t *in, size_t n, char *out)
{
	static const char a[] =
		"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
	size_t		o = 0;

	for (size_t i = 0; i < n; i += 3)
	{
		uint32_t	v = (uint32_t) in[i] << 16 |
			(i + 1 < n ? (uint32_t) in[i + 1] << 8 : 0) |
			(i + 2 < n ? in[i + 2] : 0);

		out[o++] = a[v >> 18];
		out[o++] = a[(v >> 12) & 63];
		out[o++] = i + 1 < n ? a[(v >> 6) & 63] : '=';
		out[o++] = i + 2 < n ? a[v & 63] : '=';
	}
	out[o] = '\0';
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *h = (const char *) data;
	WhSignatures s;
	uint8_t    *buf = malloc(size + 1);
	char	   *back = malloc(size + 8);
	int			n = wh_base64_decode(h, size, buf, size + 1);

	if (n >= 0)
	{
		if ((size_t) n > size / 4 * 3)
			abort();
		encode(buf, (size_t) n, back);
		if (strlen(back) != size || memcmp(back, h, size) != 0)
			abort();
	}
	if (wh_parse_shopify(h, size, &s))
	{
		encode(s.sigs[0], WH_MAC_LEN, back);
		if (s.nsigs != 1 || strlen(back) != size || memcmp(back, h, size) != 0)
			abort();
	}
	free(buf);
	free(back);
	return 0;
}

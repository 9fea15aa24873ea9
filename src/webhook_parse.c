/*-------------------------------------------------------------------------
 *
 * webhook_parse.c
 *	  Pure-C parsers of webhook signature headers, and their decoders.
 *
 * The headers come from the Internet, so every function here takes any
 * bytes, reads nothing beyond the length it is given, writes nothing beyond
 * the fixed-size output it is given, and answers false for anything it does
 * not fully understand.  Only standard C headers are included: the same
 * file links into the server and into the libFuzzer targets.
 *
 * Rules shared by every signature header:
 *	- at most WH_MAX_HEADER_LEN bytes, all printable ASCII (space and tab
 *	  allowed); anything else is malformed;
 *	- in the headers that carry a list (Stripe, Standard Webhooks), a
 *	  current-version signature that does not decode to exactly 32 bytes
 *	  matches nothing and other entries are skipped, as the providers'
 *	  libraries do; in the single-signature headers (GitHub, Shopify,
 *	  Slack) it makes the header malformed;
 *	- more than WH_MAX_SIGS current signatures make the header malformed.
 *
 *-------------------------------------------------------------------------
 */
#include <string.h>

#include "webhook_parse.h"

#define WH_STANDARD_SECRET_PREFIX "whsec_"

/*
 * wh_header_ok - whether a header value is short enough and printable
 * ASCII, the precondition of every signature-header parser.
 */
static bool
wh_header_ok(const char *h, size_t len)
{
	if (h == NULL || len == 0 || len > WH_MAX_HEADER_LEN)
		return false;
	for (size_t i = 0; i < len; i++)
	{
		unsigned char c = (unsigned char) h[i];

		if ((c < 0x20 && c != '\t') || c > 0x7e)
			return false;
	}
	return true;
}

/*
 * wh_span_eq - whether the span [s, s+len) is exactly the C string lit.
 */
static bool
wh_span_eq(const char *s, size_t len, const char *lit)
{
	return strlen(lit) == len && memcmp(s, lit, len) == 0;
}

/*
 * wh_parse_timestamp - decimal unix seconds: digits only, no sign, no
 * spaces, at most WH_MAX_UNIX_TIME; overflow is checked before it happens.
 */
bool
wh_parse_timestamp(const char *s, size_t len, int64_t *out)
{
	int64_t		v = 0;

	if (s == NULL || len == 0 || len > 20)
		return false;
	for (size_t i = 0; i < len; i++)
	{
		if (s[i] < '0' || s[i] > '9')
			return false;
		if (v > (WH_MAX_UNIX_TIME - (s[i] - '0')) / 10)
			return false;
		v = v * 10 + (s[i] - '0');
	}
	*out = v;
	return true;
}

/*
 * wh_hex_value - the value of one hex digit of either case, or -1.
 */
static int
wh_hex_value(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

/*
 * wh_hex_decode - decode hex of either case into out; the decoded length,
 * or -1 for an odd length, a non-hex character or more than cap bytes.
 */
int
wh_hex_decode(const char *s, size_t len, uint8_t *out, size_t cap)
{
	if (len % 2 != 0 || len / 2 > cap)
		return -1;
	for (size_t i = 0; i < len; i += 2)
	{
		int			hi = wh_hex_value(s[i]);
		int			lo = wh_hex_value(s[i + 1]);

		if (hi < 0 || lo < 0)
			return -1;
		out[i / 2] = (uint8_t) (hi << 4 | lo);
	}
	return (int) (len / 2);
}

/*
 * wh_b64_value - the value of one character of the standard base64
 * alphabet (RFC 4648 section 4), or -1.
 */
static int
wh_b64_value(char c)
{
	if (c >= 'A' && c <= 'Z')
		return c - 'A';
	if (c >= 'a' && c <= 'z')
		return c - 'a' + 26;
	if (c >= '0' && c <= '9')
		return c - '0' + 52;
	if (c == '+')
		return 62;
	if (c == '/')
		return 63;
	return -1;
}

/*
 * wh_base64_decode - decode canonical, padded standard base64 into out.
 *
 * Returns the decoded length, or -1 when the length is not a multiple of
 * four, a character is outside the alphabet, padding appears anywhere but
 * at the end, the unused bits of the last group are not zero (so that
 * exactly one string encodes given bytes) or the result exceeds cap.
 */
int
wh_base64_decode(const char *s, size_t len, uint8_t *out, size_t cap)
{
	size_t		pad = 0;
	size_t		n;
	uint32_t	acc = 0;
	size_t		o = 0;

	if (len % 4 != 0)
		return -1;
	while (pad < 2 && pad < len && s[len - 1 - pad] == '=')
		pad++;
	n = len / 4 * 3 - pad;
	if (n > cap)
		return -1;
	for (size_t i = 0; i < len - pad; i++)
	{
		int			v = wh_b64_value(s[i]);

		if (v < 0)
			return -1;
		acc = (acc << 6) | (uint32_t) v;
		if (i % 4 == 3)
		{
			out[o++] = (uint8_t) (acc >> 16);
			out[o++] = (uint8_t) (acc >> 8);
			out[o++] = (uint8_t) acc;
			acc = 0;
		}
	}
	if (pad == 2)
	{
		if (acc & 0x0f)
			return -1;
		out[o++] = (uint8_t) (acc >> 4);
	}
	else if (pad == 1)
	{
		if (acc & 0x03)
			return -1;
		out[o++] = (uint8_t) (acc >> 10);
		out[o++] = (uint8_t) (acc >> 2);
	}
	return (int) o;
}

/*
 * wh_add_sig - append one decoded signature; false when the decoding did
 * not give exactly WH_MAC_LEN bytes or the list is full.
 */
static bool
wh_add_sig(WhSignatures *out, const uint8_t *sig, int siglen)
{
	if (siglen != WH_MAC_LEN || out->nsigs >= WH_MAX_SIGS)
		return false;
	memcpy(out->sigs[out->nsigs++], sig, WH_MAC_LEN);
	return true;
}

/*
 * wh_add_hex_sig - decode a 64-digit hex signature and append it.
 */
static bool
wh_add_hex_sig(WhSignatures *out, const char *s, size_t len)
{
	uint8_t		sig[WH_MAC_LEN];

	if (len != 2 * WH_MAC_LEN)
		return false;
	return wh_add_sig(out, sig, wh_hex_decode(s, len, sig, sizeof(sig)));
}

/*
 * wh_add_b64_sig - decode a 44-character base64 signature and append it.
 */
static bool
wh_add_b64_sig(WhSignatures *out, const char *s, size_t len)
{
	uint8_t		sig[WH_MAC_LEN + 2];

	return wh_add_sig(out, sig, wh_base64_decode(s, len, sig, sizeof(sig)));
}

/*
 * wh_stripe_entry - one entry of a Stripe-Signature header, as Stripe's
 * libraries read it: "t=<unix>" is the timestamp (exactly once), "v1=<hex>"
 * a signature; a v1 value that is not 64 hex digits is a signature that
 * matches nothing, and every other entry (v0, schemes Stripe may add, an
 * empty entry, one without "=") is skipped.
 */
static bool
wh_stripe_entry(const char *e, size_t len, WhSignatures *out)
{
	const char *eq = memchr(e, '=', len);
	size_t		klen;
	uint8_t		sig[WH_MAC_LEN];

	if (eq == NULL)
		return true;
	klen = (size_t) (eq - e);
	if (wh_span_eq(e, klen, "t"))
	{
		if (out->has_timestamp ||
			!wh_parse_timestamp(eq + 1, len - klen - 1, &out->timestamp))
			return false;
		out->has_timestamp = true;
		out->ts = eq + 1;
		out->ts_len = len - klen - 1;
		return true;
	}
	if (wh_span_eq(e, klen, "v1") && len - klen - 1 == 2 * WH_MAC_LEN &&
		wh_hex_decode(eq + 1, len - klen - 1, sig, sizeof(sig)) == WH_MAC_LEN)
		return wh_add_sig(out, sig, WH_MAC_LEN);
	return true;
}

/*
 * wh_parse_stripe - Stripe-Signature: "t=<unix>,v1=<hex>[,v1=<hex>...]",
 * comma separated, optional blanks around entries.  The timestamp is
 * required; a header without any usable v1 entry parses with nsigs = 0 (it
 * then matches nothing).
 */
bool
wh_parse_stripe(const char *h, size_t len, WhSignatures *out)
{
	size_t		pos = 0;

	memset(out, 0, sizeof(*out));
	if (!wh_header_ok(h, len))
		return false;
	while (pos <= len)
	{
		const char *comma = memchr(h + pos, ',', len - pos);
		size_t		end = comma ? (size_t) (comma - h) : len;
		size_t		s = pos;
		size_t		e = end;

		while (s < e && (h[s] == ' ' || h[s] == '\t'))
			s++;
		while (e > s && (h[e - 1] == ' ' || h[e - 1] == '\t'))
			e--;
		if (s < e && !wh_stripe_entry(h + s, e - s, out))
			return false;
		pos = end + 1;
	}
	return out->has_timestamp;
}

/*
 * wh_standard_entry - one "<version>,<base64>" entry of a Standard Webhooks
 * webhook-signature header, as the Standard Webhooks libraries read it: v1
 * is HMAC-SHA256, and a v1 value that is not the base64 of 32 bytes is a
 * signature that matches nothing; other versions (v1a is ed25519) and
 * entries without a comma are skipped.
 */
static bool
wh_standard_entry(const char *e, size_t len, WhSignatures *out)
{
	const char *comma = memchr(e, ',', len);
	size_t		vlen;
	uint8_t		sig[WH_MAC_LEN + 2];

	if (comma == NULL)
		return true;
	vlen = (size_t) (comma - e);
	if (wh_span_eq(e, vlen, "v1") &&
		wh_base64_decode(comma + 1, len - vlen - 1, sig, sizeof(sig)) == WH_MAC_LEN)
		return wh_add_sig(out, sig, WH_MAC_LEN);
	return true;
}

/*
 * wh_parse_standard - webhook-signature: space separated "v1,<base64>"
 * entries.  At least one entry is required; a header with entries of
 * other versions only parses with nsigs = 0.
 */
bool
wh_parse_standard(const char *h, size_t len, WhSignatures *out)
{
	size_t		pos = 0;
	int			entries = 0;

	memset(out, 0, sizeof(*out));
	if (!wh_header_ok(h, len))
		return false;
	while (pos < len)
	{
		size_t		end;

		if (h[pos] == ' ' || h[pos] == '\t')
		{
			pos++;
			continue;
		}
		end = pos;
		while (end < len && h[end] != ' ' && h[end] != '\t')
			end++;
		if (!wh_standard_entry(h + pos, end - pos, out))
			return false;
		entries++;
		pos = end;
	}
	return entries > 0;
}

/*
 * wh_parse_prefixed_hex - "<prefix><64 hex digits>", exactly.
 */
static bool
wh_parse_prefixed_hex(const char *h, size_t len, const char *prefix,
					  WhSignatures *out)
{
	size_t		plen = strlen(prefix);

	memset(out, 0, sizeof(*out));
	if (!wh_header_ok(h, len) || len < plen || memcmp(h, prefix, plen) != 0)
		return false;
	return wh_add_hex_sig(out, h + plen, len - plen);
}

/*
 * wh_parse_github - X-Hub-Signature-256: "sha256=<64 hex digits>".
 */
bool
wh_parse_github(const char *h, size_t len, WhSignatures *out)
{
	return wh_parse_prefixed_hex(h, len, "sha256=", out);
}

/*
 * wh_parse_slack - X-Slack-Signature: "v0=<64 hex digits>"; the timestamp
 * comes from its own header.
 */
bool
wh_parse_slack(const char *h, size_t len, WhSignatures *out)
{
	return wh_parse_prefixed_hex(h, len, "v0=", out);
}

/*
 * wh_parse_shopify - X-Shopify-Hmac-Sha256: the base64 of the 32-byte
 * HMAC of the body, canonical and padded (44 characters).
 */
bool
wh_parse_shopify(const char *h, size_t len, WhSignatures *out)
{
	memset(out, 0, sizeof(*out));
	if (!wh_header_ok(h, len))
		return false;
	return wh_add_b64_sig(out, h, len);
}

/*
 * wh_standard_secret - the key bytes of a Standard Webhooks secret: the
 * base64 after an optional "whsec_" prefix; padding may be left out, as
 * some senders print secrets without it.  False if it does not decode or
 * is longer than cap.
 */
bool
wh_standard_secret(const char *s, size_t len, uint8_t *out, size_t cap,
				   size_t *outlen)
{
	size_t		plen = strlen(WH_STANDARD_SECRET_PREFIX);
	char		padded[4];
	size_t		whole;
	size_t		rest;
	int			n;
	int			m = 0;

	if (len >= plen && memcmp(s, WH_STANDARD_SECRET_PREFIX, plen) == 0)
	{
		s += plen;
		len -= plen;
	}
	rest = len % 4;
	whole = len - rest;
	if (rest == 1)
		return false;
	n = wh_base64_decode(s, whole, out, cap);
	if (n < 0 || (whole > 0 && s[whole - 1] == '=' && rest > 0))
		return false;
	if (rest > 0)
	{
		memcpy(padded, s + whole, rest);
		memset(padded + rest, '=', 4 - rest);
		m = wh_base64_decode(padded, 4, out + n, cap - (size_t) n);
		if (m < 0)
			return false;
	}
	*outlen = (size_t) (n + m);
	return true;
}

/*
 * wh_json_ws - skip JSON whitespace from *p.
 */
static size_t
wh_json_ws(const char *j, size_t len, size_t p)
{
	while (p < len && (j[p] == ' ' || j[p] == '\t' || j[p] == '\n' || j[p] == '\r'))
		p++;
	return p;
}

/*
 * wh_json_string - scan the JSON string starting at the quote j[p]; returns
 * the index just past its closing quote, or 0 if it is unterminated.
 * *escaped says whether it held a backslash.  A quote ends the string
 * unless an odd number of backslashes precede it; memchr keeps a long
 * string cheap.  Raw control characters are not checked: this finds where
 * a string ends, it does not validate it.
 */
static size_t
wh_json_string(const char *j, size_t len, size_t p, bool *escaped)
{
	size_t		start = p + 1;
	size_t		q = start;

	*escaped = false;
	while (q < len)
	{
		const char *quote = memchr(j + q, '"', len - q);
		size_t		bs = 0;

		if (quote == NULL)
			return 0;
		q = (size_t) (quote - j);
		while (q - bs > start && j[q - bs - 1] == '\\')
			bs++;
		if (bs % 2 == 0)
		{
			*escaped = memchr(j + start, '\\', q - start) != NULL;
			return q + 1;
		}
		q++;
	}
	return 0;
}

/* The characters wh_json_skip stops at inside a container. */
static const bool wh_json_special[256] = {
	['"'] = true, ['{'] = true, ['}'] = true, ['['] = true, [']'] = true,
};

/*
 * wh_json_skip - skip the JSON value starting at j[p], iteratively so that
 * deep nesting costs no stack; returns the index past it, or 0.  Bracket
 * kinds are not matched against each other: this only finds where a value
 * ends, the body's authenticity was established by its signature.
 */
static size_t
wh_json_skip(const char *j, size_t len, size_t p)
{
	size_t		depth = 0;
	bool		escaped;

	if (p >= len)
		return 0;
	if (j[p] == '"')
		return wh_json_string(j, len, p, &escaped);
	if (j[p] != '{' && j[p] != '[')
	{
		size_t		start = p;

		while (p < len && j[p] != ',' && j[p] != '}' && j[p] != ']' &&
			   j[p] != ' ' && j[p] != '\t' && j[p] != '\n' && j[p] != '\r')
			p++;
		return p > start ? p : 0;
	}
	while (p < len)
	{
		while (p < len && !wh_json_special[(unsigned char) j[p]])
			p++;
		if (p >= len)
			break;
		if (j[p] == '"')
		{
			p = wh_json_string(j, len, p, &escaped);
			if (p == 0)
				return 0;
			continue;
		}
		if (j[p] == '{' || j[p] == '[')
			depth++;
		else if (--depth == 0)
			return p + 1;
		p++;
	}
	return 0;
}

/*
 * wh_json_top_string - find the member key of the top-level JSON object in
 * json; true only when it appears exactly once and its value is a string
 * of 1 to WH_MAX_ID_LEN bytes without escapes, returned as a span of json.
 * Anything else (not an object, key absent or repeated, value not such a
 * string, broken JSON) gives false.
 */
bool
wh_json_top_string(const char *json, size_t len, const char *key,
				   const char **val, size_t *val_len)
{
	size_t		p = wh_json_ws(json, len, 0);
	int			found = 0;

	if (p >= len || json[p] != '{')
		return false;
	p = wh_json_ws(json, len, p + 1);
	if (p < len && json[p] == '}')
		return false;
	while (p < len && json[p] == '"')
	{
		bool		escaped;
		size_t		kend = wh_json_string(json, len, p, &escaped);
		bool		is_key;
		size_t		vend;

		if (kend == 0)
			return false;
		is_key = !escaped && wh_span_eq(json + p + 1, kend - p - 2, key);
		p = wh_json_ws(json, len, kend);
		if (p >= len || json[p] != ':')
			return false;
		p = wh_json_ws(json, len, p + 1);
		vend = wh_json_skip(json, len, p);
		if (vend == 0)
			return false;
		if (is_key)
		{
			found++;
			if (json[p] != '"' || memchr(json + p, '\\', vend - p) != NULL ||
				vend - p - 2 == 0 || vend - p - 2 > WH_MAX_ID_LEN)
				return false;
			*val = json + p + 1;
			*val_len = vend - p - 2;
		}
		p = wh_json_ws(json, len, vend);
		if (p < len && json[p] == '}')
			return found == 1;
		if (p >= len || json[p] != ',')
			return false;
		p = wh_json_ws(json, len, p + 1);
	}
	return false;
}

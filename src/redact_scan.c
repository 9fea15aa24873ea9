/*-------------------------------------------------------------------------
 *
 * redact_scan.c
 *	  Pure-C scanner of card data: PANs, labelled CVVs, magnetic tracks.
 *
 * The scan is driven by digits: bytes that cannot start a digit are
 * skipped 64 or 16 at a time with SSE2 (8 at a time without), and every
 * finding is decided around a run of digits with bounded local look-around
 * (a hex token is skipped whole once seen), so the pass is linear and never
 * backtracks.  Text without a digit yields no span at all.
 *
 * Rules (the README's section Redaction says the same for users):
 *	- A digit is ASCII 0-9; with utf8 also fullwidth (U+FF10-FF19),
 *	  Arabic-Indic (U+0660-0669) and extended Arabic-Indic (U+06F0-06F9).
 *	  A group is a maximal run of digits.  Two groups join across exactly
 *	  one separator: space or '-' (with utf8 also U+00A0, U+2007, U+202F).
 *	- Excluded groups never take part in a PAN and end a chain: 20 or more
 *	  digits (an identifier); touching '.' followed or preceded by a digit
 *	  (decimal, IP address, version); inside a UUID (8-4-4-4-12 hex) or a
 *	  hex token (a run of 20 or more hex characters with hex letters in at
 *	  least two separate places, as in a hash or an API id); at most 6
 *	  digits that reach a '*' over at most 6 digits (the visible part of an
 *	  already masked PAN, so that masking is idempotent).
 *	- A chain after '+' is a phone number while it holds at most 15 digits
 *	  (E.164); an IBAN (two capitals, check digits, 15-34 characters,
 *	  passing mod 97) is skipped whole.
 *	- A PAN is a run of whole consecutive groups of a chain, 13 to 19
 *	  digits, not starting with 0, passing Luhn.  At each starting group
 *	  the longest one whose length is valid for the brand its prefix names
 *	  wins, else the longest one; the scan goes on after it.
 *	- A CVV is a group of 3 or 4 digits right after a label (cvv, cvv2,
 *	  cvc, cvc2, cid, csc, security code, any case, not preceded by a
 *	  letter) and 1 to 8 of : = space tab " ' and backslash.
 *	- Track 1 is %B, 12-19 digits, '^', a name (at most 26 letters, spaces
 *	  and / . - ' ,), '^', at least 4 digits (expiry, service code,
 *	  discretionary data), then the end sentinel '?' if present; track 2 is
 *	  ';', 12-19 digits, '=', at least 4 digits, then digits and '=', then
 *	  '?' if present.  Without '?', a track that runs straight into a
 *	  letter, '.', '*' or a non-ASCII digit is none.
 *
 *-------------------------------------------------------------------------
 */
#include <string.h>
#ifdef __SSE2__
#include <emmintrin.h>
#endif

#include "redact_scan.h"

/* Groups held at once: enough for 19 digits of one-digit groups and more. */
#define RS_WINDOW 24

/* Digits of a group that are kept; longer groups are identifiers anyway. */
#define RS_GROUP_DIGITS 20

/* Shortest hex token, and how far a UUID is looked for around a group. */
#define RS_HEX_TOKEN_MIN 20
#define RS_UUID_LEN 36
#define RS_HEX_LOOKBACK 64

/* Longest name field of track 1 (ISO/IEC 7813). */
#define RS_TRACK1_NAME_MAX 26

/* One group of digits. */
typedef struct RsGroup
{
	size_t		start;
	size_t		end;
	int			ndigits;
	bool		excluded;
	size_t		skip_to;		/* excluded: where the scan resumes */
	uint8_t		d[RS_GROUP_DIGITS];
} RsGroup;

/* State of one scan. */
typedef struct RsScan
{
	const unsigned char *s;
	size_t		len;
	const RsOptions *opt;
	RsCallback	cb;
	void	   *arg;
	size_t		nspans;
	bool		stopped;
} RsScan;

/* CVV labels, lower case. */
static const char *const RsCvvLabels[] = {
	"cvv2", "cvc2", "cvv", "cvc", "cid", "csc",
	"security code", "security_code", "security-code", "securitycode",
};

/*
 * rs_digit_at - byte length of the digit starting at i (0 if none), and
 * its value.
 */
static inline int
rs_digit_at(const RsScan *sc, size_t i, uint8_t *val)
{
	const unsigned char *s = sc->s;
	unsigned char c = s[i];

	if (c >= '0' && c <= '9')
	{
		*val = c - '0';
		return 1;
	}
	if (!sc->opt->utf8 || c < 0xc0)
		return 0;
	if ((c == 0xd9 || c == 0xdb) && i + 1 < sc->len)
	{
		unsigned char lo = (c == 0xd9) ? 0xa0 : 0xb0;

		if (s[i + 1] >= lo && s[i + 1] <= lo + 9)
		{
			*val = s[i + 1] - lo;
			return 2;
		}
	}
	if (c == 0xef && i + 2 < sc->len && s[i + 1] == 0xbc &&
		s[i + 2] >= 0x90 && s[i + 2] <= 0x99)
	{
		*val = s[i + 2] - 0x90;
		return 3;
	}
	return 0;
}

/*
 * rs_sep_at - byte length of the separator starting at i, or 0.
 */
static inline int
rs_sep_at(const RsScan *sc, size_t i)
{
	const unsigned char *s = sc->s;

	if (i >= sc->len)
		return 0;
	if (s[i] == ' ' || s[i] == '-')
		return 1;
	if (!sc->opt->utf8)
		return 0;
	if (s[i] == 0xc2 && i + 1 < sc->len && s[i + 1] == 0xa0)
		return 2;
	if (s[i] == 0xe2 && i + 2 < sc->len && s[i + 1] == 0x80 &&
		(s[i + 2] == 0x87 || s[i + 2] == 0xaf))
		return 3;
	return 0;
}

/*
 * rs_sep_before - byte length of the separator ending right before i, or 0.
 */
static int
rs_sep_before(const RsScan *sc, size_t i)
{
	if (i >= 1 && (sc->s[i - 1] == ' ' || sc->s[i - 1] == '-'))
		return 1;
	if (i == 0 || sc->s[i - 1] < 0x80 || !sc->opt->utf8)
		return 0;
	if (i >= 2 && rs_sep_at(sc, i - 2) == 2)
		return 2;
	if (i >= 3 && rs_sep_at(sc, i - 3) == 3)
		return 3;
	return 0;
}

/* rs_is_hex - whether c is a hex digit of either case. */
static inline bool
rs_is_hex(unsigned char c)
{
	return (c >= '0' && c <= '9') || ((c | 0x20) >= 'a' && (c | 0x20) <= 'f');
}

/* rs_is_hex_letter - whether c is a-f or A-F. */
static inline bool
rs_is_hex_letter(unsigned char c)
{
	return (c | 0x20) >= 'a' && (c | 0x20) <= 'f';
}

/* rs_is_alpha - whether c is an ASCII letter. */
static inline bool
rs_is_alpha(unsigned char c)
{
	return (c | 0x20) >= 'a' && (c | 0x20) <= 'z';
}

/*
 * rs_uuid_at - whether the 36 bytes at p are a UUID (8-4-4-4-12 hex) that
 * no other hex character or dash touches.
 */
static bool
rs_uuid_at(const RsScan *sc, size_t p)
{
	const unsigned char *s = sc->s;

	if (p + RS_UUID_LEN > sc->len)
		return false;
	if (p > 0 && (rs_is_hex(s[p - 1]) || s[p - 1] == '-'))
		return false;
	if (p + RS_UUID_LEN < sc->len &&
		(rs_is_hex(s[p + RS_UUID_LEN]) || s[p + RS_UUID_LEN] == '-'))
		return false;
	for (int k = 0; k < RS_UUID_LEN; k++)
	{
		bool		dash = (k == 8 || k == 13 || k == 18 || k == 23);

		if (dash ? s[p + k] != '-' : !rs_is_hex(s[p + k]))
			return false;
	}
	return true;
}

/*
 * rs_uuid_end - the end of a UUID that holds the group [gs, ge), or 0.
 */
static size_t
rs_uuid_end(const RsScan *sc, size_t gs, size_t ge)
{
	const unsigned char *s = sc->s;
	size_t		b = gs,
				e = ge;
	size_t		cb = gs,
				ce = ge;

	/*
	 * Cheap filter first: the hex component holding the group is 8 hex
	 * characters followed by '-', 4 between dashes or 12 after a dash.
	 */
	while (cb > 0 && gs - cb < 12 && rs_is_hex(s[cb - 1]))
		cb--;
	while (ce < sc->len && ce - cb <= 12 && rs_is_hex(s[ce]))
		ce++;
	if (!((ce - cb == 8 && ce < sc->len && s[ce] == '-') ||
		  (ce - cb == 4 && cb > 0 && s[cb - 1] == '-' && ce < sc->len && s[ce] == '-') ||
		  (ce - cb == 12 && cb > 0 && s[cb - 1] == '-')))
		return 0;
	while (b > 0 && gs - b < RS_UUID_LEN && (rs_is_hex(s[b - 1]) || s[b - 1] == '-'))
		b--;
	while (e < sc->len && e - ge < RS_UUID_LEN && (rs_is_hex(s[e]) || s[e] == '-'))
		e++;
	if (e - b < RS_UUID_LEN)
		return 0;
	for (size_t p = b; p <= gs && p + RS_UUID_LEN <= e; p++)
	{
		if (p + RS_UUID_LEN >= ge && rs_uuid_at(sc, p))
			return p + RS_UUID_LEN;
	}
	return 0;
}

/*
 * rs_hex_token_end - the end of a hex token that holds the group [gs, ge),
 * or 0: a maximal run of hex characters, at least RS_HEX_TOKEN_MIN long,
 * with hex letters in two separate places (a PAN with a word glued to one
 * side is not a token).
 */
static size_t
rs_hex_token_end(const RsScan *sc, size_t gs, size_t ge)
{
	const unsigned char *s = sc->s;
	size_t		b = gs,
				e = ge;
	int			letter_runs = 0;
	bool		in_letters = false;

	while (b > 0 && gs - b < RS_HEX_LOOKBACK && rs_is_hex(s[b - 1]))
		b--;
	while (e < sc->len && rs_is_hex(s[e]))
		e++;
	if (e - b < RS_HEX_TOKEN_MIN)
		return 0;
	for (size_t p = b; p < e; p++)
	{
		bool		letter = rs_is_hex_letter(s[p]);

		if (letter && !in_letters)
			letter_runs++;
		in_letters = letter;
	}
	return letter_runs >= 2 ? e : 0;
}

/*
 * rs_digit_len_before - byte length of the digit ending right before i, or 0.
 */
static int
rs_digit_len_before(const RsScan *sc, size_t i)
{
	uint8_t		v;

	if (i >= 1 && sc->s[i - 1] >= '0' && sc->s[i - 1] <= '9')
		return 1;
	if (!sc->opt->utf8)
		return 0;
	if (i >= 2 && rs_digit_at(sc, i - 2, &v) == 2)
		return 2;
	if (i >= 3 && rs_digit_at(sc, i - 3, &v) == 3)
		return 3;
	return 0;
}

/*
 * rs_maybe_mask_or_sep - whether byte c may be '*' or part of a separator.
 */
static inline bool
rs_maybe_mask_or_sep(unsigned char c)
{
	return c == '*' || c == ' ' || c == '-' || c >= 0x80;
}

/*
 * rs_near_mask - whether the group [gs, ge) of n digits is part of the
 * visible head or tail (at most 6 digits, across separators) of a masked
 * PAN, i.e. a '*' is reached from it over at most 6 digits in all.
 */
static bool
rs_near_mask(const RsScan *sc, size_t gs, size_t ge, int n)
{
	const unsigned char *s = sc->s;
	size_t		p = gs;
	int			total = n,
				k;
	uint8_t		v;

	/* Most groups touch neither '*' nor a separator: answer at once. */
	if ((gs == 0 || !rs_maybe_mask_or_sep(s[gs - 1])) &&
		(ge >= sc->len || !rs_maybe_mask_or_sep(s[ge])))
		return false;
	/* The walks below stay within 6 digits and 7 separators of 3 bytes. */
	{
		size_t		lo = gs > 48 ? gs - 48 : 0;
		size_t		hi = sc->len - ge > 48 ? ge + 48 : sc->len;

		if (memchr(s + lo, '*', hi - lo) == NULL)
			return false;
	}
	for (;;)
	{
		if (p > 0 && s[p - 1] == '*')
			return true;
		if ((k = rs_sep_before(sc, p)) == 0 || p <= (size_t) k)
			break;
		p -= k;
		if (s[p - 1] == '*')
			return true;
		if (rs_digit_len_before(sc, p) == 0)
			break;
		while (total <= 6 && (k = rs_digit_len_before(sc, p)) > 0)
			p -= k, total++;
		if (total > 6)
			break;
	}
	total = n;
	p = ge;
	for (;;)
	{
		if (p < sc->len && s[p] == '*')
			return true;
		if ((k = rs_sep_at(sc, p)) == 0)
			break;
		p += k;
		if (p < sc->len && s[p] == '*')
			return true;
		if (p >= sc->len || rs_digit_at(sc, p, &v) == 0)
			break;
		while (total <= 6 && p < sc->len && (k = rs_digit_at(sc, p, &v)) > 0)
			p += k, total++;
		if (total > 6)
			break;
	}
	return false;
}

/*
 * rs_exclusion - decide whether a parsed group is excluded, and where the
 * scan resumes if so.
 */
static void
rs_exclusion(const RsScan *sc, RsGroup *g)
{
	const unsigned char *s = sc->s;
	size_t		gs = g->start,
				ge = g->end;
	size_t		skip = 0;
	uint8_t		v;

	g->excluded = true;
	g->skip_to = ge;
	if (g->ndigits >= RS_GROUP_DIGITS)
		return;
	if (ge + 1 < sc->len && s[ge] == '.' && rs_digit_at(sc, ge + 1, &v))
		return;
	if (gs >= 2 && s[gs - 1] == '.' && rs_digit_len_before(sc, gs - 1) > 0)
		return;
	if (g->ndigits <= 6 && rs_near_mask(sc, gs, ge, g->ndigits))
		return;
	if ((gs > 0 && (s[gs - 1] == '-' || rs_is_hex_letter(s[gs - 1]))) ||
		(ge < sc->len && (s[ge] == '-' || rs_is_hex_letter(s[ge]))))
		skip = rs_uuid_end(sc, gs, ge);
	if (skip == 0 && ((gs > 0 && rs_is_hex_letter(s[gs - 1])) ||
					  (ge < sc->len && rs_is_hex_letter(s[ge]))))
		skip = rs_hex_token_end(sc, gs, ge);
	if (skip > 0)
	{
		g->skip_to = skip;
		return;
	}
	g->excluded = false;
}

/*
 * rs_parse_group - read the group of digits starting at i.
 */
static void
rs_parse_group(const RsScan *sc, size_t i, RsGroup *g)
{
	uint8_t		v;
	int			k;

	g->start = i;
	g->ndigits = 0;
	for (;;)
	{
		/* ASCII digits first: the common case, without the UTF-8 checks */
		while (i < sc->len && sc->s[i] >= '0' && sc->s[i] <= '9')
		{
			if (g->ndigits < RS_GROUP_DIGITS)
				g->d[g->ndigits] = sc->s[i] - '0';
			g->ndigits++;
			i++;
		}
		if (i >= sc->len || sc->s[i] < 0xc0 || (k = rs_digit_at(sc, i, &v)) == 0)
			break;
		if (g->ndigits < RS_GROUP_DIGITS)
			g->d[g->ndigits] = v;
		g->ndigits++;
		i += k;
	}
	if (g->ndigits > RS_GROUP_DIGITS)
		g->ndigits = RS_GROUP_DIGITS;
	g->end = i;
	rs_exclusion(sc, g);
}

/*
 * rs_luhn - the Luhn check over n digit values.
 */
bool
rs_luhn(const uint8_t *d, int n)
{
	int			sum = 0;

	for (int k = 0; k < n; k++)
	{
		int			x = d[n - 1 - k];

		if (k & 1)
			x = (x * 2 > 9) ? x * 2 - 9 : x * 2;
		sum += x;
	}
	return sum % 10 == 0;
}

/*
 * rs_brand_length_ok - whether n digits is a valid length for the brand
 * that the prefix of d names (any 13-19 for an unknown prefix):
 *	Visa 4: 13, 16, 19.  Mastercard 51-55, 2221-2720: 16.  Amex 34, 37: 15.
 *	Discover 6011, 644-649, 65: 16-19.  Diners 36: 14-19; 300-305, 38-39:
 *	16-19.  JCB 3528-3589: 16-19.  UnionPay 62: 16-19.  Maestro 50,
 *	56-69: 12-19.
 */
static bool
rs_brand_length_ok(const uint8_t *d, int n)
{
	int			p2 = d[0] * 10 + d[1];
	int			p3 = p2 * 10 + d[2];
	int			p4 = p3 * 10 + d[3];

	if (d[0] == 4)
		return n == 13 || n == 16 || n == 19;
	if ((p2 >= 51 && p2 <= 55) || (p4 >= 2221 && p4 <= 2720))
		return n == 16;
	if (p2 == 34 || p2 == 37)
		return n == 15;
	if (p4 == 6011 || (p3 >= 644 && p3 <= 649) || p2 == 65 || p2 == 62 ||
		(p4 >= 3528 && p4 <= 3589) || (p3 >= 300 && p3 <= 305) ||
		p2 == 38 || p2 == 39)
		return n >= 16 && n <= 19;
	if (p2 == 36)
		return n >= 14 && n <= 19;
	if (p2 == 50 || (p2 >= 56 && p2 <= 69))
		return n >= 12 && n <= 19;
	return n >= RS_PAN_MIN && n <= RS_PAN_MAX;
}

/*
 * rs_emit - report a span; remembers a stop request.
 */
static void
rs_emit(RsScan *sc, size_t start, size_t end, RsKind kind, int ndigits,
		bool json_quote)
{
	RsSpan		span;

	span.start = start;
	span.end = end;
	span.kind = kind;
	span.ndigits = ndigits;
	span.json_quote = json_quote;
	sc->nspans++;
	if (sc->cb != NULL && !sc->cb(sc->arg, &span))
		sc->stopped = true;
}

/*
 * rs_best_pan - how many groups of w[0..n) (total digits in all) make the
 * PAN that starts at w[0] (0 if none), and its digit count.
 */
static int
rs_best_pan(const RsGroup *w, int n, int total, int *ndigits)
{
	uint8_t		d[RS_PAN_MAX];
	int			tot = 0,
				best_brand = 0,
				best_any = 0,
				nd_brand = 0,
				nd_any = 0;

	if (w[0].d[0] == 0 || total < RS_PAN_MIN)
		return 0;
	for (int j = 0; j < n; j++)
	{
		if (tot + w[j].ndigits > RS_PAN_MAX)
			break;
		memcpy(d + tot, w[j].d, w[j].ndigits);
		tot += w[j].ndigits;
		if (tot < RS_PAN_MIN || !rs_luhn(d, tot))
			continue;
		best_any = j + 1;
		nd_any = tot;
		if (rs_brand_length_ok(d, tot))
		{
			best_brand = j + 1;
			nd_brand = tot;
		}
	}
	*ndigits = best_brand ? nd_brand : nd_any;
	return best_brand ? best_brand : best_any;
}

/*
 * rs_is_cvv_sep - whether c may stand between a CVV label and its value.
 */
static inline bool
rs_is_cvv_sep(unsigned char c)
{
	return c == ':' || c == '=' || c == ' ' || c == '\t' || c == '"' ||
		c == '\'' || c == '\\';
}

/*
 * rs_cvv_label - whether the group [gs, ge) of 3-4 digits is the value of
 * a CVV label; sets *json_quote when it is a bare number after a quoted
 * JSON key ("cvc": 123), so that the replacement keeps JSON valid.
 */
static bool
rs_cvv_label(const RsScan *sc, size_t gs, bool *json_quote)
{
	const unsigned char *s = sc->s;
	size_t		p = gs;

	while (p > 0 && gs - p < 8 && rs_is_cvv_sep(s[p - 1]))
		p--;
	/* every label ends in one of these: most groups stop here */
	if (p == gs || p == 0 || strchr("2vcdeVCDE", s[p - 1]) == NULL || s[p - 1] == '\0')
		return false;
	for (size_t k = 0; k < sizeof(RsCvvLabels) / sizeof(RsCvvLabels[0]); k++)
	{
		size_t		n = strlen(RsCvvLabels[k]);
		size_t		q;

		if (p < n)
			continue;
		for (q = 0; q < n; q++)
		{
			if ((s[p - n + q] | (rs_is_alpha(s[p - n + q]) ? 0x20 : 0)) !=
				(unsigned char) RsCvvLabels[k][q])
				break;
		}
		if (q < n || (p > n && rs_is_alpha(s[p - n - 1])))
			continue;
		/* A quoted key, a colon, and no quote before the value. */
		*json_quote = s[p] == '"' && s[gs - 1] != '"' && s[gs - 1] != '\'' &&
			memchr(s + p, ':', gs - p) != NULL;
		return true;
	}
	return false;
}

/*
 * rs_track_end - the end of the track that starts with the group g, or 0.
 * Nothing here depends on a length limit or on digits after the track, so
 * that scrubbing the output again finds the same (no) tracks.
 */
static size_t
rs_track_end(const RsScan *sc, const RsGroup *g, size_t *tstart)
{
	const unsigned char *s = sc->s;
	size_t		p = g->end;
	int			nexp = 0;
	bool		t1;
	uint8_t		v;

	if (g->ndigits < 12 || g->ndigits > RS_PAN_MAX || p >= sc->len)
		return 0;
	if (g->start >= 2 && s[g->start - 2] == '%' && s[g->start - 1] == 'B' && s[p] == '^')
		t1 = true;
	else if (g->start >= 1 && s[g->start - 1] == ';' && s[p] == '=')
		t1 = false;
	else
		return 0;
	*tstart = g->start - (t1 ? 2 : 1);
	p++;
	if (t1)
	{
		/*
		 * The name: up to 26 letters, spaces and / . - ' ,; never a digit
		 * nor what a mask writes, so that masking cannot make one.
		 */
		size_t		name = p;

		while (p < sc->len && p - name <= RS_TRACK1_NAME_MAX &&
			   (rs_is_alpha(s[p]) || strchr(" /.-',", s[p]) != NULL) && s[p] != '\0')
			p++;
		if (p >= sc->len || s[p] != '^')
			return 0;
		p++;
	}
	while (p < sc->len && s[p] >= '0' && s[p] <= '9')
		p++, nexp++;
	if (nexp < 4)
		return 0;
	while (p < sc->len && ((s[p] >= '0' && s[p] <= '9') || (!t1 && s[p] == '=')))
		p++;
	if (p < sc->len && s[p] == '?')
		return p + 1;
	/* Without its end sentinel, a track must not run into a word or number. */
	if (p < sc->len && (rs_is_alpha(s[p]) || s[p] == '.' || s[p] == '*' ||
						rs_digit_at(sc, p, &v) > 0))
		return 0;
	return p;
}

/*
 * rs_next_group - parse the group joined to the chain after byte tail,
 * or return false at the chain's end.
 */
static bool
rs_next_group(const RsScan *sc, size_t tail, RsGroup *g)
{
	int			k = rs_sep_at(sc, tail);
	uint8_t		v;

	if (k == 0 || tail + k >= sc->len || rs_digit_at(sc, tail + k, &v) == 0)
		return false;
	rs_parse_group(sc, tail + k, g);
	return true;
}

/*
 * rs_chain_next - parse the group joined after tail into *g; false (and
 * *resume set when an excluded group ended it) at the chain's end.
 */
static bool
rs_chain_next(const RsScan *sc, size_t tail, RsGroup *g, size_t *resume)
{
	if (!rs_next_group(sc, tail, g))
		return false;
	if (g->excluded)
	{
		*resume = g->skip_to;
		return false;
	}
	return true;
}

/*
 * rs_chain - find PANs and CVVs in the chain of groups that starts with
 * win[0]; returns where the scan resumes.  The groups under consideration
 * are w[0..n), a sliding view of win[].
 */
static size_t
rs_chain(RsScan *sc, RsGroup *win)
{
	RsGroup    *w = win;
	int			n = 1,
				total = w[0].ndigits;
	size_t		tail = w[0].end,
				resume = 0;
	bool		ended = false;

	while (n > 0 && !sc->stopped)
	{
		int			used,
					nd;

		while (!ended && total <= RS_PAN_MAX)
		{
			if (w + n == win + RS_WINDOW)
			{
				memmove(win, w, sizeof(RsGroup) * n);
				w = win;
			}
			if (!rs_chain_next(sc, tail, &w[n], &resume))
				ended = true;
			else
			{
				tail = w[n].end;
				total += w[n++].ndigits;
			}
		}
		used = rs_best_pan(w, n, total, &nd);
		if (used > 0)
			rs_emit(sc, w[0].start, w[used - 1].end, RS_PAN, nd, false);
		else
		{
			bool		q = false;

			used = 1;
			if ((w[0].ndigits == 3 || w[0].ndigits == 4) &&
				rs_cvv_label(sc, w[0].start, &q))
				rs_emit(sc, w[0].start, w[0].end, RS_CVV, 0, q);
		}
		for (int j = 0; j < used; j++)
			total -= w[j].ndigits;
		w += used;
		n -= used;
		if (n == 0 && !ended)
		{
			w = win;
			if (!rs_chain_next(sc, tail, &w[0], &resume))
				ended = true;
			else
			{
				tail = w[0].end;
				total = w[0].ndigits;
				n = 1;
			}
		}
	}
	return resume > tail ? resume : tail;
}

/*
 * rs_phone_end - where a phone number that starts with the group g ends,
 * or 0: a chain after '+' is skipped while it holds at most 15 digits
 * (E.164), so that "+1 415-555-2671 2024-01-15" is no card, while a PAN
 * joined after a short phone number is still found.
 */
static size_t
rs_phone_end(const RsScan *sc, const RsGroup *g)
{
	RsGroup		next;
	size_t		tail = g->end;
	int			total = g->ndigits;

	if (g->start == 0 || sc->s[g->start - 1] != '+')
		return 0;
	while (rs_next_group(sc, tail, &next) && !next.excluded &&
		   total + next.ndigits <= 15)
	{
		total += next.ndigits;
		tail = next.end;
	}
	return tail;
}

/*
 * rs_iban_end - where an IBAN whose check digits are the group g ends, or
 * 0: two capital letters at a word start, then letters, digits and single
 * spaces, 15 to 34 characters in all, passing the ISO 13616 mod-97 check.
 */
static size_t
rs_iban_end(const RsScan *sc, const RsGroup *g)
{
	const unsigned char *s = sc->s;
	size_t		b = g->start - 2,
				p,
				end = 0;
	unsigned	rem = 0;
	int			n = 0;

	if (g->start < 2 || g->ndigits < 2 || s[b] < 'A' || s[b] > 'Z' ||
		s[b + 1] < 'A' || s[b + 1] > 'Z' ||
		(b > 0 && (rs_is_alpha(s[b - 1]) || (s[b - 1] >= '0' && s[b - 1] <= '9'))))
		return 0;
	/* BBAN first, then country and check digits: mod 97 of the digits. */
	for (int pass = 0; pass < 2; pass++)
	{
		for (p = (pass == 0) ? b + 4 : b, n = (pass == 0) ? 4 : 0;
			 p < sc->len && n < 34 && (pass == 0 || n < 4); p++)
		{
			unsigned char c = s[p];

			if (c == ' ' && pass == 0 && p + 1 < sc->len && s[p + 1] != ' ')
				continue;
			if (c >= '0' && c <= '9')
				rem = (rem * 10 + (c - '0')) % 97;
			else if (c >= 'A' && c <= 'Z')
				rem = (rem * 100 + (c - 'A' + 10)) % 97;
			else
				break;
			n++;
		}
		if (pass == 0)
		{
			if (n < 15)
				return 0;
			end = p;
		}
	}
	return rem == 1 ? end : 0;
}

/*
 * rs_skip - the first byte at or after i that may start a digit.
 */
static inline size_t
rs_skip(const RsScan *sc, size_t i)
{
	const unsigned char *s = sc->s;
	uint64_t	high = sc->opt->utf8 ? UINT64_C(0x8080808080808080) : 0;

#ifdef __SSE2__
	{
		/* x + 0x50 maps '0'..'9', and only them, to the 10 smallest signed bytes */
		const __m128i shift = _mm_set1_epi8(0x50);
		const __m128i limit = _mm_set1_epi8(-128 + 10);
		const __m128i d9 = _mm_set1_epi8((char) 0xd9);
		const __m128i db = _mm_set1_epi8((char) 0xdb);
		const __m128i ef = _mm_set1_epi8((char) 0xef);

#define RS_DIGITS(x) _mm_cmplt_epi8(_mm_add_epi8((x), shift), limit)

		/* 64 bytes at a time while there is nothing at all */
		while (i + 64 <= sc->len)
		{
			__m128i		x0 = _mm_loadu_si128((const __m128i *) (s + i));
			__m128i		x1 = _mm_loadu_si128((const __m128i *) (s + i + 16));
			__m128i		x2 = _mm_loadu_si128((const __m128i *) (s + i + 32));
			__m128i		x3 = _mm_loadu_si128((const __m128i *) (s + i + 48));
			__m128i		d = _mm_or_si128(_mm_or_si128(RS_DIGITS(x0), RS_DIGITS(x1)),
										 _mm_or_si128(RS_DIGITS(x2), RS_DIGITS(x3)));

			if (high)
				d = _mm_or_si128(d, _mm_or_si128(_mm_or_si128(x0, x1), _mm_or_si128(x2, x3)));
			if (_mm_movemask_epi8(d))
				break;
			i += 64;
		}
		/* then 16 at a time: ASCII digits, and (utf8) lead bytes of digits */
		while (i + 16 <= sc->len)
		{
			__m128i		x = _mm_loadu_si128((const __m128i *) (s + i));
			int			mask = _mm_movemask_epi8(RS_DIGITS(x));

			if (high && _mm_movemask_epi8(x))
				mask |= _mm_movemask_epi8(_mm_or_si128(_mm_cmpeq_epi8(x, d9),
													   _mm_or_si128(_mm_cmpeq_epi8(x, db),
																	_mm_cmpeq_epi8(x, ef))));
			if (mask)
				return i + __builtin_ctz(mask);
			i += 16;
		}
#undef RS_DIGITS
	}
#endif
	while (i + 8 <= sc->len)
	{
		uint64_t	x,
					t;

		memcpy(&x, s + i, 8);
		t = x ^ UINT64_C(0x3030303030303030);
		/* any byte of t below 10, i.e. any ASCII digit; or any non-ASCII */
		if (((t - UINT64_C(0x0a0a0a0a0a0a0a0a)) & ~t & UINT64_C(0x8080808080808080)) |
			(x & high))
			break;
		i += 8;
	}
	while (i < sc->len && !(s[i] >= '0' && s[i] <= '9') &&
		   !(sc->opt->utf8 && (s[i] == 0xd9 || s[i] == 0xdb || s[i] == 0xef)))
		i++;
	return i;
}

/*
 * rs_scan - report every span of s[0..len) to cb, in order; returns how
 * many were reported.  cb may be NULL (count only).
 */
size_t
rs_scan(const char *s, size_t len, const RsOptions *opt, RsCallback cb, void *arg)
{
	RsScan		sc = {(const unsigned char *) s, len, opt, cb, arg, 0, false};
	RsGroup		w[RS_WINDOW];
	size_t		i = 0;
	uint8_t		v;

	if (s == NULL)
		return 0;
	while (!sc.stopped && (i = rs_skip(&sc, i)) < len)
	{
		size_t		tend,
					tstart = 0;

		if (rs_digit_at(&sc, i, &v) == 0)
		{
			i++;
			continue;
		}
		rs_parse_group(&sc, i, &w[0]);
		if ((tend = rs_track_end(&sc, &w[0], &tstart)) > 0)
		{
			rs_emit(&sc, tstart, tend, RS_TRACK, w[0].ndigits, false);
			i = tend;
		}
		else if (w[0].excluded)
			i = w[0].skip_to;
		else if ((tend = rs_phone_end(&sc, &w[0])) > 0 ||
				 (tend = rs_iban_end(&sc, &w[0])) > 0)
			i = tend;
		else
			i = rs_chain(&sc, w);
	}
	return sc.nspans;
}

/*
 * rs_chars - how many UTF-8 characters (lead bytes) s[start..end) holds.
 */
static size_t
rs_chars(const unsigned char *s, size_t start, size_t end)
{
	size_t		n = 0;

	for (size_t i = start; i < end; i++)
		n += (s[i] & 0xc0) != 0x80;
	return n;
}

/*
 * rs_write_pan - write the mask of a PAN span into out (when not NULL);
 * returns its length.  Digits outside the kept ones become '*'; separators
 * go, or stay with keep_length.
 */
static size_t
rs_write_pan(const char *in, const RsSpan *span, const RsOptions *opt, char *out)
{
	RsScan		sc = {(const unsigned char *) in, span->end, opt, NULL, NULL, 0, false};
	size_t		o = 0;
	int			k = 0;
	int			head = (opt->mask == RS_MASK_FIRST6_LAST4) ? 6 : 0;

	for (size_t i = span->start; i < span->end;)
	{
		uint8_t		v;
		int			n = rs_digit_at(&sc, i, &v);

		if (n == 0)
		{
			n = rs_sep_at(&sc, i);
			if (n == 0)
				n = 1;			/* cannot happen: spans hold digits and separators */
			if (opt->keep_length)
			{
				if (out)
					memcpy(out + o, in + i, n);
				o += n;
			}
		}
		else if (k < head || k >= span->ndigits - 4)
		{
			if (out)
				memcpy(out + o, in + i, n);
			o += n;
			k++;
		}
		else
		{
			if (out)
				out[o] = '*';
			o++;
			k++;
		}
		i += n;
	}
	return o;
}

/*
 * rs_write_span - write the replacement of one span into out (when not
 * NULL); returns its length.
 */
static size_t
rs_write_span(const char *in, const RsSpan *span, const RsOptions *opt, char *out)
{
	const char *text;
	size_t		n;

	if (span->kind == RS_PAN)
		return rs_write_pan(in, span, opt, out);
	if (opt->keep_length)
	{
		n = rs_chars((const unsigned char *) in, span->start, span->end);
		if (out)
			memset(out, '*', n);
		return n;
	}
	if (span->kind == RS_CVV && span->json_quote)
		text = "\"" RS_CVV_TEXT "\"";
	else
		text = (span->kind == RS_CVV) ? RS_CVV_TEXT : RS_TRACK_TEXT;
	n = strlen(text);
	if (out)
		memcpy(out, text, n);
	return n;
}

/* Output under construction (out NULL: only measured). */
typedef struct RsWriter
{
	const char *in;
	const RsOptions *opt;
	char	   *out;
	size_t		pos;			/* input consumed */
	size_t		olen;			/* output written */
	size_t		npans;
} RsWriter;

/*
 * rs_write_cb - scan callback: copy the text before the span, then its
 * replacement.
 */
static bool
rs_write_cb(void *arg, const RsSpan *span)
{
	RsWriter   *w = (RsWriter *) arg;
	size_t		gap = span->start - w->pos;

	if (w->out)
		memcpy(w->out + w->olen, w->in + w->pos, gap);
	w->olen += gap;
	w->olen += rs_write_span(w->in, span, w->opt, w->out ? w->out + w->olen : NULL);
	w->pos = span->end;
	w->npans += (span->kind != RS_CVV);
	return true;
}

/*
 * rs_redacted_len - length of the scrubbed text, without writing it; sets
 * how many spans (0: the text is clean) and PANs (tracks included) it has.
 */
size_t
rs_redacted_len(const char *s, size_t len, const RsOptions *opt,
				size_t *nspans, size_t *npans)
{
	RsWriter	w = {s, opt, NULL, 0, 0, 0};

	*nspans = rs_scan(s, len, opt, rs_write_cb, &w);
	*npans = w.npans;
	return w.olen + (len - w.pos);
}

/*
 * rs_redact - write the scrubbed text into out, which must hold
 * rs_redacted_len() bytes (RS_OUT_MAX(len) always suffices); returns its
 * length and sets how many PANs were masked.
 */
size_t
rs_redact(const char *s, size_t len, const RsOptions *opt, char *out,
		  size_t *npans)
{
	RsWriter	w = {s, opt, out, 0, 0, 0};

	rs_scan(s, len, opt, rs_write_cb, &w);
	memcpy(out + w.olen, s + w.pos, len - w.pos);
	*npans = w.npans;
	return w.olen + (len - w.pos);
}

/*
 * rs_pan_cb - scan callback of rs_contains_pan: stop at the first PAN or
 * track.
 */
static bool
rs_pan_cb(void *arg, const RsSpan *span)
{
	if (span->kind == RS_CVV)
		return true;
	*(bool *) arg = true;
	return false;
}

/*
 * rs_contains_pan - whether the text holds a PAN (a track holds one too).
 */
bool
rs_contains_pan(const char *s, size_t len, const RsOptions *opt)
{
	bool		found = false;

	rs_scan(s, len, opt, rs_pan_cb, &found);
	return found;
}

/*
 * rs_luhn_text - 1 if the ASCII digits of s pass Luhn, ignoring spaces and
 * dashes; 0 if they do not, if any other character is present or if there
 * are fewer than 2 digits.  Longer numbers than any card are checked too.
 */
int
rs_luhn_text(const char *s, size_t len)
{
	int			sum = 0,
				k = 0;

	for (size_t i = len; i-- > 0;)
	{
		int			x;

		if (s[i] == ' ' || s[i] == '-')
			continue;
		if (s[i] < '0' || s[i] > '9')
			return 0;
		x = s[i] - '0';
		if (k++ & 1)
			x = (x * 2 > 9) ? x * 2 - 9 : x * 2;
		sum = (sum + x) % 10;
	}
	return k >= 2 && sum == 0;
}

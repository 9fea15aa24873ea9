/*-------------------------------------------------------------------------
 *
 * redact_scan.c
 *	  Pure-C scanner of card data: PANs, labelled CVVs, magnetic tracks.
 *
 * The scan is driven by digits: bytes that cannot start a digit are
 * skipped 64 or 16 at a time with SSE2 (8 at a time without), and every
 * finding is decided around a run of digits with bounded local look-around
 * (a hex token is skipped whole once seen), so the pass is linear and never
 * backtracks.  Text without a digit yields no span at all, and a first
 * look at the chains of digits alone (rs_quiet) settles most text that
 * holds none before the rules below run.
 *
 * Rules (the README's section Redaction says the same for users):
 *	- A digit is ASCII 0-9; with utf8 also fullwidth (U+FF10-FF19),
 *	  Arabic-Indic (U+0660-0669) and extended Arabic-Indic (U+06F0-06F9).
 *	  A group is a maximal run of digits.  Two groups join across exactly
 *	  one separator: space or '-' (with utf8 also U+00A0, U+2007, U+202F);
 *	  joined groups make a chain.
 *	- Excluded groups never take part in a PAN and end a chain: 20 or more
 *	  digits (an identifier); touching '.' followed or preceded by a digit
 *	  (decimal, IP address, version), except a fraction of zeros only
 *	  after 12 or more digits ("4111111111111111.0"); inside a UUID or a
 *	  hex token (20 or more hex characters with hex letters in two
 *	  separate places, as in a hash); the visible head or tail of a mask
 *	  this scanner writes (rs_is_mask), so that scrubbing is idempotent.
 *	- After '+', a country code (1-3 digits) or a whole phone number of at
 *	  most 15 digits without separators takes no part in a PAN (unless it
 *	  is a whole PAN of a brand's length); an IBAN (passing mod 97) is
 *	  skipped whole.
 *	- A candidate is a run of whole consecutive groups of a chain, not
 *	  starting with 0, passing Luhn, of 13 to 19 digits (15 after a 1,
 *	  UATP), grouped as cards are printed (one group; 4-4-4-4 and other
 *	  fours with a shorter last group; 4-6-5; 4-6-4; 4-4-5; 4-3-3-3), or
 *	  in any grouping, and also 12 digits of Maestro, when a card label
 *	  (card, pan, cc, visa, mastercard, amex, maestro) starts a word in the
 *	  32 bytes before the chain with no digit in between.  Every group is
 *	  tried as a start; overlapping candidates make one PAN span, masked
 *	  as one, so that whichever is the real card shows no more than the
 *	  mask's visible digits.
 *	- A chain that ends where the text was cut ("..." or U+2026, as
 *	  PostgreSQL truncates logged values) has its last 7 to 19 digits
 *	  masked whole, as a possible PAN prefix.
 *	- A CVV is a group of 3 or 4 digits right after a label (cvv, cvv2,
 *	  cvc, cvc2, cid, csc, security code, any case, not preceded by a
 *	  letter) and 1 to 8 of : = space tab " ' > and backslash (so also
 *	  <cvv>123</cvv>).
 *	- Track 1 is %B, 12-19 digits, '^', a name (at most 26 letters, spaces
 *	  and / . - ' ,), '^', at least 4 digits (expiry, service code,
 *	  discretionary data), then the end sentinel '?' if present; track 2 is
 *	  ';', 12-19 digits, '=', at least 4 digits, then digits and '=', then
 *	  '?' if present.  Track 2 without sentinels is a Luhn-valid PAN, '=',
 *	  at least 7 digits, digits and '=', then '?' if present; in hex (EMV
 *	  tag 57) a digit run ending in a Luhn-valid PAN (after "57" and a
 *	  length, if any), 'D', at least 7 digits, then an 'F' pad if present,
 *	  found before any hex-token rule.  Without its end, a track that runs
 *	  straight into a number, '.', '*' (or, except in hex, a letter) is
 *	  none.
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

/* Shortest hex token, and the length of a UUID. */
#define RS_HEX_TOKEN_MIN 20
#define RS_UUID_LEN 36

/* Longest name field of track 1 (ISO/IEC 7813). */
#define RS_TRACK1_NAME_MAX 26

/* Digits after a track 2 PAN's separator: expiry (YYMM), service code. */
#define RS_TRACK_EXP_MIN 7

/* Digits of a value cut short that are masked as a possible PAN prefix. */
#define RS_CUT_MIN 7

/*
 * Asterisks of a mask: the fewest (first six and last four of a 12-digit
 * Maestro leave 2), the fewest of a last-four mask (8), and how many are
 * looked at, which bounds the work per group (a run of overlapping PANs
 * has a mask as long as it).
 */
#define RS_MASK_MIN_STARS 2
#define RS_MASK_LONG 8
#define RS_MASK_MAX 4096

/*
 * How far ahead of the scan the text is asked into the cache.  A table's
 * texts come one by one from heap pages, in falling addresses, which the
 * hardware prefetcher follows badly: in the server, asking for the next
 * kilobyte halves the time of redact() over 1 KB log lines.
 */
#define RS_PREFETCH_AHEAD 1024
#if defined(__GNUC__) || defined(__clang__)
#define RS_PREFETCH(p) __builtin_prefetch(p)
#else
#define RS_PREFETCH(p) ((void) 0)
#endif

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

/* The run of hex characters last met, split by tracks (rs_hex_token_end). */
typedef struct RsHexRun
{
	bool		valid;
	size_t		start;
	size_t		end;
	size_t		seg;			/* the segment that holds the last group */
	size_t		track;			/* the next track in the run (end: none) */
	size_t		track_end;
	bool		token;			/* whether [seg, track) is a hex token */
} RsHexRun;

/* State of one scan. */
typedef struct RsScan
{
	const unsigned char *s;
	size_t		len;
	const RsOptions *opt;
	RsCallback	cb;
	void	   *arg;
	size_t		nspans;
	size_t		last_end;		/* where the last span reported ended */
	bool		stopped;
	RsHexRun   *hex;
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

static bool rs_track_pan(const RsScan *sc, const RsGroup *g, bool emv);

/*
 * rs_emv_track_in - whether s[b..e) holds a run of ASCII digits with a
 * PAN at its end (rs_track_pan), followed by 'D', at least
 * RS_TRACK_EXP_MIN digits and an optional 'F' pad, as track 2 equivalent
 * data in hex (EMV tag 57); *run and *end are set to the first one's
 * digits and end.
 */
static bool
rs_emv_track_in(const RsScan *sc, size_t b, size_t e, size_t *run, size_t *end)
{
	const unsigned char *s = sc->s;

	*run = b;
	for (size_t p = b; p < e; p++)
	{
		size_t		q = p + 1;

		if (s[p] >= '0' && s[p] <= '9')
			continue;
		if ((s[p] | 0x20) == 'd' && p - *run >= 12)
		{
			RsGroup		g = {.start = *run, .end = p};

			while (q < e && s[q] >= '0' && s[q] <= '9')
				q++;
			if (q - (p + 1) >= RS_TRACK_EXP_MIN && rs_track_pan(sc, &g, true))
			{
				*end = (q < e && (s[q] | 0x20) == 'f') ? q + 1 : q;
				return true;
			}
		}
		*run = p + 1;
	}
	return false;
}

/*
 * rs_hex_token - whether s[b..e) is a hex token: at least RS_HEX_TOKEN_MIN
 * hex characters with hex letters in two separate places (a PAN with a
 * word glued to one side is not a token).
 */
static bool
rs_hex_token(const RsScan *sc, size_t b, size_t e)
{
	int			letter_runs = 0;
	bool		in_letters = false;

	if (e - b < RS_HEX_TOKEN_MIN)
		return false;
	for (size_t p = b; p < e && letter_runs < 2; p++)
	{
		bool		letter = rs_is_hex_letter(sc->s[p]);

		if (letter && !in_letters)
			letter_runs++;
		in_letters = letter;
	}
	return letter_runs >= 2;
}

/*
 * rs_hex_segment - make h describe the segment of its run of hex
 * characters that starts at h->seg: where the next track in it starts and
 * ends (run == end when none), and whether the piece before is a token.
 */
static void
rs_hex_segment(const RsScan *sc, RsHexRun *h)
{
	if (!rs_emv_track_in(sc, h->seg, h->end, &h->track, &h->track_end))
		h->track = h->track_end = h->end;
	h->token = rs_hex_token(sc, h->seg, h->track);
}

/*
 * rs_hex_token_end - the end of the hex token that holds the group
 * [gs, ge), or 0.  Track 2 data in hex (EMV tag 57) is card data, not
 * part of a token: it splits the run of hex characters, and each piece
 * is judged alone, as it is once the track is replaced.  The run and its
 * pieces are remembered (sc->hex), so that the groups of one run, met in
 * order, cost one pass over it.
 */
static size_t
rs_hex_token_end(const RsScan *sc, size_t gs, size_t ge)
{
	const unsigned char *s = sc->s;
	RsHexRun   *h = sc->hex;

	if (!(h->valid && gs >= h->start && gs < h->end))
	{
		h->start = gs;
		h->end = ge;
		while (h->start > 0 && rs_is_hex(s[h->start - 1]))
			h->start--;
		while (h->end < sc->len && rs_is_hex(s[h->end]))
			h->end++;
		h->valid = true;
		h->seg = h->start;
		rs_hex_segment(sc, h);
	}
	while (gs >= h->track_end && h->track_end < h->end)
	{
		h->seg = h->track_end;
		rs_hex_segment(sc, h);
	}
	if (gs >= h->track)
		return 0;				/* the track itself: the main loop takes it */
	return h->token ? h->track : 0;
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
 * rs_digits_after - how many digits the run starting at p has; *q is set
 * to its end.
 */
static int
rs_digits_after(const RsScan *sc, size_t p, size_t *q)
{
	int			n = 0,
				k;
	uint8_t		v;

	while (p < sc->len && (k = rs_digit_at(sc, p, &v)) > 0)
		p += k, n++;
	*q = p;
	return n;
}

/*
 * rs_digits_before - how many digits the run ending at p has; *q is set
 * to its start.
 */
static int
rs_digits_before(const RsScan *sc, size_t p, size_t *q)
{
	int			n = 0,
				k;

	while ((k = rs_digit_len_before(sc, p)) > 0)
		p -= k, n++;
	*q = p;
	return n;
}

/*
 * rs_digit_next_to - whether a digit stands at p going right (dir > 0) or
 * left of it, touching or (sep) across one separator.
 */
static bool
rs_digit_next_to(const RsScan *sc, size_t p, int dir, bool sep)
{
	uint8_t		v;
	int			k;

	if (dir > 0 ? (p < sc->len && rs_digit_at(sc, p, &v) > 0) : rs_digit_len_before(sc, p) > 0)
		return true;
	if (!sep || (k = dir > 0 ? rs_sep_at(sc, p) : rs_sep_before(sc, p)) == 0)
		return false;
	return dir > 0 ? (p + k < sc->len && rs_digit_at(sc, p + k, &v) > 0) :
		(p > (size_t) k && rs_digit_len_before(sc, p - k) > 0);
}

/*
 * rs_is_mask - whether the asterisk at p belongs to a mask this scanner
 * could have written: a chain of asterisk runs (joined by one separator
 * each, as keep_length writes a grouped number) of at least
 * RS_MASK_MIN_STARS asterisks, with digits at both ends (a visible head
 * and tail: touching them, or across a separator at one end of a run of
 * 3 or more, or at both ends of a chain of runs, as keep_length writes),
 * or of at least RS_MASK_LONG asterisks.  A group reached
 * across a separator needs a chain of runs.  So "**4111 1111 1111 1111**",
 * "** 4111 ..." and a comment's closing star hold no mask, while
 * "************1111", "411111***1111" and "**** **** **** 1111" do.  Only
 * the asterisks and their neighbours count, so that scrubbing a text,
 * which masks and regroups the numbers around, finds the same masks.
 */
static bool
rs_is_mask(const RsScan *sc, size_t p, bool touching)
{
	const unsigned char *s = sc->s;
	size_t		b = p,
				e = p;
	int			stars = 0,
				runs = 1,
				k;

	for (;;)
	{
		while (b > 0 && s[b - 1] == '*' && stars < RS_MASK_MAX)
			b--, stars++;
		if ((k = rs_sep_before(sc, b)) == 0 || b <= (size_t) k || s[b - k - 1] != '*')
			break;
		b -= k, runs++;
	}
	for (;;)
	{
		while (e < sc->len && s[e] == '*' && stars < RS_MASK_MAX)
			e++, stars++;
		if ((k = rs_sep_at(sc, e)) == 0 || e + k >= sc->len || s[e + k] != '*')
			break;
		e += k, runs++;
	}
	if (stars < RS_MASK_MIN_STARS || stars >= RS_MASK_MAX || (!touching && runs < 2))
		return false;
	if (stars >= RS_MASK_LONG || runs > 1)
		return stars >= RS_MASK_LONG ||
			(rs_digit_next_to(sc, b, -1, true) && rs_digit_next_to(sc, e, 1, true));
	/* one run: digits touch both ends, or one end and (3 stars) near the other */
	if (rs_digit_next_to(sc, b, -1, false))
		return rs_digit_next_to(sc, e, 1, stars > RS_MASK_MIN_STARS);
	return rs_digit_next_to(sc, e, 1, false) && stars > RS_MASK_MIN_STARS &&
		rs_digit_next_to(sc, b, -1, true);
}

/*
 * rs_mask_visible - whether the group [gs, ge) of n digits is the visible
 * head (with the groups after it, at most 6 digits before a mask) or tail
 * (with the groups before it, at most 4 digits after one) of a masked PAN,
 * so that scrubbing a scrubbed text changes nothing.
 */
static bool
rs_mask_visible(const RsScan *sc, size_t gs, size_t ge, int n)
{
	const unsigned char *s = sc->s;
	size_t		p,
				q;
	int			total,
				k,
				m;

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
	for (p = ge, total = n;;)
	{
		if (p < sc->len && s[p] == '*')
		{
			if (rs_is_mask(sc, p, true))
				return true;
			break;
		}
		if ((k = rs_sep_at(sc, p)) == 0 || p + k >= sc->len)
			break;
		if (s[p + k] == '*')
		{
			if (rs_is_mask(sc, p + k, false))
				return true;
			break;
		}
		if ((m = rs_digits_after(sc, p + k, &q)) == 0 || (total += m) > 6)
			break;
		p = q;
	}
	for (p = gs, total = n; total <= 4;)
	{
		if (p > 0 && s[p - 1] == '*')
			return rs_is_mask(sc, p - 1, true);
		if ((k = rs_sep_before(sc, p)) == 0 || p <= (size_t) k)
			return false;
		if (s[p - k - 1] == '*')
			return rs_is_mask(sc, p - k - 1, false);
		if ((m = rs_digits_before(sc, p - k, &q)) == 0)
			return false;
		total += m;
		p = q;
	}
	return false;
}

/*
 * rs_zero_fraction - whether the '.' at p starts a fraction of zeros only
 * that ends the number ("4111111111111111.0", as a JSON number prints),
 * so that the digits before it are a whole number, not a decimal's.
 */
static bool
rs_zero_fraction(const RsScan *sc, size_t p)
{
	const unsigned char *s = sc->s;
	size_t		q = p + 1;
	uint8_t		v;

	while (q < sc->len && s[q] == '0')
		q++;
	if (q == p + 1 || (q < sc->len && rs_digit_at(sc, q, &v)))
		return false;
	return !(q + 1 < sc->len && s[q] == '.' && rs_digit_at(sc, q + 1, &v));
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
	if (ge + 1 < sc->len && s[ge] == '.' && rs_digit_at(sc, ge + 1, &v) &&
		!(g->ndigits >= RS_PAN_MIN_LABELLED && rs_zero_fraction(sc, ge)))
		return;
	if (gs >= 2 && s[gs - 1] == '.' && rs_digit_len_before(sc, gs - 1) > 0)
		return;
	if (g->ndigits <= 6 && rs_mask_visible(sc, gs, ge, g->ndigits))
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

/* What a PAN's prefix says of its length. */
typedef enum RsBrand
{
	RS_BRAND_UNKNOWN,			/* no brand of the table below */
	RS_BRAND_LENGTH_OK,			/* a brand, and a length it issues */
	RS_BRAND_LENGTH_BAD			/* a brand, and a length it never issues */
} RsBrand;

/*
 * rs_brand - whether n digits is a length that the brand named by the
 * prefix of d issues:
 *	Visa 4: 13, 16, 19.  Mastercard 51-55, 2221-2720: 16.  Amex 34, 37: 15.
 *	Discover 6011, 644-649, 65: 16-19.  Diners 36, 300-305: 14-19; 38-39:
 *	16-19.  JCB 3528-3589: 16-19.  UnionPay 62: 16-19.  Maestro 50,
 *	56-69: 12-19.  UATP 1: 15.
 */
static RsBrand
rs_brand(const uint8_t *d, int n)
{
	int			p2 = d[0] * 10 + d[1];
	int			p3 = p2 * 10 + d[2];
	int			p4 = p3 * 10 + d[3];
	bool		ok;

	if (d[0] == 4)
		ok = n == 13 || n == 16 || n == 19;
	else if (d[0] == 1)
		ok = n == 15;
	else if ((p2 >= 51 && p2 <= 55) || (p4 >= 2221 && p4 <= 2720))
		ok = n == 16;
	else if (p2 == 34 || p2 == 37)
		ok = n == 15;
	else if (p4 == 6011 || (p3 >= 644 && p3 <= 649) || p2 == 65 || p2 == 62 ||
			 (p4 >= 3528 && p4 <= 3589) || p2 == 38 || p2 == 39)
		ok = n >= 16 && n <= 19;
	else if (p2 == 36 || (p3 >= 300 && p3 <= 305))
		ok = n >= 14 && n <= 19;
	else if (p2 == 50 || (p2 >= 56 && p2 <= 69))
		ok = n >= 12 && n <= 19;
	else
		return RS_BRAND_UNKNOWN;
	return ok ? RS_BRAND_LENGTH_OK : RS_BRAND_LENGTH_BAD;
}

/*
 * rs_length_ok - whether n digits starting with d may be a PAN: 13 to 19
 * (15 for UATP, whose prefix 1 also starts every epoch time in
 * milliseconds), or 12 for Maestro where a card label names it.
 */
static bool
rs_length_ok(const uint8_t *d, int n, bool labelled)
{
	if (d[0] == 1)
		return n == 15;
	if (n == RS_PAN_MIN_LABELLED)
		return labelled && rs_brand(d, n) == RS_BRAND_LENGTH_OK;
	return n >= RS_PAN_MIN && n <= RS_PAN_MAX;
}

/*
 * rs_card_grouping - whether groups w[0..n) (n >= 2) are grouped as cards
 * are printed: fours with a last group of 1 to 4 (4-4-4-4, 4-4-4-4-3,
 * 4-4-4-1, ...), 4-6-4, 4-6-5, 4-4-5 or 4-3-3-3.  Phone numbers and most
 * other grouped numbers are not.
 */
static bool
rs_card_grouping(const RsGroup *w, int n)
{
	int			k;

	if (w[0].ndigits != 4)
		return false;
	for (k = 1; k < n - 1 && w[k].ndigits == 4; k++)
		;
	if (k == n - 1 && w[k].ndigits <= 4)
		return true;
	if (n == 3)
		return (w[1].ndigits == 6 && (w[2].ndigits == 4 || w[2].ndigits == 5)) ||
			(w[1].ndigits == 4 && w[2].ndigits == 5);
	return n == 4 && w[1].ndigits == 3 && w[2].ndigits == 3 && w[3].ndigits == 3;
}

/* Card labels, lower case, and how far before a chain one may end. */
static const char *const RsCardLabels[] = {
	"card", "pan", "cc", "visa", "mastercard", "amex", "maestro",
};
#define RS_LABEL_REACH 32

/*
 * rs_card_label - whether a card label starts a word in the RS_LABEL_REACH
 * bytes before position p, with no digit, '*' or ']' (what a mask or a
 * replacement ends in) between them: "card number: 790903096570 5555 ...".
 * So the label names only the chain right after it, and scrubbing, which
 * shortens text, cannot bring a label into reach of another chain.
 */
static bool
rs_card_label(const RsScan *sc, size_t p)
{
	const unsigned char *s = sc->s;
	size_t		lo = p;

	while (lo > 0 && p - lo < RS_LABEL_REACH && s[lo - 1] != '*' && s[lo - 1] != ']' &&
		   rs_digit_len_before(sc, lo) == 0)
		lo--;
	for (size_t q = lo; q < p; q++)
	{
		if ((q > 0 && rs_is_alpha(s[q - 1])) || !rs_is_alpha(s[q]))
			continue;
		for (size_t k = 0; k < sizeof(RsCardLabels) / sizeof(RsCardLabels[0]); k++)
		{
			const char *l = RsCardLabels[k];
			size_t		n = strlen(l),
						j;

			for (j = 0; j < n && q + j < p && (s[q + j] | 0x20) == (unsigned char) l[j]; j++)
				;
			if (j == n)
				return true;
		}
	}
	return false;
}

/*
 * rs_emit - report a span; remembers a stop request and where the last
 * span ended.
 */
static void
rs_emit(RsScan *sc, size_t start, size_t end, RsKind kind, int ndigits,
		bool prefix, bool json_quote)
{
	RsSpan		span;

	span.start = start;
	span.end = end;
	span.kind = kind;
	span.ndigits = ndigits;
	span.prefix = prefix;
	span.json_quote = json_quote;
	sc->nspans++;
	sc->last_end = end;
	if (sc->cb != NULL && !sc->cb(sc->arg, &span))
		sc->stopped = true;
}

/*
 * rs_candidate - how many groups of w[0..n) (total digits in all) make the
 * longest PAN candidate that starts at w[0], or 0: whole groups, a valid
 * length, passing Luhn, and (more than one group) grouped as cards are,
 * unless a card label names the chain (*label: -1 not looked for yet,
 * else 0 or 1; chain is where the chain starts).
 */
static int
rs_candidate(const RsScan *sc, const RsGroup *w, int n, int total, size_t chain,
			 int *label)
{
	int			even = 0,		/* Luhn sums doubling even / odd positions */
				odd = 0,
				len = 0,
				best = 0;
	uint8_t		prefix[4];		/* the first digits, for the brand */

	if (w[0].d[0] == 0 || total < RS_PAN_MIN_LABELLED)
		return 0;
	/* Most starts can only begin a candidate a card label allows. */
	if (w[0].ndigits != 4 && w[0].ndigits < RS_PAN_MIN_LABELLED)
	{
		if (*label < 0)
			*label = rs_card_label(sc, chain);
		if (!*label)
			return 0;
	}
	for (int j = 0; j < n && len + w[j].ndigits <= RS_PAN_MAX; j++)
	{
		for (int k = 0; k < w[j].ndigits; k++, len++)
		{
			int			x = w[j].d[k],
						x2 = x * 2 > 9 ? x * 2 - 9 : x * 2;

			even += (len & 1) ? x : x2;
			odd += (len & 1) ? x2 : x;
			if (len < 4)
				prefix[len] = x;
		}
		if (len < RS_PAN_MIN_LABELLED || ((len & 1) ? odd : even) % 10 != 0 ||
			!rs_length_ok(prefix, len, true))
			continue;
		if (len == RS_PAN_MIN_LABELLED || (j > 0 && !rs_card_grouping(w, j + 1)))
		{
			if (*label < 0)
				*label = rs_card_label(sc, chain);
			if (!*label)
				continue;
		}
		best = j + 1;
	}
	return best;
}

/*
 * rs_is_cvv_sep - whether c may stand between a CVV label and its value.
 */
static inline bool
rs_is_cvv_sep(unsigned char c)
{
	return c == ':' || c == '=' || c == ' ' || c == '\t' || c == '"' ||
		c == '\'' || c == '\\' || c == '>';
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
	unsigned char last;

	while (p > 0 && gs - p < 8 && rs_is_cvv_sep(s[p - 1]))
		p--;
	/* every label ends in 2, v, c, d or e, of either case: most stop here */
	if (p == gs || p == 0)
		return false;
	last = s[p - 1] | 0x20;
	if (s[p - 1] != '2' && last != 'v' && last != 'c' && last != 'd' && last != 'e')
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
 * rs_track_pan - whether the group g of ASCII digits ends in the PAN of a
 * track 2 written without sentinels: the whole group, or in hex (emv) the
 * digits after the tag 57 and a two-digit length.  The PAN has 12 to 19
 * digits, does not start with 0 and passes Luhn, and the group follows
 * neither a decimal point nor '=' after a number of 4 or more digits.
 */
static bool
rs_track_pan(const RsScan *sc, const RsGroup *g, bool emv)
{
	const unsigned char *s = sc->s;
	size_t		n = g->end - g->start,
				q;

	/* after a decimal's '.', or '=' after a number: a fraction, a track's data */
	if (g->start > 1 && s[g->start - 1] == '.' && rs_digit_len_before(sc, g->start - 1) > 0)
		return false;
	if (g->start > 1 && s[g->start - 1] == '=' && rs_digits_before(sc, g->start - 1, &q) >= 4)
		return false;
	/* rs_luhn_text fails on anything but ASCII digits here */
	for (size_t len = n < RS_PAN_MAX ? n : RS_PAN_MAX; len >= 12; len--)
	{
		size_t		p = g->end - len;

		if (p != g->start &&
			!(emv && p - g->start >= 4 && s[p - 4] == '5' && s[p - 3] == '7'))
			continue;
		if (s[p] != '0' && rs_luhn_text((const char *) s + p, len))
			return true;
	}
	return false;
}

/*
 * rs_bare_track_end - the end of a track 2 written without sentinels that
 * starts with the group g, or 0: the PAN, '=' (or 'D' in hex, as EMV tag
 * 57 holds it), at least 7 digits (expiry, service code), the
 * discretionary digits (and '=' after '='), then '?' after '=' or an 'F'
 * pad after 'D'.
 * *tstart is set to where the group starts.
 */
static size_t
rs_bare_track_end(const RsScan *sc, const RsGroup *g, size_t *tstart)
{
	const unsigned char *s = sc->s;
	size_t		p = g->end,
				q;
	bool		emv = (s[p] | 0x20) == 'd';
	uint8_t		v;

	if (s[p] != '=' && !emv)
		return 0;
	/* the whole run goes, tag and length included, like the digits after */
	if (!rs_track_pan(sc, g, emv))
		return 0;
	*tstart = g->start;
	for (q = p + 1; q < sc->len && s[q] >= '0' && s[q] <= '9'; q++)
		;
	if (q - (p + 1) < RS_TRACK_EXP_MIN)
		return 0;
	/* discretionary data: digits, and after '=' more '=' as on a stripe */
	while (!emv && q < sc->len && ((s[q] >= '0' && s[q] <= '9') || s[q] == '='))
		q++;
	/* the end: an 'F' pad in hex, the end sentinel '?' after '=' */
	if (q < sc->len && (emv ? (s[q] | 0x20) == 'f' : s[q] == '?'))
		return q + 1;
	/* Without its end, it must not run into a number (or, after '=', a word). */
	if (q < sc->len && ((!emv && rs_is_alpha(s[q])) || s[q] == '.' || s[q] == '*' ||
						rs_digit_at(sc, q, &v) > 0))
		return 0;
	return q;
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

	if (p >= sc->len || g->ndigits < 12)
		return 0;
	if (g->ndigits <= RS_PAN_MAX && g->start >= 2 && s[g->start - 2] == '%' &&
		s[g->start - 1] == 'B' && s[p] == '^')
		t1 = true;
	else if (g->ndigits <= RS_PAN_MAX && g->start >= 1 && s[g->start - 1] == ';' &&
			 s[p] == '=')
		t1 = false;
	else
		return rs_bare_track_end(sc, g, tstart);
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
 * rs_chain_next - parse the group joined after tail into *g; false at the
 * chain's end, with *resume set when an excluded group or a track (which
 * the main loop reports) ended it.
 */
static bool
rs_chain_next(const RsScan *sc, size_t tail, RsGroup *g, size_t *resume)
{
	size_t		tstart;

	if (!rs_next_group(sc, tail, g))
		return false;
	if (g->end < sc->len && (sc->s[g->end] == '=' || (sc->s[g->end] | 0x20) == 'd') &&
		rs_track_end(sc, g, &tstart) > 0)
	{
		*resume = g->start;
		return false;
	}
	if (g->excluded)
	{
		*resume = g->skip_to;
		return false;
	}
	return true;
}

/*
 * The PAN span being built in a chain: the union of the candidates that
 * overlap, so that whichever of them is the real card keeps no more than
 * the visible digits of the mask.
 */
typedef struct RsPending
{
	bool		open;
	bool		prefix;			/* cut short: mask every digit */
	size_t		start;
	size_t		end;
	int			ndigits;
} RsPending;

/*
 * rs_pending_add - add the candidate of groups w[0..used) to the span.
 */
static void
rs_pending_add(RsPending *u, const RsGroup *w, int used)
{
	if (!u->open)
	{
		u->open = true;
		u->prefix = false;
		u->start = w[0].start;
		u->end = w[0].start;
		u->ndigits = 0;
	}
	for (int k = 0; k < used; k++)
	{
		if (w[k].start >= u->end)
			u->ndigits += w[k].ndigits;
	}
	if (w[used - 1].end > u->end)
		u->end = w[used - 1].end;
}

/*
 * rs_pending_flush - report the span, if any.
 */
static void
rs_pending_flush(RsScan *sc, RsPending *u)
{
	if (u->open)
		rs_emit(sc, u->start, u->end, RS_PAN, u->ndigits, u->prefix, false);
	u->open = false;
}

/*
 * rs_cut_at - whether p starts the marker of a text cut short: "..." (as
 * PostgreSQL writes it after a truncated value) or U+2026.
 */
static bool
rs_cut_at(const RsScan *sc, size_t p)
{
	const unsigned char *s = sc->s;

	if (p + 3 > sc->len)
		return false;
	return (s[p] == '.' && s[p + 1] == '.' && s[p + 2] == '.') ||
		(sc->opt->utf8 && s[p] == 0xe2 && s[p + 1] == 0x80 && s[p + 2] == 0xa6);
}

/*
 * rs_cut_chain - a chain from chain to tail that ends where the text was
 * cut short may end in the first digits of a PAN: its last groups, up to
 * RS_PAN_MAX digits and after the last span reported, are masked whole
 * when they hold more than a BIN's digits (RS_CUT_MIN), together with a
 * PAN span they overlap.
 */
static void
rs_cut_chain(RsScan *sc, RsPending *u, size_t chain, size_t tail)
{
	size_t		lo = chain > sc->last_end ? chain : sc->last_end,
				start = tail,
				p = tail,
				q;
	int			total = 0,
				n,
				k;

	while ((n = rs_digits_before(sc, p, &q)) > 0 && q >= lo && total + n <= RS_PAN_MAX)
	{
		total += n;
		start = q;
		if ((k = rs_sep_before(sc, q)) == 0 || q < lo + k)
			break;
		p = q - k;
	}
	if (u->open && u->end > start)
	{
		for (p = u->end; p < tail;)
		{
			n = rs_digits_after(sc, p, &q);
			u->ndigits += n;
			p = q + (n > 0 ? 0 : 1);
		}
		u->end = tail;
		u->prefix = true;
		return;
	}
	rs_pending_flush(sc, u);
	if (total >= RS_CUT_MIN && !sc->stopped)
		rs_emit(sc, start, tail, RS_PAN, total, true, false);
}

/*
 * rs_chain - find PANs and CVVs in the chain of groups that starts with
 * win[0]; returns where the scan resumes.  Every group is tried as the
 * start of a candidate; candidates that overlap make one span.  The
 * groups under consideration are w[0..n), a sliding view of win[].
 */
static size_t
rs_chain(RsScan *sc, RsGroup *win)
{
	RsGroup    *w = win;
	RsPending	u = {0};
	int			n = 1,
				total = w[0].ndigits,
				label = -1;
	size_t		chain = w[0].start,
				tail = w[0].end,
				resume = 0;
	bool		ended = false;

	for (;;)
	{
		int			used;

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
		if (n == 0 || sc->stopped)
			break;
		used = rs_candidate(sc, w, n, total, chain, &label);
		if (used > 0)
		{
			if (u.open && w[0].start >= u.end)
				rs_pending_flush(sc, &u);
			rs_pending_add(&u, w, used);
		}
		else if ((!u.open || w[0].start >= u.end) &&
				 (w[0].ndigits == 3 || w[0].ndigits == 4))
		{
			bool		q = false;

			if (rs_cvv_label(sc, w[0].start, &q))
			{
				rs_pending_flush(sc, &u);
				rs_emit(sc, w[0].start, w[0].end, RS_CVV, 0, false, q);
			}
		}
		total -= w[0].ndigits;
		w++;
		n--;
	}
	if (!sc->stopped && rs_cut_at(sc, tail))
		rs_cut_chain(sc, &u, chain, tail);
	if (!sc->stopped)
		rs_pending_flush(sc, &u);
	return resume > tail ? resume : tail;
}

/*
 * rs_phone_end - where the first group g of a phone number ends, or 0:
 * after '+', a country code (at most 3 digits) or a whole number written
 * without separators (at most 15 digits, E.164) takes no part in a PAN,
 * unless it is a whole PAN itself (a brand's length, passing Luhn).  The
 * groups joined after a country code are scanned as usual, so that
 * "+1 4111 1111 1111 1111" holds a card; a longer first group with more
 * joined after it ("+3782 822463 10005") starts a chain like any other.
 */
static size_t
rs_phone_end(const RsScan *sc, const RsGroup *g)
{
	RsGroup		next;

	if (g->start == 0 || sc->s[g->start - 1] != '+' || g->ndigits > 15)
		return 0;
	if (g->ndigits <= 3)
		return g->end;
	if (rs_next_group(sc, g->end, &next))
		return 0;
	if (g->ndigits >= RS_PAN_MIN && g->d[0] != 0 &&
		rs_brand(g->d, g->ndigits) == RS_BRAND_LENGTH_OK && rs_luhn(g->d, g->ndigits))
		return 0;
	return g->end;
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

			RS_PREFETCH(s + i + RS_PREFETCH_AHEAD);

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
 * rs_quiet - whether s[0..len) certainly holds no span, judged from its
 * chains of ASCII digits alone, far faster than rs_scan_all.  Every span
 * comes from a chain: a PAN or a track needs 12 or more digits in it, a
 * value cut short 7 or more and a cut marker right after it, a CVV a
 * group of 3 or 4 digits after a CVV label.  The chains here join across
 * ' ' and '-' only and ignore every exclusion, so they hold those of
 * rs_scan_all; a non-ASCII digit or separator (utf8) is not judged here.
 * So most log lines, with dates, times, ids and amounts, are answered
 * without the full rules (fuzz_redact_scan.c checks the claim).
 */
bool
rs_quiet(const char *str, size_t len, const RsOptions *opt)
{
	RsScan		sc = {(const unsigned char *) str, len, opt, NULL, NULL, 0, 0, false, NULL};
	const unsigned char *s = sc.s;
	size_t		i = 0;

	while ((i = rs_skip(&sc, i)) < len)
	{
		int			total = 0;
		uint8_t		v;

		if (s[i] > '9')
		{
			/* a UTF-8 lead byte that may start a digit */
			if (rs_digit_at(&sc, i, &v) > 0)
				return false;
			i++;
			continue;
		}
		for (;;)
		{
			size_t		b = i;
			bool		q;

			while (i < len && s[i] >= '0' && s[i] <= '9')
				i++;
			total += i - b;
			if (total >= RS_PAN_MIN_LABELLED ||
				((i - b == 3 || i - b == 4) && rs_cvv_label(&sc, b, &q)))
				return false;
			if (i + 1 >= len || (s[i] != ' ' && s[i] != '-') ||
				s[i + 1] < '0' || s[i + 1] > '9')
				break;
			i++;
		}
		if (i < len && ((opt->utf8 && s[i] >= 0x80) ||
						(total >= RS_CUT_MIN && s[i] == '.')))
			return false;
	}
	return true;
}

/*
 * rs_scan - report every span of s[0..len) to cb, in order; returns how
 * many were reported.  cb may be NULL (count only).
 */
size_t
rs_scan(const char *s, size_t len, const RsOptions *opt, RsCallback cb, void *arg)
{
	if (s == NULL)
		return 0;
	for (size_t k = 0; k < len && k < RS_PREFETCH_AHEAD; k += 64)
		RS_PREFETCH(s + k);
	if (rs_quiet(s, len, opt))
		return 0;
	return rs_scan_all(s, len, opt, cb, arg);
}

/*
 * rs_scan_all - rs_scan with every rule applied to every chain.
 */
size_t
rs_scan_all(const char *s, size_t len, const RsOptions *opt, RsCallback cb, void *arg)
{
	RsHexRun	hex = {0};
	RsScan		sc = {(const unsigned char *) s, len, opt, cb, arg, 0, 0, false, &hex};
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
			rs_emit(&sc, tstart, tend, RS_TRACK, w[0].ndigits, false, false);
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
	RsScan		sc = {(const unsigned char *) in, span->end, opt, NULL, NULL, 0, 0, false, NULL};
	size_t		o = 0;
	int			k = 0;
	int			head = (opt->mask == RS_MASK_FIRST6_LAST4) ? 6 : 0;
	int			tail = span->prefix ? 0 : 4;

	if (span->prefix)
		head = 0;

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
		else if (k < head || k >= span->ndigits - tail)
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

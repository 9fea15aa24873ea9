/*-------------------------------------------------------------------------
 *
 * redact_gen.h
 *	  Generator of card numbers in hostile contexts, and of realistic text
 *	  that holds none, for the scanner's property checks.
 *
 * Used by the libFuzzer target fuzz_redact_gen.c (random seeds) and by
 * test/bench/redact_quality.c (fixed seed; recall and false-positive
 * figures).  test/sql/redact_generated.sql has the same generator in
 * PL/pgSQL for the SQL functions.
 *
 * rg_card builds a Luhn-valid PAN of a random brand and length, writes it
 * in a random separator style inside a random context and records where
 * each of its digits is.  rg_check_masked then says whether a keep_length
 * scrub leaves more of it visible than the mask style allows.
 *
 *-------------------------------------------------------------------------
 */
#ifndef PAYMENTS_REDACT_GEN_H
#define PAYMENTS_REDACT_GEN_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "redact_scan.h"

#define RG_TEXT_MAX 512

/* A deterministic random source (xorshift64*). */
typedef struct RgRand
{
	uint64_t	s;
} RgRand;

/* rg_next - the next 64 random bits. */
static inline uint64_t
rg_next(RgRand *r)
{
	r->s ^= r->s >> 12;
	r->s ^= r->s << 25;
	r->s ^= r->s >> 27;
	return r->s * UINT64_C(2685821657736338717);
}

/* rg_int - a random integer in [0, n). */
static inline int
rg_int(RgRand *r, int n)
{
	return (int) (rg_next(r) % (uint64_t) n);
}

/* One brand: a prefix and the lengths it issues (0 ends the list). */
typedef struct RgBrand
{
	const char *prefix;
	int			lengths[5];
} RgBrand;

static const RgBrand RgBrands[] = {
	{"4", {13, 16, 19}},		/* Visa */
	{"51", {16}}, {"55", {16}}, {"2221", {16}}, {"2720", {16}},	/* Mastercard */
	{"34", {15}}, {"37", {15}},	/* Amex */
	{"6011", {16, 19}}, {"644", {16}}, {"65", {16, 19}},	/* Discover */
	{"36", {14}}, {"300", {14}}, {"38", {16}},	/* Diners */
	{"3528", {16, 19}}, {"3589", {16}},	/* JCB */
	{"62", {16, 17, 18, 19}},	/* UnionPay */
	{"50", {12, 16, 19}}, {"6759", {12, 13, 16, 18}}, {"58", {12, 16}},	/* Maestro */
	{"1", {15}},				/* UATP */
	{"2200", {16}},				/* Mir */
	{"60", {16}}, {"81", {16}}, {"508", {16}},	/* RuPay */
	{"9792", {16}},				/* Troy */
};

/* Text before a card (a 12-digit Maestro always gets a card label). */
static const char *const RgBefore[] = {
	"", "card ", "card: ", "Card number ", "pan=", "cc=", "qty 6 ", "ref 1997 ",
	"2024 ", "12 ", "order 790903096570 ", "* ", "** ", "*", "**", "+", "+1 ",
	"#", "> ", ">", "`", "/* ", "-- ", "<!-- ", "- ", "**Card:** ",
	"{\"card\": \"", "{\"n\": \"", "<pan>", "<card><number>",
	"https://shop.test/pay?card=", "a,b,", "\"", "'", "(", "[", "note=paid+with+",
	"| ", "id 42, amount 19.99, card ", "paid 3 x 25 with ", "order #1234 ",
	"\xc2\xa0", "tel +44 20 7946 0958 ", "x",
};

/* Text after a card. */
static const char *const RgAfter[] = {
	"", " 2024", " 6", " 12", " 1", " 123", " 4242", "*", "**", " */", " -->",
	"\"}", "</pan>", "</number></card>", "&x=1", ",c,d", "`", ")", ".", ",",
	" |", " exp 12/26", " qty 3", "-01", " 2024-01-15", " 10:30", " x", "\n",
};

/* Card labels for a 12-digit Maestro. */
static const char *const RgLabels[] = {"card ", "maestro: ", "Card number "};

#define RG_LEN(a) ((int) (sizeof(a) / sizeof((a)[0])))

/* A generated card in its text. */
typedef struct RgCard
{
	char		text[RG_TEXT_MAX];
	size_t		len;
	char		pan[RS_PAN_MAX + 1];
	int			ndigits;
	size_t		digit_at[RS_PAN_MAX];	/* byte offset of each PAN digit */
} RgCard;

/* rg_append - append a string to the card's text. */
static void
rg_append(RgCard *c, const char *t)
{
	size_t		n = strlen(t);

	if (c->len + n < RG_TEXT_MAX)
	{
		memcpy(c->text + c->len, t, n);
		c->len += n;
	}
	c->text[c->len] = '\0';
}

/* rg_pan - a Luhn-valid PAN of a random brand and length into c->pan. */
static void
rg_pan(RgRand *r, RgCard *c)
{
	const RgBrand *b = &RgBrands[rg_int(r, RG_LEN(RgBrands))];
	int			nlen = 0,
				n,
				sum = 0;

	while (nlen < 5 && b->lengths[nlen] != 0)
		nlen++;
	n = b->lengths[rg_int(r, nlen)];
	strcpy(c->pan, b->prefix);
	for (int i = (int) strlen(b->prefix); i < n - 1; i++)
		c->pan[i] = '0' + rg_int(r, 10);
	c->pan[n - 1] = '0';
	c->pan[n] = '\0';
	for (int i = 0; i < n; i++)
	{
		int			x = c->pan[n - 1 - i] - '0';

		if (i & 1)
			x = x * 2 > 9 ? x * 2 - 9 : x * 2;
		sum += x;
	}
	c->pan[n - 1] = '0' + (10 - sum % 10) % 10;
	c->ndigits = n;
}

/*
 * rg_group_end - whether a separator follows digit i (0-based) of an
 * n-digit PAN in grouping style g: 0 none, 1 fours, 2 4-6-5 / 4-6-4 where
 * the length allows (else fours), 3 4-3-3-3 for 13 digits (else fours).
 */
static bool
rg_group_end(int g, int i, int n)
{
	if (i == n - 1 || g == 0)
		return false;
	if (g == 2 && (n == 14 || n == 15))
		return i == 3 || i == 9;
	if (g == 3 && n == 13)
		return i == 3 || i == 6 || i == 9;
	return i % 4 == 3;
}

/*
 * rg_card - a random card in a random context.  A bare-number context
 * (a JSON number) takes the PAN without separators.
 */
static void
rg_card(RgRand *r, RgCard *c)
{
	static const char *const seps[] = {" ", "-", "\xc2\xa0", " ", "-"};
	int			grouping = rg_int(r, 4);
	int			sepk = rg_int(r, RG_LEN(seps));
	bool		mixed = rg_int(r, 4) == 0;

	c->len = 0;
	c->text[0] = '\0';
	rg_pan(r, c);
	if (rg_int(r, 8) == 0)
	{
		/* a JSON number, possibly with a zero fraction */
		rg_append(c, c->ndigits == RS_PAN_MIN_LABELLED ?
				  "{\"amount\": 12.5, \"card\": " : "{\"amount\": 12.5, \"n\": ");
		grouping = 0;
	}
	else if (c->ndigits == RS_PAN_MIN_LABELLED)
		rg_append(c, RgLabels[rg_int(r, RG_LEN(RgLabels))]);
	else
		rg_append(c, RgBefore[rg_int(r, RG_LEN(RgBefore))]);
	for (int i = 0; i < c->ndigits; i++)
	{
		char		d[2] = {c->pan[i], '\0'};

		c->digit_at[i] = c->len;
		rg_append(c, d);
		if (rg_group_end(grouping, i, c->ndigits))
			rg_append(c, seps[mixed ? rg_int(r, 2) : sepk]);
	}
	if (strncmp(c->text, "{\"amount\"", 9) == 0)
		rg_append(c, rg_int(r, 2) ? ".0}" : "}");
	else
		rg_append(c, RgAfter[rg_int(r, RG_LEN(RgAfter))]);
}

/*
 * rg_char_index - the character index of byte b of s.
 */
static size_t
rg_char_index(const char *s, size_t b)
{
	size_t		n = 0;

	for (size_t i = 0; i < b; i++)
		n += ((unsigned char) s[i] & 0xc0) != 0x80;
	return n;
}

/*
 * rg_check_masked - NULL when the keep_length scrub out (olen bytes) of
 * the card's text shows no more of the PAN than the mask style allows
 * (the last four; with first6_last4 also the first six, and never more
 * than six in a row), else what is wrong.
 */
static const char *
rg_check_masked(const RgCard *c, const char *out, size_t olen, RsMaskStyle mask)
{
	int			visible = 0,
				run = 0,
				longest = 0,
				head_ok = 0;

	for (int i = 0; i < c->ndigits; i++)
	{
		size_t		ci = rg_char_index(c->text, c->digit_at[i]);
		size_t		b = 0,
					k = 0;
		bool		shown;

		while (k < ci && b + 1 < olen)
			k += ((unsigned char) out[++b] & 0xc0) != 0x80;
		shown = b < olen && out[b] == c->pan[i];
		visible += shown;
		run = shown ? run + 1 : 0;
		longest = run > longest ? run : longest;
		if (shown && (i < 6 || i >= c->ndigits - 4))
			head_ok++;
	}
	if (mask == RS_MASK_LAST4 && visible > 4)
		return "more than four PAN digits visible";
	if (mask == RS_MASK_FIRST6_LAST4 && (visible > 10 || longest > 6 || head_ok < visible))
		return "more than the first six and last four visible";
	return NULL;
}

#endif							/* PAYMENTS_REDACT_GEN_H */

// sources: src/fraud_expr.c
/*
 * fuzz_fraud_expr.c
 *	  libFuzzer target of the fraud rules' expression parser (fx_parse,
 *	  fx_print).
 *
 * The input is the expression.  The parse gets buffers of exactly the
 * capacities fraud_expr.h documents (none at all for too long an input),
 * so that ASan catches any write beyond them.  Invariants:
 *	- a failure has a position in 1..len+1 and a lower-case message
 *	  without a period;
 *	- a success stays within FX_MAX_NODES, FX_MAX_ITEMS and
 *	  FX_MAX_STRINGS; every node links only to earlier nodes (the root is
 *	  the last), has the operands its kind needs, and the tree is at most
 *	  FX_MAX_DEPTH high; every operand's text lies in the strings and ends
 *	  with a NUL;
 *	- fx_print's length is at most FX_PRINT_MAX, and a short buffer gets
 *	  a NUL-terminated prefix of the same text with the same answer;
 *	- canonical text no longer than FX_MAX_LEN parses again, to as many
 *	  nodes and items, and prints to the same bytes (round trip).
 */
#include <stdlib.h>
#include <string.h>

#include "fraud_expr.h"

int			LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* alloc - malloc that never answers NULL for a fuzz run. */
static void *
alloc(size_t n)
{
	void	   *p = malloc(n > 0 ? n : 1);

	if (p == NULL)
		abort();
	return p;
}

/* check_operand - abort unless o's text lies in the strings, NUL-ended. */
static void
check_operand(const FxExpr *e, const FxOperand *o)
{
	if ((uint64_t) o->str + o->len >= e->strings_len ||
		e->strings[o->str + o->len] != '\0')
		abort();
	if (o->kind == FX_BOOL &&
		strcmp(e->strings + o->str, o->boolean ? "TRUE" : "FALSE") != 0)
		abort();
	if (o->kind != FX_STRING && memchr(e->strings + o->str, '\0', o->len))
		abort();
}

/* check_node - abort unless node i is well formed; answers its height. */
static int
check_node(const FxExpr *e, int32_t i, const int *height)
{
	const FxNode *n = &e->nodes[i];
	bool		binary = n->kind == FX_OR || n->kind == FX_AND;

	if (binary || n->kind == FX_NOT)
	{
		if (n->left < 0 || n->left >= i || n->right >= i ||
			(binary ? n->right < 0 : n->right != -1))
			abort();
		return 1 + (binary && height[n->right] > height[n->left] ?
					height[n->right] : height[n->left]);
	}
	if (n->left != -1 || n->right != -1)
		abort();
	check_operand(e, &n->a);
	if (n->kind == FX_CMP || n->kind == FX_IN_LIST)
		check_operand(e, &n->b);
	if ((n->kind == FX_IS_MISSING && n->a.kind != FX_FIELD) ||
		(n->kind == FX_IN_LIST && n->b.kind != FX_STRING))
		abort();
	if (n->kind == FX_IN)
	{
		if (n->nitems < 1 || n->nitems > FX_MAX_IN_ITEMS ||
			n->first_item < 0 || n->first_item + n->nitems > e->nitems)
			abort();
		for (int32_t k = n->first_item; k < n->first_item + n->nitems; k++)
		{
			check_operand(e, &e->items[k]);
			if (e->items[k].kind == FX_FIELD)
				abort();
		}
	}
	return 1;
}

/* check_tree - abort unless a successful parse of len bytes is sound. */
static void
check_tree(const FxExpr *e, size_t len)
{
	int		   *height;

	if (e->nnodes < 1 || (size_t) e->nnodes > FX_MAX_NODES(len) ||
		e->nitems < 0 || (size_t) e->nitems > FX_MAX_ITEMS(len) ||
		e->strings_len > FX_MAX_STRINGS(len) || e->root != e->nnodes - 1)
		abort();
	height = alloc(sizeof(int) * (size_t) e->nnodes);
	for (int32_t i = 0; i < e->nnodes; i++)
	{
		height[i] = check_node(e, i, height);
		if (height[i] > FX_MAX_DEPTH)
			abort();
	}
	free(height);
}

/* check_error - abort unless a failure's position and message are sane. */
static void
check_error(const FxError *err, size_t len)
{
	const char *m = err->message;

	if (err->pos < 1 || err->pos > len + 1 || m == NULL ||
		m[0] < 'a' || m[0] > 'z' || m[strlen(m) - 1] == '.')
		abort();
}

/*
 * parse - parse s[0..len) into buffers of the documented capacities, and
 * check the result; the caller frees e's buffers.
 */
static bool
parse(const char *s, size_t len, FxExpr *e)
{
	FxError		err;
	bool		ok;

	e->nodes = NULL;
	e->items = NULL;
	e->strings = NULL;
	if (len <= FX_MAX_LEN)
	{
		e->nodes = alloc(sizeof(FxNode) * FX_MAX_NODES(len));
		e->items = alloc(sizeof(FxOperand) * FX_MAX_ITEMS(len));
		e->strings = alloc(FX_MAX_STRINGS(len));
	}
	ok = fx_parse(s, len, e, &err);
	if (ok)
		check_tree(e, len);
	else
		check_error(&err, len);
	return ok;
}

/* release - free what parse allocated. */
static void
release(FxExpr *e)
{
	free(e->nodes);
	free(e->items);
	free(e->strings);
}

/*
 * print - the canonical text of e, NUL-terminated, checked against the
 * bound and against printing into a buffer too short; *n is its length.
 */
static char *
print(const FxExpr *e, size_t len, size_t *n)
{
	char	   *text;
	char	   *cut;
	size_t		half;

	*n = fx_print(e, NULL, 0);
	if (*n > FX_PRINT_MAX(len))
		abort();
	text = alloc(*n + 1);
	if (fx_print(e, text, *n + 1) != *n || text[*n] != '\0')
		abort();
	half = *n / 2;
	cut = alloc(half + 1);
	if (fx_print(e, cut, half + 1) != *n || cut[half] != '\0' ||
		memcmp(cut, text, half) != 0)
		abort();
	free(cut);
	return text;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	FxExpr		e,
				again;
	char	   *text,
			   *text2;
	size_t		n,
				n2;

	if (!parse((const char *) data, size, &e))
	{
		release(&e);
		return 0;
	}
	text = print(&e, size, &n);
	if (n <= FX_MAX_LEN)
	{
		if (!parse(text, n, &again) || again.nnodes != e.nnodes ||
			again.nitems != e.nitems)
			abort();
		text2 = print(&again, n, &n2);
		if (n2 != n || memcmp(text, text2, n) != 0)
			abort();			/* canonical text is a fixed point */
		free(text2);
		release(&again);
	}
	free(text);
	release(&e);
	return 0;
}

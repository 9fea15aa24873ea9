/*-------------------------------------------------------------------------
 *
 * fraud_expr.c
 *	  Pure-C parser and printer of the fraud rules' condition language.
 *
 * The rules are written by users, so fx_parse takes any bytes, reads
 * nothing beyond the length it is given and writes nothing beyond the
 * capacities fraud_expr.h documents.  A lexer hands out one token at a
 * time to a recursive-descent parser; OR and AND chains are loops, and the
 * only recursion, through '(' and NOT, is counted against FX_MAX_DEPTH
 * before it happens, so hostile input cannot run the stack out.  Nodes and
 * operands are appended to the caller's arrays as they are completed.
 * Only standard C headers are included: the same file links into the
 * server and into the libFuzzer target.
 *
 *-------------------------------------------------------------------------
 */
#include <string.h>

#include "fraud_expr.h"

/* What a token is. */
typedef enum FxTokKind
{
	FXT_END,
	FXT_LPAREN,
	FXT_RPAREN,
	FXT_COMMA,
	FXT_OP,
	FXT_FIELD,
	FXT_NUMBER,
	FXT_STRING,
	FXT_AND,
	FXT_OR,
	FXT_NOT,
	FXT_IN,
	FXT_LIST,
	FXT_TRUE,
	FXT_FALSE,
	FXT_MISSING					/* is_missing followed by '(' */
} FxTokKind;

/* One token: bytes [start, end) of the input. */
typedef struct FxTok
{
	FxTokKind	kind;
	size_t		start;
	size_t		end;
	FxOp		op;				/* FXT_OP */
} FxTok;

/* State of one parse. */
typedef struct FxParser
{
	const char *src;
	size_t		len;
	FxTok		tok;			/* the current token */
	int			nesting;		/* '(' and NOT open */
	FxExpr	   *out;
	FxError    *err;
} FxParser;

/* A parsed subtree: its node and its height. */
typedef struct FxSub
{
	int32_t		node;
	int			height;
} FxSub;

/* The keywords, upper case; is_missing is matched apart. */
static const struct
{
	const char *word;
	FxTokKind	kind;
}			fx_keywords[] =
{
	{"AND", FXT_AND},
	{"OR", FXT_OR},
	{"NOT", FXT_NOT},
	{"IN", FXT_IN},
	{"LIST", FXT_LIST},
	{"TRUE", FXT_TRUE},
	{"FALSE", FXT_FALSE}
};

static bool fx_or(FxParser *p, FxSub *res);

/* fx_space - whether c separates tokens. */
static bool
fx_space(char c)
{
	return c == ' ' || c == '\t' || c == '\r' || c == '\n';
}

/* fx_digit - whether c is an ASCII digit. */
static bool
fx_digit(char c)
{
	return c >= '0' && c <= '9';
}

/* fx_ident_start - whether c may start an ident. */
static bool
fx_ident_start(char c)
{
	return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || c == '_';
}

/* fx_ident_char - whether c may continue an ident. */
static bool
fx_ident_char(char c)
{
	return fx_ident_start(c) || fx_digit(c);
}

/* fx_word_eq - whether s[0..len) is the upper-case word, in any case. */
static bool
fx_word_eq(const char *s, size_t len, const char *word)
{
	if (strlen(word) != len)
		return false;
	for (size_t i = 0; i < len; i++)
	{
		char		c = s[i];

		if (c >= 'a' && c <= 'z')
			c = (char) (c - 'a' + 'A');
		if (c != word[i])
			return false;
	}
	return true;
}

/* fx_fail - record an error at byte offset at (0-based); answers false. */
static bool
fx_fail(FxParser *p, size_t at, const char *message)
{
	p->err->pos = (uint32_t) at + 1;
	p->err->message = message;
	return false;
}

/* fx_set - make [start, end) the current token, of kind kind. */
static bool
fx_set(FxParser *p, FxTokKind kind, size_t start, size_t end)
{
	p->tok.kind = kind;
	p->tok.start = start;
	p->tok.end = end;
	return true;
}

/*
 * fx_lex_string - a quoted string starting at i; '' stands for a quote.
 */
static bool
fx_lex_string(FxParser *p, size_t i)
{
	size_t		j = i + 1;

	for (;;)
	{
		if (j >= p->len)
			return fx_fail(p, i, "unterminated string");
		if (p->src[j] == '\'')
		{
			if (j + 1 < p->len && p->src[j + 1] == '\'')
				j += 2;
			else
				return fx_set(p, FXT_STRING, i, j + 1);
		}
		else
			j++;
	}
}

/* fx_digits - the end of the run of digits starting at j. */
static size_t
fx_digits(const FxParser *p, size_t j)
{
	while (j < p->len && fx_digit(p->src[j]))
		j++;
	return j;
}

/*
 * fx_lex_number - a number starting at i: '-'? digits ('.' digits)?
 * ([eE] [+-]? digits)?, not running straight into an ident or a '.'.
 */
static bool
fx_lex_number(FxParser *p, size_t i)
{
	size_t		j = i + (p->src[i] == '-');
	size_t		e;

	if (j >= p->len || !fx_digit(p->src[j]))
		return fx_fail(p, i, "malformed number");
	j = fx_digits(p, j);
	if (j + 1 < p->len && p->src[j] == '.' && fx_digit(p->src[j + 1]))
		j = fx_digits(p, j + 1);
	if (j < p->len && (p->src[j] == 'e' || p->src[j] == 'E'))
	{
		e = j + 1;
		if (e < p->len && (p->src[e] == '+' || p->src[e] == '-'))
			e++;
		if (e < p->len && fx_digit(p->src[e]))
			j = fx_digits(p, e);
	}
	if (j < p->len && (fx_ident_char(p->src[j]) || p->src[j] == '.'))
		return fx_fail(p, i, "malformed number");
	return fx_set(p, FXT_NUMBER, i, j);
}

/*
 * fx_lex_word - a field path, a keyword or is_missing, starting at i.
 */
static bool
fx_lex_word(FxParser *p, size_t i)
{
	size_t		j = i;
	int			segments = 1;

	while (j < p->len && fx_ident_char(p->src[j]))
		j++;
	while (j < p->len && p->src[j] == '.')
	{
		if (j + 1 >= p->len || !fx_ident_start(p->src[j + 1]))
			return fx_fail(p, j, "malformed field name");
		if (++segments > FX_MAX_FIELD_SEGMENTS)
			return fx_fail(p, i, "field name has too many segments");
		for (j++; j < p->len && fx_ident_char(p->src[j]); j++)
			;
	}
	if (segments > 1)
		return fx_set(p, FXT_FIELD, i, j);
	for (size_t k = 0; k < sizeof(fx_keywords) / sizeof(fx_keywords[0]); k++)
	{
		if (fx_word_eq(p->src + i, j - i, fx_keywords[k].word))
			return fx_set(p, fx_keywords[k].kind, i, j);
	}
	if (fx_word_eq(p->src + i, j - i, "IS_MISSING"))
	{
		size_t		k = j;

		while (k < p->len && fx_space(p->src[k]))
			k++;
		if (k < p->len && p->src[k] == '(')
			return fx_set(p, FXT_MISSING, i, j);
	}
	return fx_set(p, FXT_FIELD, i, j);
}

/*
 * fx_lex_punct - a parenthesis, a comma or a comparison operator at i.
 */
static bool
fx_lex_punct(FxParser *p, size_t i)
{
	char		c = p->src[i];
	char		d = i + 1 < p->len ? p->src[i + 1] : '\0';

	if (c == '(')
		return fx_set(p, FXT_LPAREN, i, i + 1);
	if (c == ')')
		return fx_set(p, FXT_RPAREN, i, i + 1);
	if (c == ',')
		return fx_set(p, FXT_COMMA, i, i + 1);
	if ((c == '!' && d == '=') || (c == '<' && d == '>'))
		p->tok.op = FX_NE;
	else if (c == '=')
		p->tok.op = FX_EQ;
	else if (c == '<')
		p->tok.op = d == '=' ? FX_LE : FX_LT;
	else if (c == '>')
		p->tok.op = d == '=' ? FX_GE : FX_GT;
	else
		return fx_fail(p, i, "unexpected character");
	/* every two-byte operator ends in '=', but for <> */
	return fx_set(p, FXT_OP, i, i + 1 + (d == '=' || (c == '<' && d == '>')));
}

/* fx_next - move to the next token, skipping whitespace. */
static bool
fx_next(FxParser *p)
{
	size_t		i = p->tok.end;
	char		c;

	while (i < p->len && fx_space(p->src[i]))
		i++;
	if (i >= p->len)
		return fx_set(p, FXT_END, p->len, p->len);
	c = p->src[i];
	if (c == '\'')
		return fx_lex_string(p, i);
	if (fx_digit(c) || c == '-')
		return fx_lex_number(p, i);
	if (fx_ident_start(c))
		return fx_lex_word(p, i);
	return fx_lex_punct(p, i);
}

/* fx_expect - fail with message unless the current token is of kind. */
static bool
fx_expect(FxParser *p, FxTokKind kind, const char *message)
{
	return p->tok.kind == kind || fx_fail(p, p->tok.start, message);
}

/* fx_put_text - append bytes and a NUL to the strings; answers the offset. */
static uint32_t
fx_put_text(FxParser *p, const char *s, size_t len)
{
	FxExpr	   *e = p->out;
	uint32_t	at = e->strings_len;

	memcpy(e->strings + at, s, len);
	e->strings[at + len] = '\0';
	e->strings_len += (uint32_t) len + 1;
	return at;
}

/*
 * fx_put_string - append the current string token, decoded, and a NUL.
 */
static void
fx_put_string(FxParser *p, FxOperand *o)
{
	FxExpr	   *e = p->out;
	size_t		n = 0;

	o->str = e->strings_len;
	for (size_t i = p->tok.start + 1; i + 1 < p->tok.end; i++)
	{
		e->strings[o->str + n++] = p->src[i];
		if (p->src[i] == '\'')
			i++;
	}
	e->strings[o->str + n] = '\0';
	o->len = (uint32_t) n;
	e->strings_len += (uint32_t) n + 1;
}

/*
 * fx_operand - take the current token as an operand, and move past it;
 * with literal_only a field is refused.  Fails with message when the token
 * is none.
 */
static bool
fx_operand(FxParser *p, bool literal_only, FxOperand *o, const char *message)
{
	FxTok	   *t = &p->tok;

	memset(o, 0, sizeof(*o));
	if (t->kind == FXT_STRING)
	{
		o->kind = FX_STRING;
		fx_put_string(p, o);
		return fx_next(p);
	}
	if (t->kind == FXT_TRUE || t->kind == FXT_FALSE)
	{
		o->kind = FX_BOOL;
		o->boolean = t->kind == FXT_TRUE;
		o->len = o->boolean ? 4 : 5;
		o->str = fx_put_text(p, o->boolean ? "TRUE" : "FALSE", o->len);
		return fx_next(p);
	}
	if (t->kind != FXT_NUMBER && (t->kind != FXT_FIELD || literal_only))
		return fx_fail(p, t->start, message);
	o->kind = t->kind == FXT_NUMBER ? FX_NUMBER : FX_FIELD;
	o->len = (uint32_t) (t->end - t->start);
	o->str = fx_put_text(p, p->src + t->start, o->len);
	return fx_next(p);
}

/*
 * fx_node - append a node of kind, its other fields zero, and answer it as
 * a subtree of the given height; too tall a tree fails at byte at.
 */
static FxNode *
fx_node(FxParser *p, FxNodeKind kind, int height, size_t at, FxSub *res)
{
	FxNode	   *n;

	if (height > FX_MAX_DEPTH)
	{
		fx_fail(p, at, "expression nested too deeply");
		return NULL;
	}
	n = &p->out->nodes[p->out->nnodes];
	memset(n, 0, sizeof(*n));
	n->kind = kind;
	n->left = n->right = -1;
	res->node = p->out->nnodes++;
	res->height = height;
	return n;
}

/* fx_enter - open a '(' or NOT at byte at, unless nested too deeply. */
static bool
fx_enter(FxParser *p, size_t at)
{
	if (++p->nesting > FX_MAX_DEPTH)
		return fx_fail(p, at, "expression nested too deeply");
	return true;
}

/*
 * fx_in - the rest of a predicate from IN on: a list of literals, or
 * LIST and a list name.
 */
static bool
fx_in(FxParser *p, const FxOperand *a, bool negated, size_t at, FxSub *res)
{
	FxExpr	   *e = p->out;
	FxNode	   *n;

	if (!fx_next(p) || (n = fx_node(p, FX_IN, 1, at, res)) == NULL)
		return false;
	n->a = *a;
	n->negated = negated;
	if (p->tok.kind == FXT_LIST)
	{
		n->kind = FX_IN_LIST;
		return fx_next(p) &&
			fx_expect(p, FXT_STRING, "expected quoted list name") &&
			fx_operand(p, true, &n->b, "expected quoted list name");
	}
	if (!fx_expect(p, FXT_LPAREN, "expected '(' or LIST"))
		return false;
	n->first_item = e->nitems;
	do
	{
		if (!fx_next(p))
			return false;
		if (n->nitems == FX_MAX_IN_ITEMS)
			return fx_fail(p, p->tok.start, "too many items in IN list");
		if (!fx_operand(p, true, &e->items[e->nitems], "expected literal"))
			return false;
		e->nitems++;
		n->nitems++;
	} while (p->tok.kind == FXT_COMMA);
	return fx_expect(p, FXT_RPAREN, "expected ',' or ')'") && fx_next(p);
}

/*
 * fx_predicate - operand cmp_op operand, operand [NOT] IN ( ... ), or
 * operand [NOT] IN LIST string.
 */
static bool
fx_predicate(FxParser *p, FxSub *res)
{
	size_t		at = p->tok.start;
	FxOperand	a;
	FxNode	   *n;

	if (!fx_operand(p, false, &a, "expected operand"))
		return false;
	if (p->tok.kind == FXT_NOT)
		return fx_next(p) && fx_expect(p, FXT_IN, "expected IN after NOT") &&
			fx_in(p, &a, true, at, res);
	if (p->tok.kind == FXT_IN)
		return fx_in(p, &a, false, at, res);
	if (!fx_expect(p, FXT_OP, "expected comparison operator") ||
		(n = fx_node(p, FX_CMP, 1, at, res)) == NULL)
		return false;
	n->a = a;
	n->op = p->tok.op;
	return fx_next(p) && fx_operand(p, false, &n->b, "expected operand");
}

/* fx_is_missing - is_missing '(' field ')'; the '(' is known to follow. */
static bool
fx_is_missing(FxParser *p, FxSub *res)
{
	FxNode	   *n = fx_node(p, FX_IS_MISSING, 1, p->tok.start, res);

	return n != NULL && fx_next(p) && fx_next(p) &&
		fx_expect(p, FXT_FIELD, "expected field name") &&
		fx_operand(p, false, &n->a, "expected field name") &&
		fx_expect(p, FXT_RPAREN, "expected ')'") && fx_next(p);
}

/* fx_primary - '(' expr ')', is_missing(field) or a predicate. */
static bool
fx_primary(FxParser *p, FxSub *res)
{
	if (p->tok.kind == FXT_MISSING)
		return fx_is_missing(p, res);
	if (p->tok.kind != FXT_LPAREN)
		return fx_predicate(p, res);
	if (!fx_enter(p, p->tok.start) || !fx_next(p) || !fx_or(p, res) ||
		!fx_expect(p, FXT_RPAREN, "expected ')'"))
		return false;
	p->nesting--;
	return fx_next(p);
}

/* fx_unary - NOT unary, or a primary. */
static bool
fx_unary(FxParser *p, FxSub *res)
{
	size_t		at = p->tok.start;
	FxSub		child;
	FxNode	   *n;

	if (p->tok.kind != FXT_NOT)
		return fx_primary(p, res);
	if (!fx_enter(p, at) || !fx_next(p) || !fx_unary(p, &child) ||
		(n = fx_node(p, FX_NOT, child.height + 1, at, res)) == NULL)
		return false;
	p->nesting--;
	n->left = child.node;
	return true;
}

/*
 * fx_join - make left (kind) right the subtree *left; the operator's
 * keyword is at byte at.
 */
static bool
fx_join(FxParser *p, FxNodeKind kind, size_t at, FxSub *left,
		const FxSub *right)
{
	int			h = left->height > right->height ? left->height : right->height;
	int32_t		l = left->node;
	FxNode	   *n = fx_node(p, kind, h + 1, at, left);

	if (n == NULL)
		return false;
	n->left = l;
	n->right = right->node;
	return true;
}

/* fx_and - unary ( AND unary )*, left-associative. */
static bool
fx_and(FxParser *p, FxSub *res)
{
	FxSub		right;

	if (!fx_unary(p, res))
		return false;
	while (p->tok.kind == FXT_AND)
	{
		size_t		at = p->tok.start;

		if (!fx_next(p) || !fx_unary(p, &right) ||
			!fx_join(p, FX_AND, at, res, &right))
			return false;
	}
	return true;
}

/* fx_or - and_expr ( OR and_expr )*, left-associative. */
static bool
fx_or(FxParser *p, FxSub *res)
{
	FxSub		right;

	if (!fx_and(p, res))
		return false;
	while (p->tok.kind == FXT_OR)
	{
		size_t		at = p->tok.start;

		if (!fx_next(p) || !fx_and(p, &right) ||
			!fx_join(p, FX_OR, at, res, &right))
			return false;
	}
	return true;
}

/*
 * fx_parse - parse src[0..len) into out, whose nodes, items and strings
 * point to buffers of the capacities fraud_expr.h gives; on failure out
 * holds garbage and err says where and why.
 */
bool
fx_parse(const char *src, size_t len, FxExpr *out, FxError *err)
{
	FxParser	p;
	FxSub		root;

	out->nnodes = out->nitems = 0;
	out->root = -1;
	out->strings_len = 0;
	memset(&p, 0, sizeof(p));
	p.src = src;
	p.len = len;
	p.out = out;
	p.err = err;
	if (len > FX_MAX_LEN)
		return fx_fail(&p, FX_MAX_LEN, "expression is too long");
	if (!fx_next(&p))
		return false;
	if (p.tok.kind == FXT_END)
		return fx_fail(&p, len, "empty expression");
	if (!fx_or(&p, &root))
		return false;
	if (p.tok.kind == FXT_RPAREN)
		return fx_fail(&p, p.tok.start, "unmatched ')'");
	if (!fx_expect(&p, FXT_END, "expected AND or OR"))
		return false;
	out->root = root.node;
	return true;
}

/* Where fx_print writes: n counts every byte, the first cap are kept. */
typedef struct FxOut
{
	char	   *buf;
	size_t		cap;
	size_t		n;
} FxOut;

/* fx_out - append len bytes of s. */
static void
fx_out(FxOut *o, const char *s, size_t len)
{
	if (o->n < o->cap)
		memcpy(o->buf + o->n, s, o->cap - o->n < len ? o->cap - o->n : len);
	o->n += len;
}

/* fx_out_str - append the C string s. */
static void
fx_out_str(FxOut *o, const char *s)
{
	fx_out(o, s, strlen(s));
}

/* fx_out_operand - append an operand; a string is quoted again. */
static void
fx_out_operand(FxOut *o, const FxExpr *e, const FxOperand *a)
{
	const char *s = e->strings + a->str;

	if (a->kind != FX_STRING)
	{
		fx_out(o, s, a->len);
		return;
	}
	fx_out_str(o, "'");
	for (uint32_t i = 0; i < a->len; i++)
	{
		if (s[i] == '\'')
			fx_out_str(o, "''");
		else
			fx_out(o, s + i, 1);
	}
	fx_out_str(o, "'");
}

/* fx_out_items - append the literals of an IN node, as ( a, b, ... ). */
static void
fx_out_items(FxOut *o, const FxExpr *e, const FxNode *n)
{
	fx_out_str(o, "(");
	for (int32_t i = 0; i < n->nitems; i++)
	{
		if (i > 0)
			fx_out_str(o, ", ");
		fx_out_operand(o, e, &e->items[n->first_item + i]);
	}
	fx_out_str(o, ")");
}

/* fx_out_node - append node i and its subtree, canonically. */
static void
fx_out_node(FxOut *o, const FxExpr *e, int32_t i)
{
	const FxNode *n = &e->nodes[i];

	switch (n->kind)
	{
		case FX_OR:
		case FX_AND:
			fx_out_str(o, "(");
			fx_out_node(o, e, n->left);
			fx_out_str(o, n->kind == FX_OR ? " OR " : " AND ");
			fx_out_node(o, e, n->right);
			fx_out_str(o, ")");
			break;
		case FX_NOT:
			fx_out_str(o, "NOT ");
			fx_out_node(o, e, n->left);
			break;
		case FX_CMP:
			fx_out_operand(o, e, &n->a);
			fx_out_str(o, " ");
			fx_out_str(o, fx_op_name(n->op));
			fx_out_str(o, " ");
			fx_out_operand(o, e, &n->b);
			break;
		case FX_IN:
		case FX_IN_LIST:
			fx_out_operand(o, e, &n->a);
			fx_out_str(o, n->negated ? " NOT IN " : " IN ");
			if (n->kind == FX_IN)
				fx_out_items(o, e, n);
			else
			{
				fx_out_str(o, "LIST ");
				fx_out_operand(o, e, &n->b);
			}
			break;
		case FX_IS_MISSING:
			fx_out_str(o, "is_missing(");
			fx_out_operand(o, e, &n->a);
			fx_out_str(o, ")");
			break;
	}
}

/*
 * fx_print - write the canonical text of a parse into buf: keywords upper
 * case, is_missing lower case, one space around operators, every AND and
 * OR in parentheses, strings quoted again.  Like snprintf, it answers the
 * full length, writes at most cap bytes and ends them with a NUL (cut short
 * when the text does not fit; buf may be NULL when cap is 0); strings may
 * put NUL bytes inside the text.
 */
size_t
fx_print(const FxExpr *e, char *buf, size_t cap)
{
	FxOut		o = {buf, cap, 0};

	fx_out_node(&o, e, e->root);
	if (cap > 0)
		buf[o.n < cap ? o.n : cap - 1] = '\0';
	return o.n;
}

/* fx_op_name - the canonical spelling of a comparison. */
const char *
fx_op_name(FxOp op)
{
	static const char *const names[] = {"=", "!=", "<", "<=", ">", ">="};

	return (unsigned) op < sizeof(names) / sizeof(names[0]) ? names[op] : "?";
}

/*-------------------------------------------------------------------------
 *
 * fraud_expr.h
 *	  Pure-C parser of the fraud rules' condition language.
 *
 * fx_parse turns (pointer, length) input that may hold any bytes into a
 * flat tree in caller-provided buffers: no allocation, no server, no errors
 * thrown.  It answers true with the tree, or false with the 1-based byte
 * position of the problem and a short message.  fx_print writes the tree
 * back as canonical text.  fraud_rule.c compiles rules with it and
 * fraud_run.c evaluates the tree; test/fuzz/fuzz_fraud_expr.c checks it.
 *
 * The language, in the spirit of Stripe Radar rules:
 *
 *	expr	   := or_expr
 *	or_expr    := and_expr ( OR and_expr )*
 *	and_expr   := unary ( AND unary )*
 *	unary	   := NOT unary | primary
 *	primary    := '(' expr ')' | is_missing '(' field ')' | predicate
 *	predicate  := operand cmp_op operand
 *				| operand [NOT] IN '(' literal ( ',' literal )* ')'
 *				| operand [NOT] IN LIST string
 *	cmp_op	   := '=' | '==' | '!=' | '<>' | '<' | '<=' | '>' | '>='
 *	operand    := field | literal
 *	literal    := number | string | TRUE | FALSE
 *	field	   := ident ( '.' ident )*
 *	number	   := '-'? digits ( '.' digits )? ( [eE] [+-]? digits )?
 *	string	   := '...', with '' for one quote
 *
 * NOT binds tighter than AND, AND tighter than OR; both are left-
 * associative.  Keywords (AND OR NOT IN LIST TRUE FALSE is_missing) are
 * case-insensitive.  Tokens are separated by space, tab, CR or LF; a field,
 * a number and a string are each one token, with no space inside.  An
 * ident is [A-Za-z_][A-Za-z0-9_]*; a lone ident that is a keyword is that
 * keyword, not a field, but a keyword may be a segment of a dotted path
 * (metadata.list), and is_missing is a field unless '(' follows it.  A
 * number must not run straight into a letter, digit, '_' or '.' (1e, 1.5.2
 * and 2AND are malformed).  A string holds any bytes, NUL and invalid
 * UTF-8 included, passed through unchanged.
 *
 * Semantics (fraud_run.c evaluates): a field names a key of the JSON
 * context object, dotted for nested objects (billing.address.country);
 * a IN LIST 'name' asks whether a is on the stored list of that name;
 * is_missing(f) whether the context has no value at f.
 *
 * Limits: an input is at most FX_MAX_LEN bytes; a field at most
 * FX_MAX_FIELD_SEGMENTS segments; an IN list at most FX_MAX_IN_ITEMS
 * literals.  Depth is bounded twice by FX_MAX_DEPTH: parentheses and NOTs
 * open at any point, and the height of the tree (a leaf is 1, a node one
 * more than its taller child, so a flat chain of n ANDs is n + 1 high).
 * Both hold for fx_print's output of any parse, so canonical text parses
 * back, and both bound the recursion of the parser, the printer and an
 * evaluator that walks the tree.
 *
 *-------------------------------------------------------------------------
 */
#ifndef PAYMENTS_FRAUD_EXPR_H
#define PAYMENTS_FRAUD_EXPR_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Longest expression, in bytes. */
#define FX_MAX_LEN 4096

/* Deepest nesting and tallest tree (see above). */
#define FX_MAX_DEPTH 32

/* Most literals of one IN ( ... ) list. */
#define FX_MAX_IN_ITEMS 256

/* Most segments of one dotted field path. */
#define FX_MAX_FIELD_SEGMENTS 8

/*
 * Capacities a caller provides for an input of len <= FX_MAX_LEN bytes
 * (longer input is refused before any buffer is touched): FxExpr.nodes
 * holds FX_MAX_NODES(len) nodes, FxExpr.items FX_MAX_ITEMS(len) operands,
 * FxExpr.strings FX_MAX_STRINGS(len) bytes.  Every node takes at least two
 * bytes of input of its own (OR, a=1, ...), every IN item at least two
 * (1,), and an operand stores at most its token's length plus a NUL.
 */
#define FX_MAX_NODES(len) ((size_t) (len) / 2 + 1)
#define FX_MAX_ITEMS(len) ((size_t) (len) / 2 + 1)
#define FX_MAX_STRINGS(len) (2 * (size_t) (len) + 1)

/*
 * Bound on fx_print's answer for a parse of len bytes, without the NUL:
 * printing at most triples a token (2 bytes OR or 1 byte '=' take 6 and 3),
 * and strings, numbers, fields and TRUE/FALSE keep their length.  It may
 * exceed FX_MAX_LEN: canonical text of a long expression can be too long
 * to parse again.
 */
#define FX_PRINT_MAX(len) (3 * (size_t) (len))

/* A comparison; '==' is FX_EQ and '<>' is FX_NE. */
typedef enum FxOp
{
	FX_EQ,
	FX_NE,
	FX_LT,
	FX_LE,
	FX_GT,
	FX_GE
} FxOp;

typedef enum FxOperandKind
{
	FX_FIELD,
	FX_NUMBER,
	FX_STRING,
	FX_BOOL
} FxOperandKind;

/*
 * An operand.  Its text is strings[str .. str+len), followed by a NUL
 * there: a field path as written (dotted, case kept); a number as written
 * (for example -1.5e3, converted by the caller); a string decoded ('' made
 * one quote), which may itself hold NUL bytes, so len and not strlen is its
 * length; TRUE or FALSE for a boolean.
 */
typedef struct FxOperand
{
	FxOperandKind kind;
	uint32_t	str;
	uint32_t	len;
	bool		boolean;		/* FX_BOOL's value */
} FxOperand;

typedef enum FxNodeKind
{
	FX_OR,
	FX_AND,
	FX_NOT,
	FX_CMP,
	FX_IN,
	FX_IN_LIST,
	FX_IS_MISSING
} FxNodeKind;

/* A node of the tree; fields its kind does not use are 0, links -1. */
typedef struct FxNode
{
	FxNodeKind	kind;
	int32_t		left;			/* FX_OR, FX_AND, FX_NOT: child nodes */
	int32_t		right;			/* FX_OR, FX_AND */
	FxOp		op;				/* FX_CMP */
	FxOperand	a;				/* FX_CMP: a op b; FX_IN, FX_IN_LIST and */
	FxOperand	b;				/* FX_IS_MISSING (a field): a; FX_IN_LIST: b,
								 * the list name (FX_STRING) */
	bool		negated;		/* FX_IN, FX_IN_LIST: NOT IN */
	int32_t		first_item;		/* FX_IN: items[first_item .. +nitems) */
	int32_t		nitems;
} FxNode;

/* A parsed expression; the caller points the three arrays at its buffers. */
typedef struct FxExpr
{
	FxNode	   *nodes;
	int32_t		nnodes;
	int32_t		root;			/* index in nodes */
	FxOperand  *items;			/* literals of the IN lists */
	int32_t		nitems;
	char	   *strings;		/* operands' text */
	uint32_t	strings_len;
} FxExpr;

/* Why a parse failed: message is static, lower case, without a period. */
typedef struct FxError
{
	uint32_t	pos;			/* 1-based byte position; len + 1 is the end */
	const char *message;
} FxError;

extern bool fx_parse(const char *src, size_t len, FxExpr *out, FxError *err);
extern size_t fx_print(const FxExpr *e, char *buf, size_t cap);
extern const char *fx_op_name(FxOp op);

#endif							/* PAYMENTS_FRAUD_EXPR_H */

/*-------------------------------------------------------------------------
 *
 * fraud_run.c
 *	  Running one compiled fraud rule on an evaluation's context.
 *
 * A rule reads context fields (dotted paths into the jsonb object) and, for
 * lists and velocity, asks fraud_store.c.  It answers hit or not, with the
 * action and score of the hit, or an error when the context does not let
 * it run (an amount that is not a number, an unknown AVS result, a
 * comparison of a number with a string): fraud.c then applies
 * payments.fraud_on_error, so a rule that cannot run never approves
 * silently.  A missing field (absent or JSON null) is never an error: a
 * rule that needs it does not hit, and a comparison with it is false.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "fmgr.h"
#include "miscadmin.h"
#include "utils/builtins.h"
#include "utils/jsonb.h"
#include "utils/numeric.h"
#include "utils/timestamp.h"

#include "digest.h"
#include "fraud.h"

/* A truth value of the expression language, or an error. */
typedef enum FraudTruth
{
	FT_FALSE,
	FT_TRUE,
	FT_ERROR
} FraudTruth;

/* One expression being run. */
typedef struct ExprRun
{
	const FraudRule *rule;
	const FraudInput *in;
	const char *error;
} ExprRun;

/*
 * ValueFromJsonb - the rules' view of one jsonb value.
 */
static void
ValueFromJsonb(const JsonbValue *jv, FraudValue *v)
{
	memset(v, 0, sizeof(*v));
	switch (jv->type)
	{
		case jbvNull:
			v->kind = FV_MISSING;
			break;
		case jbvString:
			v->kind = FV_STRING;
			v->str = jv->val.string.val;
			v->len = jv->val.string.len;
			break;
		case jbvNumeric:
			v->kind = FV_NUMBER;
			v->num = jv->val.numeric;
			break;
		case jbvBool:
			v->kind = FV_BOOL;
			v->boolean = jv->val.boolean;
			break;
		default:
			v->kind = FV_OTHER;
			break;
	}
}

/*
 * ValueAt - the value of a dotted field path in the context object.
 */
static void
ValueAt(Jsonb *context, const char *path, int len, FraudValue *v)
{
	JsonbContainer *c = &context->root;
	const char *p = path;
	const char *end = path + len;
	JsonbValue	jv;

	for (;;)
	{
		const char *dot = memchr(p, '.', end - p);
		int			klen = (dot != NULL ? dot : end) - p;

		if (!JsonContainerIsObject(c) ||
			getKeyJsonValueFromContainer(c, p, klen, &jv) == NULL)
		{
			memset(v, 0, sizeof(*v));
			v->kind = FV_MISSING;
			return;
		}
		if (dot == NULL)
			break;
		if (jv.type != jbvBinary)
		{
			memset(v, 0, sizeof(*v));
			v->kind = FV_MISSING;
			return;
		}
		c = jv.val.binary.data;
		p = dot + 1;
	}
	ValueFromJsonb(&jv, v);
}

/*
 * fraud_value - the value of field f in the context.
 */
void
fraud_value(Jsonb *context, const FraudField *f, FraudValue *v)
{
	ValueAt(context, f->path, f->len, v);
}

/*
 * fraud_value_key - the text under which a value is listed or counted: a
 * string as it is (ASCII-lower-cased for an email), a number in its
 * normal form (42 and 42.0 are one key), true or false.  False for a
 * missing value, an object or an array.
 */
bool
fraud_value_key(const FraudValue *v, bool email, char **out)
{
	switch (v->kind)
	{
		case FV_STRING:
			*out = pnstrdup(v->str, v->len);
			if (email)
				for (char *p = *out; *p; p++)
					*p = pg_ascii_tolower((unsigned char) *p);
			return true;
		case FV_NUMBER:
			*out = numeric_normalize(v->num);
			return true;
		case FV_BOOL:
			*out = pstrdup(v->boolean ? "true" : "false");
			return true;
		default:
			return false;
	}
}

/*
 * fraud_velocity_key - the text under which a value is counted by velocity
 * rules: its key (fraud_value_key), or for a key longer than
 * FRAUD_VELOCITY_KEY_MAX bytes "sha256:" and the hex digest of it, so that
 * any value a client sends fits the velocity index.  False as for
 * fraud_value_key.
 */
bool
fraud_velocity_key(const FraudValue *v, bool email, char **out)
{
	uint8		digest[PAYMENTS_SHA256_LEN];
	char		hex[2 * PAYMENTS_SHA256_LEN + 1];
	size_t		len;

	if (!fraud_value_key(v, email, out))
		return false;
	len = strlen(*out);
	if (len > FRAUD_VELOCITY_KEY_MAX)
	{
		payments_sha256(*out, len, digest);
		hex_encode((const char *) digest, PAYMENTS_SHA256_LEN, hex);
		hex[2 * PAYMENTS_SHA256_LEN] = '\0';
		*out = psprintf("sha256:%s", hex);
	}
	return true;
}

/*
 * NumericSyntax - whether s[0..len) is a plain decimal number, as a JSON
 * string holding an amount may be ("12.50").
 */
static bool
NumericSyntax(const char *s, int len)
{
	int			i = 0,
				digits = 0;

	if (len > 64)
		return false;
	if (i < len && (s[i] == '-' || s[i] == '+'))
		i++;
	for (; i < len && isdigit((unsigned char) s[i]); i++)
		digits++;
	if (i < len && s[i] == '.')
		for (i++; i < len && isdigit((unsigned char) s[i]); i++)
			digits++;
	return digits > 0 && i == len;
}

/*
 * fraud_value_numeric - the value as a number: a JSON number, or a string
 * that is a plain decimal number; false otherwise.
 */
bool
fraud_value_numeric(const FraudValue *v, Numeric *out)
{
	if (v->kind == FV_NUMBER)
	{
		*out = v->num;
		return true;
	}
	if (v->kind != FV_STRING || !NumericSyntax(v->str, v->len))
		return false;
	*out = DatumGetNumeric(DirectFunctionCall3(numeric_in,
											   CStringGetDatum(pnstrdup(v->str, v->len)),
											   ObjectIdGetDatum(InvalidOid),
											   Int32GetDatum(-1)));
	return true;
}

/*
 * NumericCmp - -1, 0 or 1 as a is less than, equal to or greater than b.
 */
static int
NumericCmp(Numeric a, Numeric b)
{
	return DatumGetInt32(DirectFunctionCall2(numeric_cmp, NumericGetDatum(a),
											 NumericGetDatum(b)));
}

/*
 * StringCmp - byte order of two strings, ASCII case folded when fold.
 */
static int
StringCmp(const char *a, int alen, const char *b, int blen, bool fold)
{
	int			n = Min(alen, blen);

	for (int i = 0; i < n; i++)
	{
		unsigned char ca = a[i],
					cb = b[i];

		if (fold)
		{
			ca = pg_ascii_tolower(ca);
			cb = pg_ascii_tolower(cb);
		}
		if (ca != cb)
			return ca < cb ? -1 : 1;
	}
	return alen == blen ? 0 : (alen < blen ? -1 : 1);
}

/*
 * ValueKindName - a value's type, in error messages.
 */
static const char *
ValueKindName(FraudValueKind kind)
{
	switch (kind)
	{
		case FV_STRING:
			return "a string";
		case FV_NUMBER:
			return "a number";
		case FV_BOOL:
			return "a boolean";
		default:
			return "an object or array";
	}
}

/*
 * ValueCompare - compare two present values into *cmp; false with run's
 * error when they cannot be compared (ordered says whether <, > are
 * asked, which booleans do not have).
 */
static bool
ValueCompare(ExprRun *run, const FraudValue *a, const FraudValue *b,
			 bool fold, bool ordered, int *cmp)
{
	Numeric		na,
				nb;

	if ((a->kind == FV_NUMBER || b->kind == FV_NUMBER) &&
		fraud_value_numeric(a, &na) && fraud_value_numeric(b, &nb))
		*cmp = NumericCmp(na, nb);
	else if (a->kind == FV_STRING && b->kind == FV_STRING)
		*cmp = StringCmp(a->str, a->len, b->str, b->len, fold);
	else if (a->kind == FV_BOOL && b->kind == FV_BOOL)
	{
		if (ordered)
		{
			run->error = pstrdup("booleans are only compared with = and !=");
			return false;
		}
		*cmp = a->boolean == b->boolean ? 0 : 1;
	}
	else
	{
		run->error = psprintf("cannot compare %s with %s",
							  ValueKindName(a->kind), ValueKindName(b->kind));
		return false;
	}
	return true;
}

/*
 * OperandValue - an operand's value: a context field or a literal; *fold
 * is set when it is an email field.
 */
static void
OperandValue(ExprRun *run, const FxOperand *o, FraudValue *v, bool *fold)
{
	const FxExpr *e = &run->rule->u.expression.expr;
	const char *s = e->strings + o->str;

	memset(v, 0, sizeof(*v));
	switch (o->kind)
	{
		case FX_FIELD:
			{
				const char *last = memrchr(s, '.', o->len);

				last = last ? last + 1 : s;
				*fold |= fraud_field_is_email(last, s + o->len - last);
				ValueAt(run->in->context, s, o->len, v);
				break;
			}
		case FX_NUMBER:
			v->kind = FV_NUMBER;
			for (int i = 0; i < run->rule->u.expression.nnumbers; i++)
				if (run->rule->u.expression.numbers[i].str == o->str)
					v->num = run->rule->u.expression.numbers[i].value;
			Assert(v->num != NULL);
			break;
		case FX_STRING:
			v->kind = FV_STRING;
			v->str = s;
			v->len = o->len;
			break;
		case FX_BOOL:
			v->kind = FV_BOOL;
			v->boolean = o->boolean;
			break;
	}
}

/*
 * ExprCompare - a op b.
 */
static FraudTruth
ExprCompare(ExprRun *run, const FxNode *n)
{
	FraudValue	a,
				b;
	bool		fold = false;
	int			cmp;
	bool		r = false;

	OperandValue(run, &n->a, &a, &fold);
	OperandValue(run, &n->b, &b, &fold);
	if (a.kind == FV_MISSING || b.kind == FV_MISSING)
		return FT_FALSE;
	if (!ValueCompare(run, &a, &b, fold, n->op != FX_EQ && n->op != FX_NE, &cmp))
		return FT_ERROR;
	switch (n->op)
	{
		case FX_EQ:
			r = cmp == 0;
			break;
		case FX_NE:
			r = cmp != 0;
			break;
		case FX_LT:
			r = cmp < 0;
			break;
		case FX_LE:
			r = cmp <= 0;
			break;
		case FX_GT:
			r = cmp > 0;
			break;
		case FX_GE:
			r = cmp >= 0;
			break;
	}
	return r ? FT_TRUE : FT_FALSE;
}

/*
 * ExprIn - a [NOT] IN (items).
 */
static FraudTruth
ExprIn(ExprRun *run, const FxNode *n)
{
	const FxExpr *e = &run->rule->u.expression.expr;
	FraudValue	a;
	bool		fold = false;
	bool		found = false;

	OperandValue(run, &n->a, &a, &fold);
	if (a.kind == FV_MISSING)
		return FT_FALSE;
	for (int i = 0; i < n->nitems && !found; i++)
	{
		FraudValue	item;
		bool		item_fold = fold;
		int			cmp;

		OperandValue(run, &e->items[n->first_item + i], &item, &item_fold);
		if (!ValueCompare(run, &a, &item, fold, false, &cmp))
			return FT_ERROR;
		found = cmp == 0;
	}
	return found != n->negated ? FT_TRUE : FT_FALSE;
}

/*
 * ExprInList - a [NOT] IN LIST 'name'.
 */
static FraudTruth
ExprInList(ExprRun *run, const FxNode *n)
{
	const FxExpr *e = &run->rule->u.expression.expr;
	FraudValue	a;
	bool		fold = false;
	char	   *key;

	OperandValue(run, &n->a, &a, &fold);
	if (a.kind == FV_MISSING)
		return FT_FALSE;
	if (!fraud_value_key(&a, fold, &key))
	{
		run->error = pstrdup("an object or array is not in any list");
		return FT_ERROR;
	}
	return fraud_store_listed(e->strings + n->b.str, key, fold) != n->negated ?
		FT_TRUE : FT_FALSE;
}

/*
 * ExprNode - the truth of node i.  The tree is as deep as the parser let
 * it be, and AND/OR chains are deep on one side: check the stack.
 */
static FraudTruth
ExprNode(ExprRun *run, int i)
{
	const FxNode *n = &run->rule->u.expression.expr.nodes[i];
	FraudTruth	t;

	check_stack_depth();
	switch (n->kind)
	{
		case FX_OR:
		case FX_AND:
			t = ExprNode(run, n->left);
			if (t == FT_ERROR || (t == FT_TRUE) == (n->kind == FX_OR))
				return t;
			return ExprNode(run, n->right);
		case FX_NOT:
			t = ExprNode(run, n->left);
			return t == FT_ERROR ? t : (t == FT_TRUE ? FT_FALSE : FT_TRUE);
		case FX_CMP:
			return ExprCompare(run, n);
		case FX_IN:
			return ExprIn(run, n);
		case FX_IN_LIST:
			return ExprInList(run, n);
		case FX_IS_MISSING:
			{
				FraudValue	a;
				bool		fold = false;

				OperandValue(run, &n->a, &a, &fold);
				return a.kind == FV_MISSING ? FT_TRUE : FT_FALSE;
			}
	}
	elog(ERROR, "unknown expression node kind %d", (int) n->kind);
	pg_unreachable();
}

/*
 * Hit - the rule hit, with the kind's (or the outcome's) action and score
 * unless the rule sets its own.
 */
static void
Hit(const FraudRule *r, FraudRunResult *res, FraudAction action, int32 score,
	const char *detail)
{
	res->hit = true;
	res->action = r->action_set ? r->action : action;
	res->score = r->score_set ? r->score : score;
	res->detail = detail;
}

/*
 * RunExpression - the expression is true.
 */
static void
RunExpression(const FraudRule *r, const FraudInput *in, FraudRunResult *res)
{
	ExprRun		run = {r, in, NULL};

	switch (ExprNode(&run, r->u.expression.expr.root))
	{
		case FT_TRUE:
			Hit(r, res, r->action, r->score, NULL);
			break;
		case FT_FALSE:
			break;
		case FT_ERROR:
			res->error = run.error;
			break;
	}
}

/*
 * RunBlocklist - the field's value is on the list.
 */
static void
RunBlocklist(const FraudRule *r, const FraudInput *in, FraudRunResult *res)
{
	const FraudField *f = &r->u.blocklist.field;
	FraudValue	v;
	char	   *key;

	fraud_value(in->context, f, &v);
	if (v.kind == FV_MISSING)
		return;
	if (!fraud_value_key(&v, f->email, &key))
		res->error = psprintf("field %s is an object or array", f->path);
	else if (fraud_store_listed(r->u.blocklist.list, key, f->email))
		Hit(r, res, r->action, r->score,
			psprintf("%s is on list %s", f->path, r->u.blocklist.list));
}

/*
 * AvsCvvResult - the gateway's check result in field name: 0 pass,
 * 1 fail, 2 partial, 3 not checked (unavailable, unchecked or missing),
 * -1 anything else.
 */
static int
AvsCvvResult(const FraudInput *in, const char *name)
{
	static const char *const results[] = {
		"pass", "fail", "partial", "unavailable", "unchecked"
	};
	FraudValue	v;

	ValueAt(in->context, name, strlen(name), &v);
	if (v.kind == FV_MISSING)
		return 3;
	if (v.kind != FV_STRING)
		return -1;
	for (int i = 0; i < (int) lengthof(results); i++)
		if (StringCmp(v.str, v.len, results[i], strlen(results[i]), true) == 0)
			return Min(i, 3);
	return -1;
}

/*
 * RunAvsCvv - CVV fail blocks (100), AVS fail blocks (80), AVS partial
 * challenges (20).
 */
static void
RunAvsCvv(const FraudRule *r, const FraudInput *in, FraudRunResult *res)
{
	int			avs = AvsCvvResult(in, "avs_result");
	int			cvv = AvsCvvResult(in, "cvv_result");

	if (cvv < 0 || avs < 0)
		res->error = psprintf("%s is not pass, fail, partial, unavailable or unchecked",
							  cvv < 0 ? "cvv_result" : "avs_result");
	else if (cvv == 1)
		Hit(r, res, FA_BLOCK, 100, "cvv_result is fail");
	else if (avs == 1)
		Hit(r, res, FA_BLOCK, 80, "avs_result is fail");
	else if (avs == 2)
		Hit(r, res, FA_CHALLENGE, 20, "avs_result is partial");
}

/*
 * RunMismatch - two of the present fields differ (ASCII case folded).
 */
static void
RunMismatch(const FraudRule *r, const FraudInput *in, FraudRunResult *res)
{
	FraudValue	first = {0};
	const FraudField *first_field = NULL;

	for (int i = 0; i < r->u.mismatch.nfields; i++)
	{
		const FraudField *f = &r->u.mismatch.fields[i];
		FraudValue	v;

		fraud_value(in->context, f, &v);
		if (v.kind == FV_MISSING)
			continue;
		if (v.kind != FV_STRING)
		{
			res->error = psprintf("field %s is not a string", f->path);
			return;
		}
		if (first_field == NULL)
		{
			first = v;
			first_field = f;
		}
		else if (StringCmp(first.str, first.len, v.str, v.len, true) != 0)
		{
			Hit(r, res, r->action, r->score,
				psprintf("%s differs from %s", f->path, first_field->path));
			return;
		}
	}
}

/*
 * RunHighAmount - the amount is at or over the threshold, in the rule's
 * currency when it names one.
 */
static void
RunHighAmount(const FraudRule *r, const FraudInput *in, FraudRunResult *res)
{
	FraudValue	amount,
				currency;
	Numeric		n;

	fraud_value(in->context, &r->u.high_amount.amount, &amount);
	if (amount.kind == FV_MISSING)
		return;
	if (r->u.high_amount.code != NULL)
	{
		fraud_value(in->context, &r->u.high_amount.currency, &currency);
		if (currency.kind != FV_STRING ||
			StringCmp(currency.str, currency.len, r->u.high_amount.code, 3, true) != 0)
			return;
	}
	if (!fraud_value_numeric(&amount, &n))
		res->error = psprintf("field %s is not a number", r->u.high_amount.amount.path);
	else if (NumericCmp(n, r->u.high_amount.threshold) >= 0)
		Hit(r, res, r->action, r->score,
			psprintf("%s is at or over %s", r->u.high_amount.amount.path,
					 numeric_normalize(r->u.high_amount.threshold)));
}

/*
 * RunVelocity - earlier recorded evaluations with this key's value in the
 * window reached max_count, or their sum with this one's goes over
 * max_sum.
 */
static void
RunVelocity(const FraudRule *r, const FraudInput *in, FraudRunResult *res)
{
	const FraudField *key = &r->u.velocity.key;
	const FraudField *sum = &r->u.velocity.sum;
	FraudValue	v;
	char	   *value;
	Numeric		current = int64_to_numeric(0);
	TimestampTz from;
	int64		count;
	Numeric		total;

	fraud_value(in->context, key, &v);
	if (v.kind == FV_MISSING)
		return;
	if (!fraud_velocity_key(&v, key->email, &value))
	{
		res->error = psprintf("field %s is an object or array", key->path);
		return;
	}
	if (sum->path != NULL)
	{
		fraud_value(in->context, sum, &v);
		if (v.kind != FV_MISSING && !fraud_value_numeric(&v, &current))
		{
			res->error = psprintf("field %s is not a number", sum->path);
			return;
		}
	}
	from = DatumGetTimestampTz(DirectFunctionCall2(timestamptz_mi_interval,
												   TimestampTzGetDatum(in->at),
												   IntervalPGetDatum(&r->u.velocity.window)));
	fraud_store_velocity(key, value, from, in, sum->path ? sum : NULL,
						 &count, &total);
	if (r->u.velocity.max_count > 0 && count >= r->u.velocity.max_count)
		Hit(r, res, r->action, r->score,
			psprintf("%lld earlier evaluations with this %s in the window (max %lld)",
					 (long long) count, key->path, (long long) r->u.velocity.max_count));
	else if (sum->path != NULL &&
			 NumericCmp(DatumGetNumeric(DirectFunctionCall2(numeric_add,
															NumericGetDatum(total),
															NumericGetDatum(current))),
						r->u.velocity.max_sum) > 0)
		Hit(r, res, r->action, r->score,
			psprintf("%s with this %s in the window goes over %s",
					 sum->path, key->path, numeric_normalize(r->u.velocity.max_sum)));
}

/*
 * fraud_rule_run - run rule r on the input into res.
 */
void
fraud_rule_run(const FraudRule *r, const FraudInput *in, FraudRunResult *res)
{
	memset(res, 0, sizeof(*res));
	switch (r->kind)
	{
		case FK_BLOCKLIST:
			RunBlocklist(r, in, res);
			break;
		case FK_AVS_CVV:
			RunAvsCvv(r, in, res);
			break;
		case FK_VELOCITY:
			RunVelocity(r, in, res);
			break;
		case FK_COUNTRY_MISMATCH:
			RunMismatch(r, in, res);
			break;
		case FK_HIGH_AMOUNT:
			RunHighAmount(r, in, res);
			break;
		case FK_EXPRESSION:
			RunExpression(r, in, res);
			break;
	}
}

/*-------------------------------------------------------------------------
 *
 * fraud_rule.c
 *	  Compiling one fraud rule from its row, which is also its validation.
 *
 * payments.fraud_rule_check (the CHECK constraint of payments.fraud_rules)
 * compiles a rule and throws it away, so a rule that could not run is
 * never stored; the rule cache (fraud.c) compiles the stored rules once
 * per change; the backtest compiles its candidate.  Every error names the
 * rule and is 22023, with the position for an expression.  Unknown
 * parameters are errors too: a misspelt "max_cout" must not leave a rule
 * without its limit.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "fmgr.h"
#include "utils/builtins.h"
#include "utils/jsonb.h"
#include "utils/numeric.h"
#include "utils/timestamp.h"

#include "fraud.h"

/* Per kind: its name, default action and score, and parameters. */
typedef struct FraudKindInfo
{
	const char *name;
	FraudAction action;
	int32		score;
	const char *const params[6];	/* NULL-terminated */
} FraudKindInfo;

static const FraudKindInfo FraudKinds[] = {
	[FK_BLOCKLIST] = {"blocklist", FA_BLOCK, 100, {"field", "list"}},
	[FK_AVS_CVV] = {"avs_cvv", FA_BLOCK, 100, {NULL}},
	[FK_VELOCITY] = {"velocity", FA_BLOCK, 100,
	{"key", "window", "max_count", "sum_field", "max_sum"}},
	[FK_COUNTRY_MISMATCH] = {"country_mismatch", FA_CHALLENGE, 30, {"fields"}},
	[FK_HIGH_AMOUNT] = {"high_amount", FA_CHALLENGE, 15,
	{"threshold", "currency", "amount_field", "currency_field"}},
	[FK_EXPRESSION] = {"expression", FA_REVIEW, 50, {"expr"}},
};

#define FRAUD_NKINDS ((int) lengthof(FraudKinds))
#define FRAUD_SCORE_MAX 1000

/*
 * RuleError - throw the error of rule name (its text is the format).
 */
#define RuleError(r, ...) \
	ereport(ERROR, \
			(errcode(ERRCODE_INVALID_PARAMETER_VALUE), \
			 errmsg("fraud rule \"%s\": %s", (r)->name, psprintf(__VA_ARGS__))))

/*
 * fraud_kind_name - the kind as payments.fraud_rules spells it.
 */
const char *
fraud_kind_name(FraudKind kind)
{
	return FraudKinds[kind].name;
}

/*
 * RuleParam - the parameter key of params, or NULL.
 */
static JsonbValue *
RuleParam(Jsonb *params, const char *key)
{
	JsonbValue	k;

	k.type = jbvString;
	k.val.string.val = (char *) key;
	k.val.string.len = strlen(key);
	return findJsonbValueFromContainer(&params->root, JB_FOBJECT, &k);
}

/*
 * RuleCheckParamNames - every key of params must be one of the kind's.
 */
static void
RuleCheckParamNames(FraudRule *r, Jsonb *params)
{
	const FraudKindInfo *info = &FraudKinds[r->kind];
	JsonbIterator *it = JsonbIteratorInit(&params->root);
	JsonbValue	v;
	JsonbIteratorToken tok;

	while ((tok = JsonbIteratorNext(&it, &v, true)) != WJB_DONE)
	{
		bool		known = false;

		if (tok != WJB_KEY)
			continue;
		for (int i = 0; info->params[i] != NULL; i++)
			known |= (strlen(info->params[i]) == (size_t) v.val.string.len &&
					  memcmp(info->params[i], v.val.string.val,
							 v.val.string.len) == 0);
		if (!known)
			RuleError(r, "unknown parameter \"%s\" for kind %s",
					  pnstrdup(v.val.string.val, Min(v.val.string.len, FRAUD_NAME_MAX)),
					  info->name);
	}
}

/*
 * RuleString - parameter key as a non-empty string; NULL if absent and
 * not required.
 */
static const char *
RuleString(FraudRule *r, Jsonb *params, const char *key, bool required)
{
	JsonbValue *v = RuleParam(params, key);

	if (v == NULL || v->type == jbvNull)
	{
		if (required)
			RuleError(r, "parameter \"%s\" is required", key);
		return NULL;
	}
	if (v->type != jbvString || v->val.string.len == 0 ||
		v->val.string.len > FRAUD_NAME_MAX)
		RuleError(r, "parameter \"%s\" must be a string of 1 to %d bytes",
				  key, FRAUD_NAME_MAX);
	return pnstrdup(v->val.string.val, v->val.string.len);
}

/*
 * fraud_field_compile - the field path ("billing.country") into f; false
 * if it is not one.  Email fields (the last key is email or ends in
 * _email) are compared case-insensitively.
 */
bool
fraud_field_compile(const char *path, FraudField *f)
{
	const char *p = path;
	int			nkeys = 0;
	const char *last = path;

	for (;;)
	{
		if (!(isalpha((unsigned char) *p) || *p == '_'))
			return false;
		last = p;
		while (isalnum((unsigned char) *p) || *p == '_')
			p++;
		if (++nkeys > FX_MAX_FIELD_SEGMENTS)
			return false;
		if (*p == '\0')
			break;
		if (*p++ != '.')
			return false;
	}
	f->path = path;
	f->len = p - path;
	f->email = fraud_field_is_email(last, p - last);
	return true;
}

/*
 * fraud_field_is_email - whether the last key of a field path names an
 * email address.
 */
bool
fraud_field_is_email(const char *key, int len)
{
	return (len == 5 && pg_strncasecmp(key, "email", 5) == 0) ||
		(len > 6 && pg_strncasecmp(key + len - 6, "_email", 6) == 0);
}

/*
 * RuleField - parameter key as a field path (dflt when absent).
 */
static void
RuleField(FraudRule *r, Jsonb *params, const char *key, const char *dflt,
		  FraudField *f)
{
	const char *path = RuleString(r, params, key, dflt == NULL);

	if (path == NULL)
		path = dflt;
	if (!fraud_field_compile(path, f))
		RuleError(r, "parameter \"%s\" is not a field name: \"%s\"", key, path);
}

/*
 * RuleNumber - parameter key as a number greater than zero, or NULL when
 * absent.
 */
static Numeric
RuleNumber(FraudRule *r, Jsonb *params, const char *key)
{
	JsonbValue *v = RuleParam(params, key);

	if (v == NULL || v->type == jbvNull)
		return NULL;
	if (v->type != jbvNumeric ||
		DatumGetInt32(DirectFunctionCall2(numeric_cmp,
										  NumericGetDatum(v->val.numeric),
										  NumericGetDatum(int64_to_numeric(0)))) <= 0)
		RuleError(r, "parameter \"%s\" must be a number greater than zero", key);
	return v->val.numeric;
}

/*
 * RuleErrorContext - the CONTEXT line of an error raised by a conversion
 * of a parameter (an interval, a number) rather than by this file.
 */
static void
RuleErrorContext(void *arg)
{
	errcontext("fraud rule \"%s\"", (const char *) arg);
}

/*
 * RuleConvert - text converted by a type's input function, an error
 * naming the rule in its context.
 */
static Datum
RuleConvert(FraudRule *r, PGFunction in, const char *text)
{
	ErrorContextCallback cb;
	Datum		d;

	cb.callback = RuleErrorContext;
	cb.arg = (void *) r->name;
	cb.previous = error_context_stack;
	error_context_stack = &cb;
	d = DirectFunctionCall3(in, CStringGetDatum(text),
							ObjectIdGetDatum(InvalidOid), Int32GetDatum(-1));
	error_context_stack = cb.previous;
	return d;
}

/*
 * CompileBlocklist - {"field": ..., "list": ...}.
 */
static void
CompileBlocklist(FraudRule *r, Jsonb *params)
{
	RuleField(r, params, "field", NULL, &r->u.blocklist.field);
	r->u.blocklist.list = RuleString(r, params, "list", true);
}

/*
 * CompileWindow - the velocity window: an interval greater than zero.
 */
static void
CompileWindow(FraudRule *r, Jsonb *params)
{
	const char *text = RuleString(r, params, "window", true);
	Interval   *w;
	Interval	zero = {0};

	w = DatumGetIntervalP(RuleConvert(r, interval_in, text));
	if (DatumGetInt32(DirectFunctionCall2(interval_cmp, IntervalPGetDatum(w),
										  IntervalPGetDatum(&zero))) <= 0)
		RuleError(r, "parameter \"window\" must be an interval greater than zero");
	r->u.velocity.window = *w;
}

/*
 * CompileVelocity - {"key", "window", "max_count"} and/or
 * {"sum_field", "max_sum"}.
 */
static void
CompileVelocity(FraudRule *r, Jsonb *params)
{
	JsonbValue *max = RuleParam(params, "max_count");
	bool		has_sum = RuleParam(params, "sum_field") != NULL;

	RuleField(r, params, "key", NULL, &r->u.velocity.key);
	CompileWindow(r, params);
	r->u.velocity.max_count = 0;
	if (max != NULL && max->type != jbvNull)
	{
		Numeric		n = RuleNumber(r, params, "max_count");

		if (strchr(numeric_normalize(n), '.') != NULL ||
			DatumGetBool(DirectFunctionCall2(numeric_gt, NumericGetDatum(n),
											 NumericGetDatum(int64_to_numeric(PG_INT32_MAX)))))
			RuleError(r, "parameter \"max_count\" must be a whole number from 1 to %d",
					  PG_INT32_MAX);
		r->u.velocity.max_count =
			DatumGetInt64(DirectFunctionCall1(numeric_int8, NumericGetDatum(n)));
	}
	r->u.velocity.max_sum = RuleNumber(r, params, "max_sum");
	r->u.velocity.sum.path = NULL;
	if (has_sum)
		RuleField(r, params, "sum_field", NULL, &r->u.velocity.sum);
	if (has_sum != (r->u.velocity.max_sum != NULL))
		RuleError(r, "parameters \"sum_field\" and \"max_sum\" go together");
	if (r->u.velocity.max_count == 0 && !has_sum)
		RuleError(r, "a velocity rule needs \"max_count\" or \"sum_field\" with \"max_sum\"");
}

/*
 * CompileMismatch - {"fields": [at least two field names]}, by default
 * card_country and billing_country.
 */
static void
CompileMismatch(FraudRule *r, Jsonb *params)
{
	JsonbValue *v = RuleParam(params, "fields");
	static const char *const dflt[] = {"card_country", "billing_country"};
	int			n = 0;

	if (v == NULL)
	{
		r->u.mismatch.nfields = 2;
		r->u.mismatch.fields = palloc(sizeof(FraudField) * 2);
		for (int i = 0; i < 2; i++)
			fraud_field_compile(dflt[i], &r->u.mismatch.fields[i]);
		return;
	}
	if (v->type != jbvBinary || !JsonContainerIsArray(v->val.binary.data) ||
		JsonContainerSize(v->val.binary.data) < 2 ||
		JsonContainerSize(v->val.binary.data) > 16)
		RuleError(r, "parameter \"fields\" must be an array of 2 to 16 field names");
	r->u.mismatch.fields = palloc(sizeof(FraudField) * 16);
	for (uint32 i = 0; i < JsonContainerSize(v->val.binary.data); i++)
	{
		JsonbValue *e = getIthJsonbValueFromContainer(v->val.binary.data, i);

		if (e->type != jbvString ||
			e->val.string.len > FRAUD_NAME_MAX ||
			!fraud_field_compile(pnstrdup(e->val.string.val, e->val.string.len),
						  &r->u.mismatch.fields[n++]))
			RuleError(r, "parameter \"fields\" must be an array of 2 to 16 field names");
	}
	r->u.mismatch.nfields = n;
}

/*
 * CompileHighAmount - {"threshold", optional "currency", "amount_field",
 * "currency_field"}.
 */
static void
CompileHighAmount(FraudRule *r, Jsonb *params)
{
	const char *code;

	r->u.high_amount.threshold = RuleNumber(r, params, "threshold");
	if (r->u.high_amount.threshold == NULL)
		RuleError(r, "parameter \"threshold\" is required");
	code = RuleString(r, params, "currency", false);
	if (code != NULL && strlen(code) != 3)
		RuleError(r, "parameter \"currency\" must be a 3-letter currency code");
	r->u.high_amount.code = code;
	RuleField(r, params, "amount_field", "amount", &r->u.high_amount.amount);
	RuleField(r, params, "currency_field", "currency", &r->u.high_amount.currency);
}

/*
 * CompileNumber - one number of an expression, converted once.
 */
static void
CompileNumber(FraudRule *r, const FxOperand *o)
{
	FraudNumber *n;

	if (o->kind != FX_NUMBER)
		return;
	n = &r->u.expression.numbers[r->u.expression.nnumbers++];
	n->str = o->str;
	n->value = DatumGetNumeric(RuleConvert(r, numeric_in,
										   r->u.expression.expr.strings + o->str));
}

/*
 * CompileExpression - {"expr": "..."}: parsed once, numbers converted.
 */
static void
CompileExpression(FraudRule *r, Jsonb *params)
{
	JsonbValue *v = RuleParam(params, "expr");
	FxExpr	   *e = &r->u.expression.expr;
	FxError		err;
	size_t		len;

	if (v == NULL || v->type != jbvString)
		RuleError(r, "parameter \"expr\" (a string) is required");
	len = v->val.string.len;
	if (len > FX_MAX_LEN)
		RuleError(r, "the expression is longer than %d bytes", FX_MAX_LEN);
	e->nodes = palloc(sizeof(FxNode) * FX_MAX_NODES(len));
	e->items = palloc(sizeof(FxOperand) * FX_MAX_ITEMS(len));
	e->strings = palloc(FX_MAX_STRINGS(len));
	if (!fx_parse(v->val.string.val, len, e, &err))
		RuleError(r, "syntax error in the expression at position %u: %s",
				  err.pos, err.message);
	r->u.expression.numbers =
		palloc(sizeof(FraudNumber) * (2 * e->nnodes + e->nitems + 1));
	r->u.expression.nnumbers = 0;
	for (int i = 0; i < e->nnodes; i++)
	{
		CompileNumber(r, &e->nodes[i].a);
		CompileNumber(r, &e->nodes[i].b);
	}
	for (int i = 0; i < e->nitems; i++)
		CompileNumber(r, &e->items[i]);
}

/*
 * RuleKind - the kind spelled name.
 */
static FraudKind
RuleKind(FraudRule *r, const char *name)
{
	for (int i = 0; i < FRAUD_NKINDS; i++)
		if (strcmp(name, FraudKinds[i].name) == 0)
			return (FraudKind) i;
	ereport(ERROR,
			(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
			 errmsg("fraud rule \"%s\": unknown kind \"%s\"", r->name,
					pnstrdup(name, FRAUD_NAME_MAX)),
			 errhint("The kinds are blocklist, avs_cvv, velocity, country_mismatch, high_amount and expression.")));
	pg_unreachable();
}

/*
 * RuleHeader - name, kind, action, score and mode.
 */
static void
RuleHeader(FraudRule *r, const char *name, const char *kind,
		   const char *action, bool score_null, int32 score, const char *mode)
{
	if (name == NULL || name[0] == '\0' || strlen(name) > FRAUD_NAME_MAX)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("a fraud rule needs a name of 1 to %d bytes", FRAUD_NAME_MAX)));
	r->name = name;
	if (kind == NULL)
		RuleError(r, "kind is required");
	r->kind = RuleKind(r, kind);
	r->action_set = action != NULL;
	r->action = FraudKinds[r->kind].action;
	if (action != NULL && !fd_action_from_name(action, &r->action))
		RuleError(r, "action must be block, challenge, review or score, not \"%s\"",
				  pnstrdup(action, FRAUD_NAME_MAX));
	r->score_set = !score_null;
	r->score = score_null ? FraudKinds[r->kind].score : score;
	if (r->score < -FRAUD_SCORE_MAX || r->score > FRAUD_SCORE_MAX)
		RuleError(r, "score must be between %d and %d", -FRAUD_SCORE_MAX,
				  FRAUD_SCORE_MAX);
	if (mode == NULL || (strcmp(mode, "enforce") != 0 && strcmp(mode, "shadow") != 0))
		RuleError(r, "mode must be enforce or shadow");
	r->shadow = strcmp(mode, "shadow") == 0;
}

/*
 * RuleCompileKind - the parameters of the rule's kind.
 */
static void
RuleCompileKind(FraudRule *r, Jsonb *params)
{
	switch (r->kind)
	{
		case FK_BLOCKLIST:
			CompileBlocklist(r, params);
			break;
		case FK_AVS_CVV:
			break;
		case FK_VELOCITY:
			CompileVelocity(r, params);
			break;
		case FK_COUNTRY_MISMATCH:
			CompileMismatch(r, params);
			break;
		case FK_HIGH_AMOUNT:
			CompileHighAmount(r, params);
			break;
		case FK_EXPRESSION:
			CompileExpression(r, params);
			break;
	}
}

/*
 * fraud_rule_compile - compile (and so validate) one rule into r, in the
 * current memory context; an error names the rule.
 */
void
fraud_rule_compile(FraudRule *r, const char *name, const char *kind,
				   Jsonb *params, const char *action, bool score_null,
				   int32 score, const char *mode)
{
	memset(r, 0, sizeof(*r));
	RuleHeader(r, name, kind, action, score_null, score, mode);
	if (params == NULL || !JB_ROOT_IS_OBJECT(params) || JB_ROOT_IS_SCALAR(params))
		RuleError(r, "params must be a JSON object");
	RuleCheckParamNames(r, params);
	RuleCompileKind(r, params);
}

/*
 * KeyAddSum - record sum field f with velocity key k, once.
 */
static void
KeyAddSum(FraudVelocityKey *k, const FraudField *f, int cap)
{
	for (int i = 0; i < k->nsums; i++)
		if (strcmp(k->sums[i].path, f->path) == 0)
			return;
	Assert(k->nsums < cap);
	k->sums[k->nsums++] = *f;
}

/*
 * KeyCompare - qsort order of velocity keys: by path.
 */
static int
KeyCompare(const void *a, const void *b)
{
	return strcmp(((const FraudVelocityKey *) a)->field.path,
				  ((const FraudVelocityKey *) b)->field.path);
}

/*
 * fraud_ruleset_keys - the distinct velocity keys of set's rules (with the
 * sum fields recorded for each), sorted by path: that is also the order in
 * which evaluations lock them, so that two never wait for each other.
 */
void
fraud_ruleset_keys(FraudRuleSet *set)
{
	set->keys = palloc0(sizeof(FraudVelocityKey) * (set->nrules + 1));
	set->nkeys = 0;
	for (int i = 0; i < set->nrules; i++)
	{
		FraudRule  *r = &set->rules[i];
		FraudVelocityKey *k = NULL;

		if (r->kind != FK_VELOCITY)
			continue;
		for (int j = 0; j < set->nkeys && k == NULL; j++)
			if (strcmp(set->keys[j].field.path, r->u.velocity.key.path) == 0)
				k = &set->keys[j];
		if (k == NULL)
		{
			k = &set->keys[set->nkeys++];
			k->field = r->u.velocity.key;
			k->sums = palloc(sizeof(FraudField) * set->nrules);
		}
		if (r->u.velocity.sum.path != NULL)
			KeyAddSum(k, &r->u.velocity.sum, set->nrules);
	}
	qsort(set->keys, set->nkeys, sizeof(FraudVelocityKey), KeyCompare);
}

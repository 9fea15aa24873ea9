/*-------------------------------------------------------------------------
 *
 * fraud_backtest.c
 *	  payments.fraud_backtest: how a candidate rule would have decided the
 *	  recorded evaluations, without enabling it.
 *
 * Each evaluation recorded since the given time is replayed: its recorded
 * verdicts (what each rule then asked for) are fed to the decision again,
 * with the candidate's verdict on the recorded context added.  Since a
 * block wins wherever it comes and the others add up, the candidate's
 * position does not change a decision, only which rule blocked.  Both the
 * decision without and the one with the candidate are computed with the
 * current review threshold, so that "changed" counts what the candidate
 * alone changes.
 *
 * What the replay cannot know is said in the README: contexts are stored
 * redacted, lists are read as they are now, and a velocity candidate
 * counts the velocity history, which is kept for the key fields of enabled
 * velocity rules.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "catalog/pg_type.h"
#include "fmgr.h"
#include "funcapi.h"
#include "utils/builtins.h"
#include "utils/jsonb.h"
#include "utils/memutils.h"
#include "utils/timestamp.h"

#include "fraud.h"
#include "payments.h"
#include "stmt.h"

#define BACKTEST_BATCH 1000

/* What the replay found. */
typedef struct Backtest
{
	FraudRule	rule;
	int64		evaluations;
	int64		hits;
	int64		changes[4][4];	/* [before][after] */
} Backtest;

/*
 * CandidateText - field key of the candidate as a C string, or NULL.
 */
static char *
CandidateText(Jsonb *rule, const char *key)
{
	JsonbValue *v = getKeyJsonValueFromContainer(&rule->root, key, strlen(key), NULL);

	if (v == NULL || v->type == jbvNull)
		return NULL;
	if (v->type != jbvString)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("the candidate rule's \"%s\" must be a string", key)));
	return pnstrdup(v->val.string.val, v->val.string.len);
}

/*
 * CandidateCompile - the candidate rule from {"name", "kind", "params",
 * "action", "score", "mode"}; the name defaults to "candidate", the mode
 * to enforce.
 */
static void
CandidateCompile(Jsonb *rule, FraudRule *r)
{
	JsonbValue *params,
			   *score;
	char	   *name;
	char	   *mode;

	if (!JB_ROOT_IS_OBJECT(rule))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("a candidate rule must be a JSON object with kind and params")));
	name = CandidateText(rule, "name");
	mode = CandidateText(rule, "mode");
	params = getKeyJsonValueFromContainer(&rule->root, "params", 6, NULL);
	score = getKeyJsonValueFromContainer(&rule->root, "score", 5, NULL);
	if (score != NULL && score->type != jbvNumeric && score->type != jbvNull)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("the candidate rule's \"score\" must be a number")));
	fraud_rule_compile(r, name ? name : "candidate", CandidateText(rule, "kind"),
					   params == NULL ? NULL : JsonbValueToJsonb(params),
					   CandidateText(rule, "action"),
					   score == NULL || score->type == jbvNull,
					   (score == NULL || score->type == jbvNull) ? 0 :
					   DatumGetInt32(DirectFunctionCall1(numeric_int4,
														 NumericGetDatum(score->val.numeric))),
					   mode ? mode : "enforce");
}

/*
 * RecordedVerdict - one element of a recorded verdicts array; false for a
 * skipped rule.
 */
static bool
RecordedVerdict(JsonbContainer *obj, FraudVerdict *v)
{
	JsonbValue *action = getKeyJsonValueFromContainer(obj, "action", 6, NULL);
	JsonbValue *score = getKeyJsonValueFromContainer(obj, "score", 5, NULL);
	JsonbValue *shadow = getKeyJsonValueFromContainer(obj, "shadow", 6, NULL);
	char	   *name;

	if (getKeyJsonValueFromContainer(obj, "skipped", 7, NULL) != NULL)
		return false;
	memset(v, 0, sizeof(*v));
	v->shadow = shadow != NULL && shadow->type == jbvBool && shadow->val.boolean;
	if (action == NULL || action->type != jbvString)
		return true;
	name = pnstrdup(action->val.string.val, action->val.string.len);
	v->applies = fd_action_from_name(name, &v->action);
	if (score != NULL && score->type == jbvNumeric)
		v->score = DatumGetInt32(DirectFunctionCall1(numeric_int4,
													 NumericGetDatum(score->val.numeric)));
	return true;
}

/*
 * BacktestOne - replay one recorded evaluation.
 */
static void
BacktestOne(Backtest *bt, Jsonb *context, Jsonb *verdicts, TimestampTz at,
			int64 id)
{
	FraudOutcome before,
				after;
	FraudInput	in;
	FraudRunResult res;
	FraudVerdict cand = {0};
	int			n = 0;

	fd_init(&before);
	if (JB_ROOT_IS_ARRAY(verdicts))
	{
		for (uint32 i = 0; i < JB_ROOT_COUNT(verdicts); i++)
		{
			JsonbValue *e = getIthJsonbValueFromContainer(&verdicts->root, i);
			FraudVerdict v;

			if (e->type == jbvBinary && JsonContainerIsObject(e->val.binary.data) &&
				RecordedVerdict(e->val.binary.data, &v))
				(void) fd_add(&before, &v, n++);
		}
	}
	after = before;
	in.context = context;
	in.at = at;
	in.before_id = id;
	fraud_rule_run(&bt->rule, &in, &res);
	bt->hits += res.hit;
	cand.applies = res.hit;
	cand.shadow = bt->rule.shadow;
	cand.action = res.action;
	cand.score = res.score;
	if (after.blocked_by < 0)
		(void) fd_add(&after, &cand, n);
	fd_finish(&before, payments_fraud_review_threshold);
	fd_finish(&after, payments_fraud_review_threshold);
	bt->changes[before.decision][after.decision]++;
	bt->evaluations++;
}

/*
 * BacktestRun - replay every evaluation recorded since since, a batch of
 * rows at a time, each in a memory context reset after it.
 */
static void
BacktestRun(Backtest *bt, TimestampTz since)
{
	static PmStmt scan = {
		.sql = "SELECT context, verdicts, evaluated_at, id"
		" FROM " PAYMENTS_SCHEMA ".fraud_evaluations"
		" WHERE evaluated_at >= $1 ORDER BY evaluated_at, id",
		.nargs = 1,
		.argtypes = {TIMESTAMPTZOID}
	};
	MemoryContext row_cxt = AllocSetContextCreate(CurrentMemoryContext,
												  "payments fraud backtest row",
												  ALLOCSET_DEFAULT_SIZES);
	Datum		arg = TimestampTzGetDatum(since);
	Portal		portal = pm_stmt_cursor(&scan, &arg, NULL);

	for (;;)
	{
		SPITupleTable *batch;
		uint64		n;

		SPI_cursor_fetch(portal, true, BACKTEST_BATCH);
		batch = SPI_tuptable;
		n = SPI_processed;
		if (n == 0)
			break;
		for (uint64 i = 0; i < n; i++)
		{
			MemoryContext old = MemoryContextSwitchTo(row_cxt);
			bool		isnull;
			Datum		c = SPI_getbinval(batch->vals[i], batch->tupdesc, 1, &isnull);
			Datum		v = SPI_getbinval(batch->vals[i], batch->tupdesc, 2, &isnull);
			Datum		t = SPI_getbinval(batch->vals[i], batch->tupdesc, 3, &isnull);
			Datum		id = SPI_getbinval(batch->vals[i], batch->tupdesc, 4, &isnull);

			BacktestOne(bt, DatumGetJsonbP(c), DatumGetJsonbP(v),
						DatumGetTimestampTz(t), DatumGetInt64(id));
			MemoryContextSwitchTo(old);
			MemoryContextReset(row_cxt);
		}
		SPI_freetuptable(batch);
	}
	SPI_cursor_close(portal);
	MemoryContextDelete(row_cxt);
}

/*
 * BacktestChanges - {"approve->block": n, ...} for each change seen.
 */
static Jsonb *
BacktestChanges(const Backtest *bt, int64 *changed)
{
	JsonbParseState *st = NULL;
	JsonbValue *res;

	*changed = 0;
	pushJsonbValue(&st, WJB_BEGIN_OBJECT, NULL);
	for (int b = 0; b < 4; b++)
		for (int a = 0; a < 4; a++)
		{
			JsonbValue	k,
						v;

			if (a == b || bt->changes[b][a] == 0)
				continue;
			*changed += bt->changes[b][a];
			k.type = jbvString;
			k.val.string.val = psprintf("%s->%s", fd_decision_name(b),
										fd_decision_name(a));
			k.val.string.len = strlen(k.val.string.val);
			v.type = jbvNumeric;
			v.val.numeric = int64_to_numeric(bt->changes[b][a]);
			pushJsonbValue(&st, WJB_KEY, &k);
			pushJsonbValue(&st, WJB_VALUE, &v);
		}
	res = pushJsonbValue(&st, WJB_END_OBJECT, NULL);
	return JsonbValueToJsonb(res);
}

PG_FUNCTION_INFO_V1(payments_fraud_backtest);

/*
 * payments_fraud_backtest - payments.fraud_backtest(rule, since): one row
 * (evaluations, hits, changed, changes).
 */
Datum
payments_fraud_backtest(PG_FUNCTION_ARGS)
{
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
	Backtest   *bt = palloc0(sizeof(Backtest));
	PmSpiCall	call;
	Datum		values[4];
	bool		nulls[4] = {false};
	int64		changed;

	if (PG_ARGISNULL(0) || PG_ARGISNULL(1))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("rule and since must not be NULL")));
	CandidateCompile(PG_GETARG_JSONB_P(0), &bt->rule);
	pm_spi_begin(&call, fraud_owner());
	BacktestRun(bt, PG_GETARG_TIMESTAMPTZ(1));
	pm_spi_end(&call);

	InitMaterializedSRF(fcinfo, MAT_SRF_USE_EXPECTED_DESC);
	values[0] = Int64GetDatum(bt->evaluations);
	values[1] = Int64GetDatum(bt->hits);
	values[3] = JsonbPGetDatum(BacktestChanges(bt, &changed));
	values[2] = Int64GetDatum(changed);
	tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, values, nulls);
	return (Datum) 0;
}

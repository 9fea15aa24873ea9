/*-------------------------------------------------------------------------
 *
 * fraud.c
 *	  Fraud scoring: the module, its GUCs, the rule cache and the SQL entry
 *	  points (fraud_evaluate, fraud_rule_check, fraud_purge and the
 *	  trigger that tells sessions the rules changed).
 *
 * Rules are compiled once per change, not per call: each session keeps the
 * enabled rules of payments.fraud_rules compiled in a cache that a
 * relcache invalidation of the table empties.  The table's statement
 * trigger sends that invalidation with every change, so a committed change
 * reaches every session's next evaluation (fraud_evaluate locks the table,
 * which reads pending invalidations, before looking at the cache).
 *
 * An evaluation that is recorded first locks each velocity key value it
 * carries (a lock tag of its own, in key order, held to the end of the
 * transaction), so that two evaluations of one key are counted one after
 * the other; then it runs the rules, decides (fraud_decide.c) and writes
 * the audit row and the velocity rows, all in the caller's transaction.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/xact.h"
#include "commands/trigger.h"
#include "common/hashfn.h"
#include "fmgr.h"
#include "funcapi.h"
#include "miscadmin.h"
#include "storage/lmgr.h"
#include "utils/acl.h"
#include "utils/builtins.h"
#include "utils/guc.h"
#include "utils/inval.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
#include "utils/timestamp.h"

#include "fraud.h"
#include "payments.h"
#include "stats.h"
#include "stmt.h"

/* The fourth field of the lock tag of a velocity key (pg_locks.objsubid). */
#define FRAUD_VELOCITY_LOCK_FIELD4 0x5046

/* payments.fraud_on_error: what a rule that cannot run does. */
typedef enum FraudOnError
{
	FRAUD_ON_ERROR_REVIEW,
	FRAUD_ON_ERROR_BLOCK,
	FRAUD_ON_ERROR_RAISE
} FraudOnError;

static const struct config_enum_entry FraudOnErrorOptions[] = {
	{"review", FRAUD_ON_ERROR_REVIEW, false},
	{"block", FRAUD_ON_ERROR_BLOCK, false},
	{"raise", FRAUD_ON_ERROR_RAISE, false},
	{NULL, 0, false}
};

int			payments_fraud_review_threshold = 50;
int			payments_fraud_on_error = FRAUD_ON_ERROR_REVIEW;

/* The rule cache of this session. */
static MemoryContext FraudCacheCxt = NULL;
static FraudRuleSet FraudCache;
static bool FraudCacheValid = false;
static Oid	FraudRulesRelid = InvalidOid;
static Oid	FraudRulesOwner = InvalidOid;

/* One evaluation in progress. */
typedef struct FraudRun
{
	FraudInput	in;
	bool		record;
	const FraudRuleSet *set;
	char	  **key_values;		/* per velocity key: its value, or NULL */
	FraudOutcome outcome;
	JsonbParseState *verdicts;
	JsonbValue *verdicts_done;
} FraudRun;

/*
 * FraudDefineGucs - payments.fraud_review_threshold, payments.fraud_on_error.
 */
static void
FraudDefineGucs(void)
{
	DefineCustomIntVariable("payments.fraud_review_threshold",
							"Score at which a fraud evaluation that is not blocked or challenged is sent to review.",
							NULL,
							&payments_fraud_review_threshold, 50, -1000000, 1000000,
							PGC_USERSET, 0, NULL, NULL, NULL);
	DefineCustomEnumVariable("payments.fraud_on_error",
							 "What an enforcing fraud rule that cannot run on a context does: review, block or raise an error.",
							 NULL,
							 &payments_fraud_on_error, FRAUD_ON_ERROR_REVIEW,
							 FraudOnErrorOptions, PGC_USERSET, 0, NULL, NULL, NULL);
}

const PaymentsModule PaymentsFraudModule = {
	.name = "fraud",
	.define_gucs = FraudDefineGucs,
};

/*
 * FraudInvalidate - relcache callback: a change of payments.fraud_rules
 * (or of every relation) empties the cache.
 */
static void
FraudInvalidate(Datum arg, Oid relid)
{
	if (relid == InvalidOid || relid == FraudRulesRelid)
	{
		FraudCacheValid = false;
		FraudRulesRelid = InvalidOid;
	}
}

/*
 * FraudLookupTable - the OID and owner of payments.fraud_rules.
 */
static void
FraudLookupTable(void)
{
	Oid			relid;

	FraudRulesOwner = pm_table_owner("fraud_rules", &relid);
	FraudRulesRelid = relid;
}

/*
 * fraud_owner - the owner of the fraud tables, as whom the module's SQL
 * runs, after reading pending invalidations and locking
 * payments.fraud_rules (which keeps it from being dropped meanwhile).
 */
Oid
fraud_owner(void)
{
	static bool registered = false;

	if (!registered)
	{
		CacheRegisterRelcacheCallback(FraudInvalidate, (Datum) 0);
		registered = true;
	}
	/* a change committed while this transaction runs counts, too */
	AcceptInvalidationMessages();
	if (!OidIsValid(FraudRulesRelid))
		FraudLookupTable();
	LockRelationOid(FraudRulesRelid, AccessShareLock);
	/* the lock may have brought the invalidation of a drop or ALTER */
	if (!OidIsValid(FraudRulesRelid))
		FraudLookupTable();
	return FraudRulesOwner;
}

/*
 * FraudRules - the compiled enabled rules; call inside the SPI bracket
 * that fraud_owner() opened as the owner.  A change that arrives while
 * loading leaves the cache invalid for the next call.
 */
static const FraudRuleSet *
FraudRules(void)
{
	if (FraudCacheValid)
		return &FraudCache;
	if (FraudCacheCxt == NULL)
		FraudCacheCxt = AllocSetContextCreate(CacheMemoryContext,
											  "payments fraud rules",
											  ALLOCSET_SMALL_SIZES);
	MemoryContextReset(FraudCacheCxt);
	memset(&FraudCache, 0, sizeof(FraudCache));
	FraudCacheValid = true;
	PG_TRY();
	{
		fraud_store_load_rules(&FraudCache, FraudCacheCxt);
	}
	PG_CATCH();
	{
		FraudCacheValid = false;
		PG_RE_THROW();
	}
	PG_END_TRY();
	return &FraudCache;
}

/*
 * FraudKeyValues - the context's value of each velocity key (NULL where it
 * has none), as it is locked, counted and recorded.
 */
static void
FraudKeyValues(FraudRun *run)
{
	run->key_values = palloc0(sizeof(char *) * (run->set->nkeys + 1));
	for (int i = 0; i < run->set->nkeys; i++)
	{
		const FraudVelocityKey *k = &run->set->keys[i];
		FraudValue	v;

		fraud_value(run->in.context, &k->field, &v);
		if (!fraud_velocity_key(&v, k->field.email, &run->key_values[i]))
			run->key_values[i] = NULL;
	}
}

/*
 * FraudLockKeys - lock every velocity key value of the context, in key
 * order, until the end of the transaction.
 */
static void
FraudLockKeys(const FraudRun *run)
{
	for (int i = 0; i < run->set->nkeys; i++)
	{
		const FraudVelocityKey *k = &run->set->keys[i];
		StringInfoData buf;
		uint64		h;
		LOCKTAG		tag;

		if (run->key_values[i] == NULL)
			continue;
		initStringInfo(&buf);
		appendBinaryStringInfo(&buf, k->field.path, k->field.len + 1);
		appendStringInfoString(&buf, run->key_values[i]);
		h = hash_bytes_extended((const unsigned char *) buf.data, buf.len, 0);
		SET_LOCKTAG_ADVISORY(tag, MyDatabaseId, (uint32) (h >> 32), (uint32) h,
							 FRAUD_VELOCITY_LOCK_FIELD4);
		(void) LockAcquire(&tag, ExclusiveLock, false, false);
	}
}

/*
 * VerdictString - push "key": "value" into the verdict object.
 */
static void
VerdictString(JsonbParseState **st, const char *key, const char *value)
{
	JsonbValue	k,
				v;

	k.type = jbvString;
	k.val.string.val = (char *) key;
	k.val.string.len = strlen(key);
	v.type = jbvString;
	v.val.string.val = (char *) value;
	v.val.string.len = strlen(value);
	pushJsonbValue(st, WJB_KEY, &k);
	pushJsonbValue(st, WJB_VALUE, &v);
}

/*
 * VerdictScalar - push "key": a boolean or an integer.
 */
static void
VerdictScalar(JsonbParseState **st, const char *key, bool is_bool,
			  bool b, int32 n)
{
	JsonbValue	k,
				v;

	k.type = jbvString;
	k.val.string.val = (char *) key;
	k.val.string.len = strlen(key);
	if (is_bool)
	{
		v.type = jbvBool;
		v.val.boolean = b;
	}
	else
	{
		v.type = jbvNumeric;
		v.val.numeric = int64_to_numeric(n);
	}
	pushJsonbValue(st, WJB_KEY, &k);
	pushJsonbValue(st, WJB_VALUE, &v);
}

/*
 * FraudVerdictJson - add one rule's verdict to the array: rule, kind, hit,
 * and what it asked for when it applies (or would, in shadow mode).
 */
static void
FraudVerdictJson(FraudRun *run, const FraudRule *r, const FraudRunResult *res,
				 const FraudVerdict *v)
{
	JsonbParseState **st = &run->verdicts;

	pushJsonbValue(st, WJB_BEGIN_OBJECT, NULL);
	VerdictString(st, "rule", r->name);
	VerdictString(st, "kind", fraud_kind_name(r->kind));
	VerdictScalar(st, "hit", true, res->hit, 0);
	if (v->applies)
	{
		VerdictString(st, "action", fd_action_name(v->action));
		VerdictScalar(st, "score", false, false, v->score);
	}
	if (r->shadow)
		VerdictScalar(st, "shadow", true, true, 0);
	if (res->detail != NULL)
		VerdictString(st, "detail", res->detail);
	if (res->error != NULL)
		VerdictString(st, "error", res->error);
	pushJsonbValue(st, WJB_END_OBJECT, NULL);
}

/*
 * FraudSkippedJson - a rule after the blocking one: not run.
 */
static void
FraudSkippedJson(FraudRun *run, const FraudRule *r)
{
	JsonbParseState **st = &run->verdicts;

	pushJsonbValue(st, WJB_BEGIN_OBJECT, NULL);
	VerdictString(st, "rule", r->name);
	VerdictString(st, "kind", fraud_kind_name(r->kind));
	VerdictScalar(st, "skipped", true, true, 0);
	pushJsonbValue(st, WJB_END_OBJECT, NULL);
}

/*
 * FraudApplyError - the verdict of a rule that could not run: by
 * payments.fraud_on_error, review or block (score 0), or an error.  A
 * shadow rule records what it would have asked for and never raises.
 */
static void
FraudApplyError(const FraudRule *r, const FraudRunResult *res, FraudVerdict *v)
{
	if (!r->shadow)
	{
		if (payments_fraud_on_error == FRAUD_ON_ERROR_RAISE)
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("fraud rule \"%s\" could not run: %s", r->name, res->error),
					 errhint("payments.fraud_on_error is raise; with review or block, the evaluation goes on.")));
		payments_count(PM_STAT_FRAUD_RULE_ERRORS, 1);
	}
	v->applies = true;
	v->action = payments_fraud_on_error == FRAUD_ON_ERROR_BLOCK ? FA_BLOCK : FA_REVIEW;
	v->score = 0;
}

/*
 * FraudRunRules - run the rules in order until an enforcing block, adding
 * each verdict to the outcome and to the verdicts array.
 */
static void
FraudRunRules(FraudRun *run)
{
	int			i;
	bool		go_on = true;

	fd_init(&run->outcome);
	pushJsonbValue(&run->verdicts, WJB_BEGIN_ARRAY, NULL);
	for (i = 0; i < run->set->nrules && go_on; i++)
	{
		const FraudRule *r = &run->set->rules[i];
		FraudRunResult res;
		FraudVerdict v = {0};

		fraud_rule_run(r, &run->in, &res);
		v.shadow = r->shadow;
		if (res.error != NULL)
			FraudApplyError(r, &res, &v);
		else if (res.hit)
		{
			v.applies = true;
			v.action = res.action;
			v.score = res.score;
		}
		FraudVerdictJson(run, r, &res, &v);
		go_on = fd_add(&run->outcome, &v, i);
	}
	for (; i < run->set->nrules; i++)
		FraudSkippedJson(run, &run->set->rules[i]);
	run->verdicts_done = pushJsonbValue(&run->verdicts, WJB_END_ARRAY, NULL);
	fd_finish(&run->outcome, payments_fraud_review_threshold);
}

/*
 * FraudAmounts - the values of a velocity key's sum fields that are
 * numbers (or numeric strings, as the rule summed them), as a jsonb
 * object; NULL when there are none.
 */
static Jsonb *
FraudAmounts(const FraudRun *run, const FraudVelocityKey *k)
{
	JsonbParseState *st = NULL;
	JsonbValue *res;
	int			n = 0;

	if (k->nsums == 0)
		return NULL;
	pushJsonbValue(&st, WJB_BEGIN_OBJECT, NULL);
	for (int i = 0; i < k->nsums; i++)
	{
		FraudValue	v;
		JsonbValue	key,
					val;

		fraud_value(run->in.context, &k->sums[i], &v);
		if (!fraud_value_numeric(&v, &val.val.numeric))
			continue;
		key.type = jbvString;
		key.val.string.val = (char *) k->sums[i].path;
		key.val.string.len = k->sums[i].len;
		val.type = jbvNumeric;
		pushJsonbValue(&st, WJB_KEY, &key);
		pushJsonbValue(&st, WJB_VALUE, &val);
		n++;
	}
	res = pushJsonbValue(&st, WJB_END_OBJECT, NULL);
	return n > 0 ? JsonbValueToJsonb(res) : NULL;
}

/*
 * FraudRecord - the audit row and the velocity rows; the evaluation's id.
 */
static int64
FraudRecord(FraudRun *run, Jsonb *verdicts)
{
	const FraudOutcome *o = &run->outcome;
	int64		id;

	id = fraud_store_record(&run->in, o->decision, fd_score(o),
							o->blocked_by >= 0 ? run->set->rules[o->blocked_by].name : NULL,
							verdicts);
	for (int i = 0; i < run->set->nkeys; i++)
	{
		if (run->key_values[i] != NULL)
			fraud_store_record_velocity(&run->set->keys[i], run->key_values[i],
										run->in.at, id,
										FraudAmounts(run, &run->set->keys[i]));
	}
	return id;
}

/*
 * FraudCheckAt - only the tables' owner may record an evaluation at a time
 * other than now(): anyone else could move themselves out of a velocity
 * window.
 */
static void
FraudCheckAt(TimestampTz at, Oid owner)
{
	if (at != GetCurrentTransactionStartTimestamp() &&
		!has_privs_of_role(GetUserId(), owner))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("only the owner of the fraud tables may record an evaluation at a time other than now()"),
				 errhint("Leave at out, or pass record => false for a what-if evaluation.")));
}

/*
 * FraudReturn - fraud_evaluate's one row.
 */
static void
FraudReturn(FunctionCallInfo fcinfo, const FraudRun *run, Jsonb *verdicts,
			int64 id)
{
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
	const FraudOutcome *o = &run->outcome;
	Datum		values[5];
	bool		nulls[5] = {false};

	InitMaterializedSRF(fcinfo, MAT_SRF_USE_EXPECTED_DESC);
	values[0] = CStringGetTextDatum(fd_decision_name(o->decision));
	values[1] = Int32GetDatum(fd_score(o));
	nulls[2] = o->blocked_by < 0;
	values[2] = nulls[2] ? (Datum) 0 :
		CStringGetTextDatum(run->set->rules[o->blocked_by].name);
	values[3] = JsonbPGetDatum(verdicts);
	nulls[4] = id == 0;
	values[4] = Int64GetDatum(id);
	tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, values, nulls);
}

/*
 * FraudCount - the decision's counter in payments.stats.
 */
static void
FraudCount(FraudDecision d)
{
	static const PaymentsCounter counters[] = {
		PM_STAT_FRAUD_APPROVE, PM_STAT_FRAUD_REVIEW,
		PM_STAT_FRAUD_CHALLENGE, PM_STAT_FRAUD_BLOCK
	};

	payments_count(counters[d], 1);
}

PG_FUNCTION_INFO_V1(payments_fraud_evaluate);

/*
 * payments_fraud_evaluate - payments.fraud_evaluate(context, at, record):
 * one row (decision, score, blocked_by, verdicts, evaluation_id).
 */
Datum
payments_fraud_evaluate(PG_FUNCTION_ARGS)
{
	FraudRun	run = {0};
	PmSpiCall	call;
	Oid			owner;
	Jsonb	   *verdicts;
	int64		id = 0;
	MemoryContext old;

	if (PG_ARGISNULL(0) || PG_ARGISNULL(1) || PG_ARGISNULL(2))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("context, at and record must not be NULL")));
	run.in.context = PG_GETARG_JSONB_P(0);
	run.in.at = PG_GETARG_TIMESTAMPTZ(1);
	run.in.before_id = PG_INT64_MAX;
	run.record = PG_GETARG_BOOL(2);
	if (!JB_ROOT_IS_OBJECT(run.in.context))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("a fraud context must be a JSON object")));
	/* the direct inserts bypass the executor's read-only check */
	if (run.record)
		pm_require_writable("payments.fraud_evaluate with record => true");
	owner = fraud_owner();
	if (run.record)
		FraudCheckAt(run.in.at, owner);

	pm_spi_begin(&call, owner);
	run.set = FraudRules();
	if (run.record)
	{
		FraudKeyValues(&run);
		FraudLockKeys(&run);
	}
	FraudRunRules(&run);
	/* the verdicts are returned: build them where they outlive SPI */
	old = MemoryContextSwitchTo(call.caller);
	verdicts = JsonbValueToJsonb(run.verdicts_done);
	MemoryContextSwitchTo(old);
	if (run.record)
		id = FraudRecord(&run, verdicts);
	pm_spi_end(&call);

	FraudCount(run.outcome.decision);
	FraudReturn(fcinfo, &run, verdicts, id);
	return (Datum) 0;
}

PG_FUNCTION_INFO_V1(payments_fraud_rule_check);

/*
 * payments_fraud_rule_check - the CHECK constraint of payments.fraud_rules:
 * compile the rule and throw it away; true, or the compile error.
 */
Datum
payments_fraud_rule_check(PG_FUNCTION_ARGS)
{
	MemoryContext cxt = AllocSetContextCreate(CurrentMemoryContext,
											  "payments fraud rule check",
											  ALLOCSET_SMALL_SIZES);
	MemoryContext old = MemoryContextSwitchTo(cxt);
	FraudRule	r;

#define ARG_CSTRING(n) (PG_ARGISNULL(n) ? NULL : text_to_cstring(PG_GETARG_TEXT_PP(n)))
	fraud_rule_compile(&r, ARG_CSTRING(0), ARG_CSTRING(1),
					   PG_ARGISNULL(2) ? NULL : PG_GETARG_JSONB_P(2),
					   ARG_CSTRING(3), PG_ARGISNULL(4),
					   PG_ARGISNULL(4) ? 0 : PG_GETARG_INT32(4), ARG_CSTRING(5));
#undef ARG_CSTRING
	MemoryContextSwitchTo(old);
	MemoryContextDelete(cxt);
	PG_RETURN_BOOL(true);
}

PG_FUNCTION_INFO_V1(payments_fraud_rules_changed);

/*
 * payments_fraud_rules_changed - statement trigger of payments.fraud_rules:
 * invalidate the table's relcache entry, which every session's rule cache
 * listens to (at this transaction's commit for the others).  On Citus the
 * trigger fires on the reference table's shard on each node, a table of
 * its own beside payments.fraud_rules: the table by its name is the one
 * the caches know.
 */
Datum
payments_fraud_rules_changed(PG_FUNCTION_ARGS)
{
	TriggerData *td = (TriggerData *) fcinfo->context;
	Oid			rules;

	if (!CALLED_AS_TRIGGER(fcinfo))
		elog(ERROR, "payments_fraud_rules_changed: not called as a trigger");
	rules = get_relname_relid("fraud_rules", RelationGetNamespace(td->tg_relation));
	CacheInvalidateRelcacheByRelid(OidIsValid(rules) ? rules :
								   RelationGetRelid(td->tg_relation));
	return PointerGetDatum(NULL);
}

/*
 * FraudLongestWindow - the longest window of the enabled velocity rules;
 * false when there is none.
 */
static bool
FraudLongestWindow(const FraudRuleSet *set, Interval *out)
{
	bool		found = false;

	for (int i = 0; i < set->nrules; i++)
	{
		const Interval *w = &set->rules[i].u.velocity.window;

		if (set->rules[i].kind != FK_VELOCITY)
			continue;
		if (!found ||
			DatumGetInt32(DirectFunctionCall2(interval_cmp, IntervalPGetDatum(w),
											  IntervalPGetDatum(out))) > 0)
			*out = *w;
		found = true;
	}
	return found;
}

PG_FUNCTION_INFO_V1(payments_fraud_purge);

/*
 * payments_fraud_purge - payments.fraud_purge(before, max_rows): delete
 * evaluations recorded before before, and velocity rows older than that
 * and than every enabled velocity window (a rule must never count fewer
 * evaluations because of a purge); at most max_rows of each.
 */
Datum
payments_fraud_purge(PG_FUNCTION_ARGS)
{
	TimestampTz before,
				velocity_before;
	int64		max_rows = PG_ARGISNULL(1) ? PG_INT64_MAX : PG_GETARG_INT64(1);
	Interval	window;
	PmSpiCall	call;
	int64		n;

	if (PG_ARGISNULL(0) || max_rows < 0)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("before must not be NULL and max_rows must not be negative")));
	before = PG_GETARG_TIMESTAMPTZ(0);
	pm_require_writable("payments.fraud_purge");
	pm_spi_begin(&call, fraud_owner());
	velocity_before = before;
	if (FraudLongestWindow(FraudRules(), &window))
		velocity_before = Min(before, DatumGetTimestampTz(
														  DirectFunctionCall2(timestamptz_mi_interval,
																			  TimestampTzGetDatum(GetCurrentTransactionStartTimestamp()),
																			  IntervalPGetDatum(&window))));
	n = fraud_store_purge(before, velocity_before, max_rows);
	pm_spi_end(&call);
	PG_RETURN_INT64(n);
}

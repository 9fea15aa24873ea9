/*-------------------------------------------------------------------------
 *
 * saga.c
 *	  Saga logs: the state machine of multi-step checkouts and their
 *	  compensations.
 *
 * A saga is a row of payments.sagas: its steps, its state and where it is
 * (position: the step to run or to compensate; attempts: the tries of that
 * action so far).  saga_next reads the row and says what to do; saga_record
 * reads it, checks that the outcome is for the action saga_next gives, and
 * moves the state and appends the transition to payments.saga_events in one
 * statement that applies only if the saga is still where it was read (if
 * another session moved it meanwhile, it locks the row and looks again).  Every other change is refused with PM030, so an
 * orchestrator that crashed between a gateway call and saga_record resumes
 * exactly where it was, and two that race on one step cannot both win (the
 * update's row lock orders them; the second finds the step done).
 *
 *	  running --succeeded, last step--> completed
 *	  running --failed (retriable, attempts left)--> running (attempt + 1)
 *	  running --failed--> compensating (the succeeded compensable steps, in
 *	                      reverse order) or compensated (none)
 *	  compensating --succeeded--> compensating (next one) or compensated
 *	  compensating --failed--> compensating (attempt + 1) or, after
 *	                      payments.saga_compensation_attempts,
 *	                      failed_compensation (NOTIFY payments_saga_alert)
 *
 * The functions run with the caller's rights and their SQL as the owner of
 * payments.sagas (src/stmt.c), so ordinary roles need no privilege on the
 * tables and cannot write them.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/htup_details.h"
#include "access/stratnum.h"
#include "access/table.h"
#include "access/tableam.h"
#include "catalog/pg_collation_d.h"
#include "access/xact.h"
#include "catalog/pg_type.h"
#include "commands/async.h"
#include "commands/trigger.h"
#include "executor/tuptable.h"
#include "fmgr.h"
#include "funcapi.h"
#include "miscadmin.h"
#include "utils/builtins.h"
#include "utils/datum.h"
#include "utils/fmgroids.h"
#include "utils/guc.h"
#include "utils/json.h"
#include "utils/jsonb.h"
#include "utils/timestamp.h"
#include "utils/uuid.h"

#include "errors.h"
#include "fastpath.h"
#include "payments.h"
#include "redact.h"
#include "stats.h"
#include "stmt.h"

/* Limits on what saga_start accepts. */
#define SAGA_MAX_STEPS 1000
#define SAGA_NAME_MAX 200

/* payments.saga_compensation_attempts, payments.saga_step_attempts */
static int	SagaCompensationAttempts = 3;
static int	SagaStepAttempts = 3;

typedef enum SagaState
{
	SAGA_RUNNING,
	SAGA_COMPENSATING,
	SAGA_COMPLETED,
	SAGA_COMPENSATED,
	SAGA_FAILED_COMPENSATION
} SagaState;

static const char *const SagaStateNames[] = {
	"running", "compensating", "completed", "compensated", "failed_compensation"
};

/* One step of a saga, from its steps array. */
typedef struct SagaStep
{
	char	   *name;
	bool		compensable;
} SagaStep;

/* A saga as its row says. */
typedef struct Saga
{
	char	   *id;
	SagaState	state;
	int			nsteps;
	SagaStep   *steps;
	int			position;
	int			attempts;
} Saga;

typedef enum SagaStmtId
{
	SG_STMT_INSERT,
	SG_STMT_EXISTING,
	SG_STMT_GET,
	SG_STMT_LOCK,
	SG_STMT_MOVE,
	SG_STMT_RECOVER,
	SG_STMT_RECOVER_CITUS,
	SG_NSTMTS
} SagaStmtId;

static PmStmt SagaStmts[SG_NSTMTS] = {
	[SG_STMT_INSERT] = {
		"WITH s AS (INSERT INTO " PAYMENTS_SCHEMA ".sagas (id, name, state, steps, context)"
		" VALUES ($1, $2, 'running', $3, $4) ON CONFLICT (id) DO NOTHING RETURNING id)"
		" INSERT INTO " PAYMENTS_SCHEMA ".saga_events (saga_id, event, to_state, detail)"
		" SELECT id, 'started', 'running', NULL FROM s",
		4, {TEXTOID, TEXTOID, JSONBOID, JSONBOID}
	},
	[SG_STMT_EXISTING] = {
		"SELECT name, steps FROM " PAYMENTS_SCHEMA ".sagas WHERE id = $1",
		1, {TEXTOID}
	},
	[SG_STMT_GET] = {
		"SELECT state, steps, position, attempts FROM " PAYMENTS_SCHEMA ".sagas"
		" WHERE id = $1",
		1, {TEXTOID}
	},
	[SG_STMT_LOCK] = {
		"SELECT state, steps, position, attempts FROM " PAYMENTS_SCHEMA ".sagas"
		" WHERE id = $1 FOR UPDATE",
		1, {TEXTOID}
	},
	/*
	 * $1 id, $2 state, $3 position, $4 attempts, $5 failed step, $6 event,
	 * $7 step, $8 attempt; only if the saga is still at $9 (state), $11
	 * (position) and $8 - 1 (attempts): nothing when another session moved
	 * it meanwhile
	 */
	[SG_STMT_MOVE] = {
		"WITH s AS (UPDATE " PAYMENTS_SCHEMA ".sagas SET state = $2, position = $3,"
		" attempts = $4, failed_step = COALESCE($5, failed_step),"
		" updated_at = pg_catalog.now(), claimed_until = NULL, claimed_by = NULL,"
		" stale_since = NULL"
		" WHERE id = $1 AND state = $9 AND position = $11 AND attempts = $8 - 1"
		" RETURNING id)"
		" INSERT INTO " PAYMENTS_SCHEMA ".saga_events"
		" (saga_id, event, step, attempt, from_state, to_state, detail)"
		" SELECT id, $6, $7, $8, $9, $2, $10 FROM s",
		11, {TEXTOID, TEXTOID, INT4OID, INT4OID, TEXTOID, TEXTOID, TEXTOID,
		INT4OID, TEXTOID, JSONBOID, INT4OID}
	},
	/* the stale in-flight sagas nobody has claimed, claimed for $1 by $2 */
	[SG_STMT_RECOVER] = {
		"WITH c AS (SELECT id FROM " PAYMENTS_SCHEMA ".sagas"
		" WHERE state IN ('running', 'compensating')"
		" AND updated_at < pg_catalog.now() - $1"
		" AND (claimed_until IS NULL OR claimed_until < pg_catalog.now())"
		" ORDER BY updated_at, id FOR UPDATE SKIP LOCKED)"
		" UPDATE " PAYMENTS_SCHEMA ".sagas AS s"
		" SET claimed_until = pg_catalog.now() + $1, claimed_by = $2"
		" FROM c WHERE s.id = c.id"
		" RETURNING s.id, s.name, s.state, s.steps, s.position, s.attempts, s.updated_at",
		2, {INTERVALOID, TEXTOID}
	},
	/*
	 * the same on Citus, which locks no rows across shards: a saga being
	 * claimed is waited for, then checked again, so two callers still
	 * never get the same one
	 */
	[SG_STMT_RECOVER_CITUS] = {
		"WITH c AS (UPDATE " PAYMENTS_SCHEMA ".sagas"
		" SET claimed_until = pg_catalog.now() + $1, claimed_by = $2"
		" WHERE state IN ('running', 'compensating')"
		" AND updated_at < pg_catalog.now() - $1"
		" AND (claimed_until IS NULL OR claimed_until < pg_catalog.now())"
		" RETURNING id, name, state, steps, position, attempts, updated_at)"
		" SELECT * FROM c ORDER BY updated_at, id",
		2, {INTERVALOID, TEXTOID}
	},
};

/* payments.sagas as installed: saga_next reads it by primary key directly. */
static const FpColumn SagaColumns[] = {
	{"id", TEXTOID, C_COLLATION_OID, true},
	{"name", TEXTOID, DEFAULT_COLLATION_OID, true},
	{"state", TEXTOID, DEFAULT_COLLATION_OID, true},
	{"steps", JSONBOID, InvalidOid, true},
	{"context", JSONBOID, InvalidOid, true},
	{"position", INT4OID, InvalidOid, true},
	{"attempts", INT4OID, InvalidOid, true},
	{"failed_step", TEXTOID, DEFAULT_COLLATION_OID, false},
	{"created_at", TIMESTAMPTZOID, InvalidOid, true},
	{"updated_at", TIMESTAMPTZOID, InvalidOid, true},
	{"claimed_until", TIMESTAMPTZOID, InvalidOid, false},
	{"claimed_by", TEXTOID, DEFAULT_COLLATION_OID, false},
	{"stale_since", TIMESTAMPTZOID, InvalidOid, false},
};

/* Their positions, from 1, as the fast path reads them. */
#define SAGA_ATT_STATE 3
#define SAGA_ATT_STEPS 4
#define SAGA_ATT_POSITION 6
#define SAGA_ATT_ATTEMPTS 7

static const char *const SagaChecks[] = {"sagas_state_check"};

static FpTable SagaTable = {
	.relname = "sagas",
	.what = "saga",
	.ncolumns = lengthof(SagaColumns),
	.columns = SagaColumns,
	.nchecks = lengthof(SagaChecks),
	.checks = SagaChecks,
	/* saga_events' foreign key gives it triggers; writes go through SQL */
	.read_only = true,
};

/*
 * SagaDefineGucs - the module's settings.
 */
static void
SagaDefineGucs(void)
{
	DefineCustomIntVariable("payments.saga_compensation_attempts",
							"Tries of one compensation before a saga is failed_compensation.",
							NULL, &SagaCompensationAttempts, 3, 1, 1000,
							PGC_SUSET, 0, NULL, NULL, NULL);
	DefineCustomIntVariable("payments.saga_step_attempts",
							"Tries of one step, failures marked retriable included, before the saga compensates.",
							NULL, &SagaStepAttempts, 3, 1, 1000,
							PGC_SUSET, 0, NULL, NULL, NULL);
}

const PaymentsModule PaymentsSagaModule = {
	.name = "saga",
	.define_gucs = SagaDefineGucs,
};

/*
 * SagaOwner - the owner of payments.sagas, as whom the module's SQL runs.
 */
static Oid
SagaOwner(void)
{
	Oid			relid;

	return pm_table_owner("sagas", &relid);
}

/*
 * SagaStateFromName - the state a row's text names.
 */
static SagaState
SagaStateFromName(const char *name)
{
	for (int i = 0; i < (int) lengthof(SagaStateNames); i++)
	{
		if (strcmp(name, SagaStateNames[i]) == 0)
			return (SagaState) i;
	}
	elog(ERROR, "unknown saga state \"%s\"", name);
	return SAGA_RUNNING;		/* keep the compiler quiet */
}

/*
 * SagaJsonString - a JSON string value as a C string, or NULL.
 */
static char *
SagaJsonString(JsonbValue *v)
{
	if (v == NULL || v->type != jbvString)
		return NULL;
	return pnstrdup(v->val.string.val, v->val.string.len);
}

/*
 * SagaParseSteps - the steps of a steps array; with check, every rule
 * saga_start enforces (an array of 1 to SAGA_MAX_STEPS objects with a
 * unique, non-empty name and an optional boolean compensable, true when
 * absent).
 */
static SagaStep *
SagaParseSteps(Jsonb *steps, int *nsteps, bool check)
{
	int			n = JB_ROOT_IS_ARRAY(steps) && !JB_ROOT_IS_SCALAR(steps) ?
		(int) JB_ROOT_COUNT(steps) : -1;
	SagaStep   *out;

	if (check && (n < 1 || n > SAGA_MAX_STEPS))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("steps must be a JSON array of 1 to %d steps", SAGA_MAX_STEPS)));
	out = palloc0(sizeof(SagaStep) * Max(n, 1));
	for (int i = 0; i < n; i++)
	{
		JsonbValue *v = getIthJsonbValueFromContainer(&steps->root, i);
		JsonbValue *c = NULL;

		if (v != NULL && v->type == jbvBinary)
		{
			out[i].name = SagaJsonString(getKeyJsonValueFromContainer(v->val.binary.data, "name", 4, NULL));
			c = getKeyJsonValueFromContainer(v->val.binary.data, "compensable", 11, NULL);
		}
		out[i].compensable = c == NULL || (c->type == jbvBool && c->val.boolean);
		if (!check)
			continue;
		if (out[i].name == NULL || out[i].name[0] == '\0' ||
			strlen(out[i].name) > SAGA_NAME_MAX)
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("step %d must be an object with a \"name\" of 1 to %d bytes",
							i + 1, SAGA_NAME_MAX)));
		if (c != NULL && c->type != jbvBool)
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("\"compensable\" of step \"%s\" must be true or false",
							out[i].name)));
		for (int j = 0; j < i; j++)
		{
			if (strcmp(out[j].name, out[i].name) == 0)
				ereport(ERROR,
						(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
						 errmsg("step name \"%s\" appears twice", out[i].name)));
		}
	}
	*nsteps = Max(n, 0);
	return out;
}

/*
 * SagaFromValues - a saga from its row's state, steps, position and
 * attempts, copied into cxt.
 */
static void
SagaFromValues(Saga *saga, MemoryContext cxt, Datum state, Datum steps,
			   Datum position, Datum attempts)
{
	MemoryContext old = MemoryContextSwitchTo(cxt);

	saga->state = SagaStateFromName(TextDatumGetCString(state));
	saga->steps = SagaParseSteps(DatumGetJsonbP(steps), &saga->nsteps, false);
	saga->position = DatumGetInt32(position);
	saga->attempts = DatumGetInt32(attempts);
	MemoryContextSwitchTo(old);
}

/*
 * SagaRead - the saga in result row row, columns col to col + 3 (state,
 * steps, position, attempts), copied into cxt.
 */
static void
SagaRead(Saga *saga, MemoryContext cxt, uint64 row, int col)
{
	bool		isnull;

	SagaFromValues(saga, cxt, pm_stmt_value(row, col, &isnull),
				   pm_stmt_value(row, col + 1, &isnull),
				   pm_stmt_value(row, col + 2, &isnull),
				   pm_stmt_value(row, col + 3, &isnull));
}

/*
 * SagaFetchFast - read the saga through the primary key index, without a
 * statement; whether it exists.
 */
static bool
SagaFetchFast(Saga *saga, MemoryContext cxt, Relation rel)
{
	TupleTableSlot *slot = table_slot_create(rel, NULL);
	ScanKeyData skey[1];
	bool		found;

	ScanKeyInit(&skey[0], 1, BTEqualStrategyNumber, F_TEXTEQ,
				CStringGetTextDatum(saga->id));
	found = fp_fetch(&SagaTable, rel, skey, 1, slot);
	if (found)
		SagaFromValues(saga, cxt, slot->tts_values[SAGA_ATT_STATE - 1],
					   slot->tts_values[SAGA_ATT_STEPS - 1],
					   slot->tts_values[SAGA_ATT_POSITION - 1],
					   slot->tts_values[SAGA_ATT_ATTEMPTS - 1]);
	ExecDropSingleTupleTableSlot(slot);
	return found;
}

/*
 * SagaNotFound - PM032.
 */
static void
SagaNotFound(const Saga *saga)
{
	ereport(ERROR,
			(payments_errcode(PM_SAGA_NOT_FOUND),
			 errmsg("saga \"%s\" does not exist", saga->id)));
}

/*
 * SagaReadLocked - read the saga with this id and lock it for update, with
 * a statement (SPI connected as the owner); PM032 when there is none.
 */
static void
SagaReadLocked(Saga *saga, MemoryContext cxt)
{
	Datum		args[1] = {CStringGetTextDatum(saga->id)};

	if (pm_stmt_exec(&SagaStmts[SG_STMT_LOCK], args, NULL) == 0)
		SagaNotFound(saga);
	SagaRead(saga, cxt, 0, 1);
}

/*
 * SagaReadUnlocked - read the saga with this id as a new statement would
 * see it: a table as installed straight through its primary key, otherwise
 * with a statement run as the owner; PM032 when there is none.
 */
static void
SagaReadUnlocked(Saga *saga, MemoryContext cxt)
{
	Relation	rel = fp_open(&SagaTable, AccessShareLock);
	bool		found;

	if (fp_exact(&SagaTable, rel))
		found = SagaFetchFast(saga, cxt, rel);
	else
	{
		Datum		args[1] = {CStringGetTextDatum(saga->id)};
		PmSpiCall	call;

		pm_spi_begin(&call, rel->rd_rel->relowner);
		found = pm_stmt_exec(&SagaStmts[SG_STMT_GET], args, NULL) > 0;
		if (found)
			SagaRead(saga, cxt, 0, 1);
		pm_spi_end(&call);
	}
	table_close(rel, NoLock);
	if (!found)
		SagaNotFound(saga);
}

/*
 * SagaInFlight - whether the saga still has something to do.
 */
static bool
SagaInFlight(const Saga *saga)
{
	return saga->state == SAGA_RUNNING || saga->state == SAGA_COMPENSATING;
}

/*
 * SagaAction - what saga_next says for this state.
 */
static const char *
SagaAction(const Saga *saga)
{
	if (saga->state == SAGA_RUNNING)
		return "run";
	if (saga->state == SAGA_COMPENSATING)
		return "compensate";
	return "done";
}

/*
 * SagaCompensateFrom - the last compensable step before position, or -1.
 */
static int
SagaCompensateFrom(const Saga *saga, int position)
{
	for (int i = position - 1; i >= 0; i--)
	{
		if (saga->steps[i].compensable)
			return i;
	}
	return -1;
}

/* A transition: where a recorded outcome takes the saga. */
typedef struct SagaMove
{
	SagaState	to;
	int			position;
	int			attempts;
	const char *event;
	const char *failed_step;	/* NULL: unchanged */
} SagaMove;

/*
 * SagaDecide - the transition an outcome of the saga's next action makes.
 */
static SagaMove
SagaDecide(const Saga *saga, bool succeeded, bool retriable)
{
	SagaMove	m = {saga->state, saga->position, saga->attempts + 1, NULL, NULL};

	if (saga->state == SAGA_RUNNING)
	{
		m.event = succeeded ? "step_succeeded" : "step_failed";
		if (succeeded || (retriable && m.attempts < SagaStepAttempts))
		{
			if (succeeded && ++m.position == saga->nsteps)
				m.to = SAGA_COMPLETED;
			m.attempts = succeeded ? 0 : m.attempts;
			return m;
		}
		m.failed_step = saga->steps[saga->position].name;
		m.position = SagaCompensateFrom(saga, saga->position);
	}
	else
	{
		m.event = succeeded ? "compensation_succeeded" : "compensation_failed";
		if (!succeeded)
		{
			if (m.attempts >= SagaCompensationAttempts)
				m.to = SAGA_FAILED_COMPENSATION;
			return m;
		}
		m.position = SagaCompensateFrom(saga, saga->position);
	}
	/* a failed step, or a compensation done: compensate the next one */
	m.attempts = 0;
	m.to = m.position < 0 ? SAGA_COMPENSATED : SAGA_COMPENSATING;
	m.position = Max(m.position, 0);
	return m;
}

/*
 * SagaCheckStep - PM030 unless step is what the saga waits for, with the
 * saga's state and its expected action in the detail.
 */
static void
SagaCheckStep(const Saga *saga, const char *step)
{
	const char *expected;

	if (!SagaInFlight(saga))
		ereport(ERROR,
				(payments_errcode(PM_SAGA_INVALID_TRANSITION),
				 errmsg("saga \"%s\" has ended", saga->id),
				 errdetail("The saga is %s; nothing more can be recorded.",
						   SagaStateNames[saga->state])));
	expected = saga->steps[saga->position].name;
	if (strcmp(step, expected) != 0)
		ereport(ERROR,
				(payments_errcode(PM_SAGA_INVALID_TRANSITION),
				 errmsg("step \"%s\" is not the next step of saga \"%s\"",
						step, saga->id),
				 errdetail("The saga is %s; its next action is to %s step \"%s\" (attempt %d).",
						   SagaStateNames[saga->state], SagaAction(saga),
						   expected, saga->attempts + 1)));
}

/*
 * SagaAlert - tell listeners on payments_saga_alert that a compensation
 * failed for good (delivered when the transaction commits).
 */
static void
SagaAlert(const Saga *saga, const char *step, int attempts)
{
	StringInfoData payload;

	initStringInfo(&payload);
	appendStringInfoString(&payload, "{\"saga_id\": ");
	escape_json(&payload, saga->id);
	appendStringInfoString(&payload, ", \"step\": ");
	escape_json(&payload, step);
	appendStringInfo(&payload, ", \"attempts\": %d, \"state\": \"failed_compensation\"}",
					 attempts);
	Async_Notify("payments_saga_alert", payload.data);
}

/*
 * SagaApply - write the transition and its event, in one statement, if the
 * saga is still where it was read; whether it was.
 */
static bool
SagaApply(const Saga *saga, const SagaMove *m, const char *step, Jsonb *detail)
{
	Datum		args[11];
	char		nulls[11];

	memset(nulls, ' ', sizeof(nulls));
	args[0] = CStringGetTextDatum(saga->id);
	args[1] = CStringGetTextDatum(SagaStateNames[m->to]);
	args[2] = Int32GetDatum(m->position);
	args[3] = Int32GetDatum(m->attempts);
	args[4] = m->failed_step ? CStringGetTextDatum(m->failed_step) : (Datum) 0;
	nulls[4] = m->failed_step ? ' ' : 'n';
	args[5] = CStringGetTextDatum(m->event);
	args[6] = CStringGetTextDatum(step);
	args[7] = Int32GetDatum(saga->attempts + 1);
	args[8] = CStringGetTextDatum(SagaStateNames[saga->state]);
	args[9] = detail ? JsonbPGetDatum(detail) : (Datum) 0;
	nulls[9] = detail ? ' ' : 'n';
	args[10] = Int32GetDatum(saga->position);
	return pm_stmt_exec(&SagaStmts[SG_STMT_MOVE], args, nulls) == 1;
}

/*
 * SagaRetriable - whether a failure's detail says the step may be tried
 * again: {"retriable": true}.
 */
static bool
SagaRetriable(Jsonb *detail)
{
	JsonbValue *v;

	if (detail == NULL || !JB_ROOT_IS_OBJECT(detail))
		return false;
	v = getKeyJsonValueFromContainer(&detail->root, "retriable", 9, NULL);
	return v != NULL && v->type == jbvBool && v->val.boolean;
}

/*
 * SagaRedacted - a jsonb argument with card data masked, as stored.
 */
static Jsonb *
SagaRedacted(Jsonb *jb)
{
	Jsonb	   *redacted = redact_jsonb(jb);

	return redacted ? redacted : jb;
}

/*
 * SagaCount - count a saga reaching an end state.
 */
static void
SagaCount(SagaState state)
{
	if (state == SAGA_COMPLETED)
		payments_count(PM_STAT_SAGA_COMPLETED, 1);
	else if (state == SAGA_COMPENSATED)
		payments_count(PM_STAT_SAGA_COMPENSATED, 1);
	else if (state == SAGA_FAILED_COMPENSATION)
		payments_count(PM_STAT_SAGA_FAILED_COMPENSATION, 1);
}

PG_FUNCTION_INFO_V1(payments_saga_record);

/*
 * payments_saga_record - saga_record(saga_id, step, outcome, detail): the
 * saga's new state.
 */
Datum
payments_saga_record(PG_FUNCTION_ARGS)
{
	static const char *const names[] = {"saga_id", "step", "outcome"};
	char	   *outcome;
	char	   *step;
	Jsonb	   *detail = PG_ARGISNULL(3) ? NULL : SagaRedacted(PG_GETARG_JSONB_P(3));
	PmSpiCall	call;
	Saga		saga;
	SagaMove	move;

	payments_require_args(fcinfo, 3, names);
	outcome = text_to_cstring(PG_GETARG_TEXT_PP(2));
	if (strcmp(outcome, "succeeded") != 0 && strcmp(outcome, "failed") != 0)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("outcome must be \"succeeded\" or \"failed\"")));
	step = text_to_cstring(PG_GETARG_TEXT_PP(1));
	saga.id = text_to_cstring(PG_GETARG_TEXT_PP(0));
	pm_require_writable("payments.saga_record");
	SagaReadUnlocked(&saga, CurrentMemoryContext);
	pm_spi_begin(&call, SagaOwner());
	for (;;)
	{
		SagaCheckStep(&saga, step);
		move = SagaDecide(&saga, outcome[0] == 's', SagaRetriable(detail));
		if (SagaApply(&saga, &move, step, detail))
			break;
		/* another session moved the saga since we read it: lock, look again */
		SagaReadLocked(&saga, call.caller);
	}
	if (move.to == SAGA_FAILED_COMPENSATION)
		SagaAlert(&saga, step, move.attempts);
	if (move.to != saga.state)
		SagaCount(move.to);
	pm_spi_end(&call);
	PG_RETURN_TEXT_P(cstring_to_text(SagaStateNames[move.to]));
}

/*
 * SagaNextValues - the (action, step, attempt, state) saga_next and
 * saga_recoverable show, from values[0].
 */
static void
SagaNextValues(const Saga *saga, Datum *values, bool *nulls)
{
	bool		in_flight = SagaInFlight(saga);

	values[0] = CStringGetTextDatum(SagaAction(saga));
	nulls[1] = nulls[2] = !in_flight;
	if (in_flight)
	{
		values[1] = CStringGetTextDatum(saga->steps[saga->position].name);
		values[2] = Int32GetDatum(saga->attempts + 1);
	}
	values[3] = CStringGetTextDatum(SagaStateNames[saga->state]);
}

PG_FUNCTION_INFO_V1(payments_saga_next);

/*
 * payments_saga_next - saga_next(saga_id): what to do next, answered from
 * the saga's state alone.
 */
Datum
payments_saga_next(PG_FUNCTION_ARGS)
{
	static const char *const names[] = {"saga_id"};
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
	Datum		values[4];
	bool		nulls[4] = {0};
	Saga		saga;

	payments_require_args(fcinfo, 1, names);
	InitMaterializedSRF(fcinfo, 0);
	saga.id = text_to_cstring(PG_GETARG_TEXT_PP(0));
	SagaReadUnlocked(&saga, CurrentMemoryContext);
	SagaNextValues(&saga, values, nulls);
	tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, values, nulls);
	return (Datum) 0;
}

/*
 * SagaNewId - a random id for a saga started without one.
 */
static char *
SagaNewId(void)
{
	return DatumGetCString(DirectFunctionCall1(uuid_out,
											   DirectFunctionCall1(gen_random_uuid, (Datum) 0)));
}

/*
 * SagaCheckSame - a saga_id that exists already: the same name and steps
 * return it (a retried start); anything else is PM031.
 */
static void
SagaCheckSame(const char *id, const char *name, Jsonb *steps)
{
	Datum		args[1] = {CStringGetTextDatum(id)};
	bool		isnull;

	/* the row that conflicted may have been committed after our snapshot */
	if (pm_stmt_exec_latest(&SagaStmts[SG_STMT_EXISTING], args, NULL) == 1 &&
		strcmp(TextDatumGetCString(pm_stmt_value(0, 1, &isnull)), name) == 0 &&
		compareJsonbContainers(&DatumGetJsonbP(pm_stmt_value(0, 2, &isnull))->root,
							   &steps->root) == 0)
		return;
	ereport(ERROR,
			(payments_errcode(PM_SAGA_CONFLICT),
			 errmsg("saga \"%s\" already exists with another name or other steps", id),
			 errhint("A retried saga_start must pass the same name and steps; use a new saga_id for a new saga.")));
}

PG_FUNCTION_INFO_V1(payments_saga_start);

/*
 * payments_saga_start - saga_start(name, steps, context, saga_id): the id
 * of the new saga, or of the same one started before.
 */
Datum
payments_saga_start(PG_FUNCTION_ARGS)
{
	static const char *const names[] = {"name", "steps"};
	Jsonb	   *steps;
	char	   *name;
	char	   *id;
	Datum		args[4];
	PmSpiCall	call;
	int			nsteps;

	payments_require_args(fcinfo, 2, names);
	name = text_to_cstring(PG_GETARG_TEXT_PP(0));
	steps = PG_GETARG_JSONB_P(1);
	id = PG_ARGISNULL(3) ? SagaNewId() : text_to_cstring(PG_GETARG_TEXT_PP(3));
	if (name[0] == '\0' || strlen(name) > SAGA_NAME_MAX ||
		id[0] == '\0' || strlen(id) > SAGA_NAME_MAX)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("a saga's name and id must be 1 to %d bytes", SAGA_NAME_MAX)));
	(void) SagaParseSteps(steps, &nsteps, true);
	pm_require_writable("payments.saga_start");
	args[0] = CStringGetTextDatum(id);
	args[1] = CStringGetTextDatum(name);
	args[2] = JsonbPGetDatum(steps);
	args[3] = PG_ARGISNULL(2) ? DirectFunctionCall1(jsonb_in, CStringGetDatum("{}")) :
		JsonbPGetDatum(SagaRedacted(PG_GETARG_JSONB_P(2)));
	pm_spi_begin(&call, SagaOwner());
	if (pm_stmt_exec(&SagaStmts[SG_STMT_INSERT], args, NULL) == 0)
		SagaCheckSame(id, name, steps);
	else
		payments_count(PM_STAT_SAGA_STARTED, 1);
	pm_spi_end(&call);
	PG_RETURN_TEXT_P(cstring_to_text(id));
}

/*
 * SagaRecoverableRow - one claimed saga of the result (id, name, then the
 * saga's columns, then updated_at) as a row of saga_recoverable: id, name,
 * what saga_next would say, updated_at.
 */
static void
SagaRecoverableRow(ReturnSetInfo *rsinfo, uint64 row, MemoryContext cxt)
{
	Datum		values[7];
	bool		nulls[7] = {0};
	bool		isnull;
	Saga		saga;
	MemoryContext old;

	SagaRead(&saga, cxt, row, 3);
	old = MemoryContextSwitchTo(cxt);
	values[0] = datumCopy(pm_stmt_value(row, 1, &isnull), false, -1);
	values[1] = datumCopy(pm_stmt_value(row, 2, &isnull), false, -1);
	SagaNextValues(&saga, values + 2, nulls + 2);
	/* SagaNextValues puts the state last; saga_recoverable has it first */
	values[6] = pm_stmt_value(row, 7, &isnull);
	MemoryContextSwitchTo(old);
	tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, values, nulls);
}

PG_FUNCTION_INFO_V1(payments_saga_recoverable);

/*
 * payments_saga_recoverable - saga_recoverable(stale): claim, for stale,
 * the in-flight sagas without progress for stale that nobody has claimed,
 * skipping rows another caller is claiming right now, so that two callers
 * never get the same saga; with each, what to do next.
 */
Datum
payments_saga_recoverable(PG_FUNCTION_ARGS)
{
	static const char *const names[] = {"stale"};
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
	Interval   *stale;
	Datum		args[2];
	Oid			owner;
	Oid			relid;
	PmSpiCall	call;
	uint64		n;

	payments_require_args(fcinfo, 1, names);
	stale = payments_interval_arg(fcinfo, 0, "stale");
	pm_require_writable("payments.saga_recoverable");
	InitMaterializedSRF(fcinfo, 0);
	args[0] = IntervalPGetDatum(stale);
	args[1] = CStringGetTextDatum(psprintf("%s (pid %d)",
										   GetUserNameFromId(GetUserId(), false),
										   MyProcPid));
	owner = pm_table_owner("sagas", &relid);
	pm_spi_begin(&call, owner);
	n = pm_stmt_exec(&SagaStmts[pm_citus_table(relid) ?
								SG_STMT_RECOVER_CITUS : SG_STMT_RECOVER],
					 args, NULL);
	for (uint64 i = 0; i < n; i++)
		SagaRecoverableRow(rsinfo, i, call.caller);
	pm_spi_end(&call);
	return (Datum) 0;
}

PG_FUNCTION_INFO_V1(payments_saga_events_append_only);

/*
 * payments_saga_events_append_only - BEFORE UPDATE OR DELETE row trigger of
 * payments.saga_events: the log is never rewritten.  Only the rows of a
 * saga that is itself being deleted may go (the foreign key's cascade).
 */
Datum
payments_saga_events_append_only(PG_FUNCTION_ARGS)
{
	TriggerData *trigdata = (TriggerData *) fcinfo->context;
	bool		isnull;
	Datum		args[1];
	PmSpiCall	call;
	bool		saga_exists;

	if (!CALLED_AS_TRIGGER(fcinfo))
		elog(ERROR, "payments_saga_events_append_only: not called as a trigger");
	if (TRIGGER_FIRED_BY_DELETE(trigdata->tg_event))
	{
		args[0] = heap_getattr(trigdata->tg_trigtuple, 2,
							   trigdata->tg_relation->rd_att, &isnull);
		pm_spi_begin(&call, InvalidOid);
		saga_exists = pm_stmt_exec(&SagaStmts[SG_STMT_EXISTING], args, NULL) > 0;
		pm_spi_end(&call);
		if (!saga_exists)
			return PointerGetDatum(trigdata->tg_trigtuple);
	}
	ereport(ERROR,
			(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
			 errmsg("payments.saga_events is append-only"),
			 errdetail("A saga's events go only with the saga itself (DELETE FROM payments.sagas).")));
	return (Datum) 0;
}

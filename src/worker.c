/*-------------------------------------------------------------------------
 *
 * worker.c
 *	  The background worker: the nightly reconciliation and the purges.
 *
 * With shared_preload_libraries = 'payments' the postmaster starts one
 * worker once recovery has finished (so a standby has none until it is
 * promoted).  It connects to payments.database and loops: it reconciles
 * every day that is due (the previous day, in payments.timezone, from
 * payments.reconcile_time on; days missed while the server was down, up to
 * WORKER_CATCH_UP_DAYS back), each in its own transaction that first checks
 * that no worker run of that window exists (so no window is ever run twice,
 * whatever restarts happen); then it purges expired idempotency keys and
 * old webhook rows in short transactions and flags in-flight sagas without
 * progress for payments.saga_stale_after; then it sleeps until the next
 * run or payments.worker_naptime, whichever comes first, or until
 * payments.worker_run_now() sets its latch.
 *
 * An error in a task is caught, logged and shown in payments.worker_status;
 * the loop goes on.  SIGHUP rereads the settings, SIGTERM ends the worker
 * (a run in progress is rolled back), and the postmaster restarts it after
 * a crash.  Its state is in a small struct in shared memory.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/xact.h"
#include "catalog/namespace.h"
#include "catalog/pg_type.h"
#include "fmgr.h"
#include "funcapi.h"
#include "miscadmin.h"
#include "nodes/makefuncs.h"
#include "pgstat.h"
#include "pgtime.h"
#include "postmaster/bgworker.h"
#include "postmaster/interrupt.h"
#include "storage/ipc.h"
#include "storage/latch.h"
#include "storage/proc.h"
#include "storage/shmem.h"
#include "storage/spin.h"
#include "tcop/tcopprot.h"
#include "utils/builtins.h"
#include "utils/date.h"
#include "utils/guc.h"
#include "utils/memutils.h"
#include "utils/snapmgr.h"
#include "utils/timestamp.h"
#include "utils/wait_event.h"

#include "payments.h"
#include "reconcile.h"
#include "stmt.h"

/* Days of missed reconciliations the worker catches up after downtime. */
#define WORKER_CATCH_UP_DAYS 7

/* Rows one purge transaction deletes, and transactions per pass. */
#define WORKER_PURGE_BATCH 1000
#define WORKER_PURGE_MAX_BATCHES 100

/*
 * How often, at most, the worker looks for CREATE EXTENSION payments.  No
 * wake-up reaches it from the creating transaction (on a Citus worker node
 * that is a prepared transaction committed by another session), so it
 * polls, with one catalog lookup.
 */
#define WORKER_INSTALL_POLL_MS 5000L

#define WORKER_STATE_LEN 64
#define WORKER_ERROR_LEN 512

/* payments.database, .reconcile_time, .timezone, .worker_naptime */
static char *WorkerDatabase = NULL;
static char *WorkerReconcileTime = NULL;
static char *WorkerTimezone = NULL;
static int	WorkerNaptime = 60;
static int	WorkerSagaStaleAfter = 300;

/* What the worker shows in payments.worker_status. */
typedef struct WorkerShared
{
	slock_t		mutex;
	pid_t		pid;			/* 0: not running */
	Latch	   *latch;
	bool		run_now;
	char		state[WORKER_STATE_LEN];
	TimestampTz started_at;
	int64		last_run_id;
	TimestampTz last_run_at;
	TimestampTz last_window_start;
	TimestampTz next_run_at;
	char		last_error[WORKER_ERROR_LEN];
	TimestampTz last_error_at;
	TimestampTz last_purge_at;
	int64		purged_keys;
	int64		purged_webhook_rows;
	int64		flagged_sagas;
} WorkerShared;

static WorkerShared *Worker = NULL;

/* The worker's statements. */
typedef enum WorkerStmtId
{
	WK_STMT_INSTALLED,
	WK_STMT_COORDINATOR,
	WK_STMT_SCHEDULE,
	WK_STMT_WINDOW,
	WK_STMT_PURGE_KEYS,
	WK_STMT_PURGE_WEBHOOKS,
	WK_STMT_FLAG_SAGAS,
	WK_NSTMTS
} WorkerStmtId;

/* The worker's runs of the default sources: what "a window was run" means. */
#define WORKER_RUNS \
	" FROM " PAYMENTS_SCHEMA ".reconciliation_runs WHERE triggered_by = 'worker'" \
	" AND internal_source = 'payments.ledger'" \
	" AND gateway_source = 'payments.gateway_report'"

static PmStmt WorkerStmts[WK_NSTMTS] = {
	/* whether payments is installed, and Citus */
	[WK_STMT_INSTALLED] = {
		"SELECT pg_catalog.bool_or(extname = 'payments'),"
		" pg_catalog.bool_or(extname = 'citus')"
		" FROM pg_catalog.pg_extension WHERE extname IN ('payments', 'citus')",
		0, {0}
	},
	/* run only where Citus is installed */
	[WK_STMT_COORDINATOR] = {
		"SELECT pg_catalog.citus_is_coordinator()",
		0, {0}
	},
	/*
	 * $1 zone, $2 time of day the previous day becomes due, $3 the
	 * schedule's time of day (NULL: none): the last day due, yesterday, the
	 * last day the worker ran and when the next scheduled run is
	 */
	[WK_STMT_SCHEDULE] = {
		"SELECT (n.t - $2::pg_catalog.interval)::date - 1 AS due,"
		" n.t::date - 1 AS yesterday, l.last_done,"
		" pg_catalog.timezone($1, ((n.t - $3::pg_catalog.interval)::date + 1) + $3)"
		"  AS next_run"
		" FROM (SELECT pg_catalog.timezone($1, pg_catalog.now()) AS t) AS n,"
		" (SELECT (pg_catalog.timezone($1, pg_catalog.max(window_start)))::date"
		"  AS last_done" WORKER_RUNS ") AS l",
		3, {TEXTOID, TIMEOID, TIMEOID}
	},
	/* $1 zone, $2 day: its window, and whether the worker ran it already */
	[WK_STMT_WINDOW] = {
		"SELECT w.ws, w.we, EXISTS (SELECT 1" WORKER_RUNS
		" AND window_start = w.ws AND window_end = w.we) AS done"
		" FROM (SELECT pg_catalog.timezone($1, $2::pg_catalog.timestamp) AS ws,"
		"       pg_catalog.timezone($1, ($2 + 1)::pg_catalog.timestamp) AS we) AS w",
		2, {TEXTOID, DATEOID}
	},
	[WK_STMT_PURGE_KEYS] = {
		"SELECT " PAYMENTS_SCHEMA ".idempotency_purge(pg_catalog.now(), $1)",
		1, {INT8OID}
	},
	[WK_STMT_PURGE_WEBHOOKS] = {
		"SELECT " PAYMENTS_SCHEMA ".webhook_purge(pg_catalog.now(), $1)",
		1, {INT8OID}
	},
	/* in-flight sagas without progress for $1, flagged once, with an event */
	[WK_STMT_FLAG_SAGAS] = {
		"WITH f AS (UPDATE " PAYMENTS_SCHEMA ".sagas SET stale_since = pg_catalog.now()"
		" WHERE state IN ('running', 'compensating')"
		" AND updated_at < pg_catalog.now() - $1 AND stale_since IS NULL"
		" RETURNING id, state)"
		" INSERT INTO " PAYMENTS_SCHEMA ".saga_events (saga_id, event, from_state, to_state)"
		" SELECT id, 'flagged_stale', state, state FROM f",
		1, {INTERVALOID}
	},
};

/* A task the loop runs in a transaction of its own. */
typedef void (*WorkerTask) (void *arg);

PGDLLEXPORT void payments_worker_main(Datum main_arg);

/*
 * WorkerCheckTime - GUC check hook of payments.reconcile_time: empty, or
 * HH:MM (or HH:MM:SS) on a 24-hour clock.
 */
static bool
WorkerCheckTime(char **newval, void **extra, GucSource source)
{
	const char *v = *newval;
	int			h,
				m,
				sec = 0,
				n = 0;

	if (v[0] == '\0')
		return true;
	if ((sscanf(v, "%2d:%2d%n", &h, &m, &n) == 2 && v[n] == '\0') ||
		(sscanf(v, "%2d:%2d:%2d%n", &h, &m, &sec, &n) == 3 && v[n] == '\0'))
	{
		if (h >= 0 && h <= 23 && m >= 0 && m <= 59 && sec >= 0 && sec <= 59 &&
			strspn(v, "0123456789:") == strlen(v))
			return true;
	}
	GUC_check_errdetail("payments.reconcile_time must be HH:MM or HH:MM:SS (24-hour clock), or empty.");
	return false;
}

/*
 * WorkerCheckZone - GUC check hook of payments.timezone: a zone the server
 * knows.
 */
static bool
WorkerCheckZone(char **newval, void **extra, GucSource source)
{
	if (pg_tzset(*newval) != NULL)
		return true;
	GUC_check_errdetail("\"%s\" is not a time zone name this server knows.", *newval);
	return false;
}

/*
 * WorkerDefineGucs - the worker's settings.
 */
static void
WorkerDefineGucs(void)
{
	DefineCustomStringVariable("payments.database",
							   "Database the background worker connects to.",
							   "On a change the worker restarts to connect to the new one.",
							   &WorkerDatabase, "postgres",
							   PGC_SIGHUP, 0, NULL, NULL, NULL);
	DefineCustomStringVariable("payments.reconcile_time",
							   "Time of day (HH:MM, in payments.timezone) the worker reconciles the previous day; empty disables.",
							   NULL, &WorkerReconcileTime, "02:00",
							   PGC_SIGHUP, 0, WorkerCheckTime, NULL, NULL);
	DefineCustomStringVariable("payments.timezone",
							   "Time zone of the worker's schedule and of a day's window.",
							   NULL, &WorkerTimezone, "UTC",
							   PGC_SIGHUP, 0, WorkerCheckZone, NULL, NULL);
	DefineCustomIntVariable("payments.saga_stale_after",
							"Seconds without progress after which the worker flags an in-flight saga as stale.",
							NULL, &WorkerSagaStaleAfter, 300, 1, INT_MAX,
							PGC_SIGHUP, GUC_UNIT_S, NULL, NULL, NULL);
	DefineCustomIntVariable("payments.worker_naptime",
							"Seconds between the worker's purges and schedule checks.",
							NULL, &WorkerNaptime, 60, 1, 86400,
							PGC_SIGHUP, GUC_UNIT_S, NULL, NULL, NULL);
}

/*
 * WorkerShmemSize - the worker's shared struct.
 */
static Size
WorkerShmemSize(void)
{
	return MAXALIGN(sizeof(WorkerShared));
}

/*
 * WorkerShmemInit - create or attach it (AddinShmemInitLock is held).
 */
static void
WorkerShmemInit(void)
{
	bool		found;

	Worker = ShmemInitStruct("payments worker", WorkerShmemSize(), &found);
	if (!found)
	{
		memset(Worker, 0, sizeof(WorkerShared));
		SpinLockInit(&Worker->mutex);
		strlcpy(Worker->state, "not started", WORKER_STATE_LEN);
	}
}

/*
 * WorkerRegister - register the worker with the postmaster.
 */
static void
WorkerRegister(void)
{
	BackgroundWorker w = {0};

	w.bgw_flags = BGWORKER_SHMEM_ACCESS | BGWORKER_BACKEND_DATABASE_CONNECTION;
	w.bgw_start_time = BgWorkerStart_RecoveryFinished;
	w.bgw_restart_time = 10;
	strlcpy(w.bgw_library_name, "payments", BGW_MAXLEN);
	strlcpy(w.bgw_function_name, "payments_worker_main", BGW_MAXLEN);
	strlcpy(w.bgw_name, "payments worker", BGW_MAXLEN);
	strlcpy(w.bgw_type, "payments worker", BGW_MAXLEN);
	RegisterBackgroundWorker(&w);
}

const PaymentsModule PaymentsWorkerModule = {
	.name = "worker",
	.define_gucs = WorkerDefineGucs,
	.shmem_size = WorkerShmemSize,
	.shmem_init = WorkerShmemInit,
	.preload = WorkerRegister,
};

/*
 * WorkerSetState - what the worker is doing, in shared memory and in
 * pg_stat_activity.
 */
static void
WorkerSetState(const char *state)
{
	SpinLockAcquire(&Worker->mutex);
	strlcpy(Worker->state, state, WORKER_STATE_LEN);
	SpinLockRelease(&Worker->mutex);
	pgstat_report_activity(strcmp(state, "idle") == 0 ? STATE_IDLE : STATE_RUNNING,
						   state);
}

/*
 * WorkerDetach - on exit: no worker any more.
 */
static void
WorkerDetach(int code, Datum arg)
{
	SpinLockAcquire(&Worker->mutex);
	Worker->pid = 0;
	Worker->latch = NULL;
	strlcpy(Worker->state, "stopped", WORKER_STATE_LEN);
	SpinLockRelease(&Worker->mutex);
}

/*
 * WorkerAttach - announce this process as the worker.
 */
static void
WorkerAttach(void)
{
	SpinLockAcquire(&Worker->mutex);
	Worker->pid = MyProcPid;
	Worker->latch = MyLatch;
	Worker->started_at = GetCurrentTimestamp();
	Worker->next_run_at = 0;
	strlcpy(Worker->state, "starting", WORKER_STATE_LEN);
	SpinLockRelease(&Worker->mutex);
	on_shmem_exit(WorkerDetach, (Datum) 0);
}

/*
 * WorkerSetError - keep a task's error for payments.worker_status.
 */
static void
WorkerSetError(const char *what, const char *message)
{
	SpinLockAcquire(&Worker->mutex);
	snprintf(Worker->last_error, WORKER_ERROR_LEN, "%s: %s", what, message);
	Worker->last_error_at = GetCurrentTimestamp();
	SpinLockRelease(&Worker->mutex);
}

/*
 * WorkerRun - run a task in a transaction of its own, SPI connected with
 * search_path pinned.  An error is logged and kept for worker_status, and
 * the transaction rolled back; whether the task succeeded.
 */
static bool
WorkerRun(const char *what, WorkerTask task, void *arg)
{
	MemoryContext cxt = CurrentMemoryContext;
	volatile bool ok = true;

	WorkerSetState(what);
	SetCurrentStatementStartTimestamp();
	PG_TRY();
	{
		PmSpiCall	call;

		StartTransactionCommand();
		PushActiveSnapshot(GetTransactionSnapshot());
		pm_spi_begin(&call, InvalidOid);
		task(arg);
		pm_spi_end(&call);
		PopActiveSnapshot();
		CommitTransactionCommand();
	}
	PG_CATCH();
	{
		ErrorData  *edata;

		MemoryContextSwitchTo(cxt);
		edata = CopyErrorData();
		FlushErrorState();
		AbortCurrentTransaction();
		WorkerSetError(what, edata->message);
		ereport(LOG,
				(errmsg("payments worker: %s failed: %s", what, edata->message)));
		FreeErrorData(edata);
		ok = false;
	}
	PG_END_TRY();
	pgstat_report_stat(false);
	WorkerSetState("idle");
	return ok;
}

/* What the schedule says: the days to reconcile now, and the next run. */
typedef struct WorkerSchedule
{
	bool		run_now;
	bool		installed;
	bool		citus_worker;	/* a Citus worker node: nothing to do */
	DateADT		first;			/* first > last: nothing to run */
	DateADT		last;
	TimestampTz next_run;		/* 0: none scheduled */
} WorkerSchedule;

/*
 * WorkerTaskSchedule - the days due: from the day after the worker's last
 * run (at most WORKER_CATCH_UP_DAYS back) to the last day whose run time
 * has come.  With no run yet, only the previous day once today's run time
 * has come: the worker does not reconcile days from before it was set up.
 * worker_run_now makes the previous day due whatever the time.
 */
static void
WorkerTaskSchedule(void *arg)
{
	WorkerSchedule *s = arg;
	bool		scheduled = WorkerReconcileTime[0] != '\0';
	Datum		args[3];
	char		nulls[3] = {' ', ' ', scheduled ? ' ' : 'n'};
	bool		isnull;
	DateADT		yesterday;
	DateADT		last_done;

	s->first = 1;
	s->last = 0;
	s->next_run = 0;
	pm_stmt_exec(&WorkerStmts[WK_STMT_INSTALLED], NULL, NULL);
	s->installed = DatumGetBool(pm_stmt_value(0, 1, &isnull)) && !isnull;
	s->citus_worker = DatumGetBool(pm_stmt_value(0, 2, &isnull)) && !isnull &&
		pm_stmt_exec(&WorkerStmts[WK_STMT_COORDINATOR], NULL, NULL) > 0 &&
		!DatumGetBool(pm_stmt_value(0, 1, &isnull));
	if (!s->installed || s->citus_worker || (!scheduled && !s->run_now))
		return;
	args[0] = CStringGetTextDatum(WorkerTimezone);
	args[1] = DirectFunctionCall1(time_in, CStringGetDatum(s->run_now || !scheduled ?
														   "00:00" : WorkerReconcileTime));
	args[2] = scheduled ? DirectFunctionCall1(time_in, CStringGetDatum(WorkerReconcileTime)) : (Datum) 0;
	pm_stmt_exec(&WorkerStmts[WK_STMT_SCHEDULE], args, nulls);
	s->last = DatumGetDateADT(pm_stmt_value(0, 1, &isnull));
	yesterday = DatumGetDateADT(pm_stmt_value(0, 2, &isnull));
	last_done = DatumGetDateADT(pm_stmt_value(0, 3, &isnull));
	if (isnull)
		s->first = s->last == yesterday ? s->last : s->last + 1;
	else
		s->first = Max(last_done + 1, s->last - WORKER_CATCH_UP_DAYS + 1);
	s->next_run = DatumGetTimestampTz(pm_stmt_value(0, 4, &isnull));
	if (isnull)
		s->next_run = 0;
}

/*
 * WorkerTaskReconcile - reconcile one day of the default sources, unless
 * the worker has done that window already.
 */
static void
WorkerTaskReconcile(void *arg)
{
	DateADT		day = *(DateADT *) arg;
	Datum		args[2] = {CStringGetTextDatum(WorkerTimezone), DateADTGetDatum(day)};
	bool		isnull;
	TimestampTz ws;
	TimestampTz we;
	Oid			ledger;
	Oid			gateway;
	int64		run_id;

	pm_stmt_exec(&WorkerStmts[WK_STMT_WINDOW], args, NULL);
	ws = DatumGetTimestampTz(pm_stmt_value(0, 1, &isnull));
	we = DatumGetTimestampTz(pm_stmt_value(0, 2, &isnull));
	if (DatumGetBool(pm_stmt_value(0, 3, &isnull)))
		return;
	ledger = RangeVarGetRelid(makeRangeVar(PAYMENTS_SCHEMA, "ledger", -1),
							  AccessShareLock, false);
	gateway = RangeVarGetRelid(makeRangeVar(PAYMENTS_SCHEMA, "gateway_report", -1),
							   AccessShareLock, false);
	run_id = reconcile_run(ws, we, ledger, gateway, int64_to_numeric(0),
						   RECONCILE_WORKER);
	SpinLockAcquire(&Worker->mutex);
	Worker->last_run_id = run_id;
	Worker->last_run_at = GetCurrentTimestamp();
	Worker->last_window_start = ws;
	SpinLockRelease(&Worker->mutex);
}

/* One purge batch: which statement, and the rows it deleted. */
typedef struct WorkerPurge
{
	WorkerStmtId stmt;
	int64		deleted;
} WorkerPurge;

/*
 * WorkerTaskPurge - one batch of one purge.
 */
static void
WorkerTaskPurge(void *arg)
{
	WorkerPurge *p = arg;
	Datum		args[1] = {Int64GetDatum(WORKER_PURGE_BATCH)};
	bool		isnull;

	pm_stmt_exec(&WorkerStmts[p->stmt], args, NULL);
	p->deleted = DatumGetInt64(pm_stmt_value(0, 1, &isnull));
}

/*
 * WorkerTaskFlagSagas - flag the in-flight sagas without progress for
 * payments.saga_stale_after (each once, with a flagged_stale event).
 */
static void
WorkerTaskFlagSagas(void *arg)
{
	Interval	stale = {(int64) WorkerSagaStaleAfter * USECS_PER_SEC, 0, 0};
	Datum		args[1] = {IntervalPGetDatum(&stale)};

	*(int64 *) arg = (int64) pm_stmt_exec(&WorkerStmts[WK_STMT_FLAG_SAGAS], args, NULL);
}

/*
 * WorkerPurgeAll - run one purge in batches until it finds less than a
 * batch (or WORKER_PURGE_MAX_BATCHES ran); the rows deleted.
 */
static int64
WorkerPurgeAll(const char *what, WorkerStmtId stmt)
{
	int64		total = 0;

	for (int i = 0; i < WORKER_PURGE_MAX_BATCHES; i++)
	{
		WorkerPurge p = {stmt, 0};

		CHECK_FOR_INTERRUPTS();
		if (!WorkerRun(what, WorkerTaskPurge, &p))
			break;
		total += p.deleted;
		if (p.deleted < WORKER_PURGE_BATCH)
			break;
	}
	return total;
}

/*
 * WorkerPass - one pass of the loop: the reconciliations due, then the
 * purges.  The time to sleep afterwards, in milliseconds.
 */
static long
WorkerPass(bool run_now)
{
	WorkerSchedule s = {0};
	int64		keys;
	int64		webhooks;
	int64		flagged = 0;
	long		wait_ms = WorkerNaptime * 1000L;

	s.run_now = run_now;
	if (!WorkerRun("scheduling", WorkerTaskSchedule, &s))
		return wait_ms;
	if (!s.installed)
	{
		WorkerSetState("waiting for CREATE EXTENSION payments");
		return Min(wait_ms, WORKER_INSTALL_POLL_MS);
	}
	if (s.citus_worker)
	{
		/* the coordinator's worker reconciles and purges the whole cluster */
		WorkerSetState("idle: a Citus worker node");
		return wait_ms;
	}
	for (DateADT day = s.first; day <= s.last; day++)
	{
		CHECK_FOR_INTERRUPTS();
		if (!WorkerRun("reconciling", WorkerTaskReconcile, &day))
			break;
	}
	keys = WorkerPurgeAll("purging idempotency keys", WK_STMT_PURGE_KEYS);
	webhooks = WorkerPurgeAll("purging webhook rows", WK_STMT_PURGE_WEBHOOKS);
	if (!WorkerRun("flagging stale sagas", WorkerTaskFlagSagas, &flagged))
		flagged = 0;
	SpinLockAcquire(&Worker->mutex);
	Worker->next_run_at = s.next_run;
	Worker->last_purge_at = GetCurrentTimestamp();
	Worker->purged_keys = keys;
	Worker->purged_webhook_rows = webhooks;
	Worker->flagged_sagas = flagged;
	SpinLockRelease(&Worker->mutex);
	if (s.next_run != 0)
	{
		long		until = (long) ((s.next_run - GetCurrentTimestamp()) / 1000);

		wait_ms = Max(Min(wait_ms, until), 0);
	}
	return wait_ms;
}

/*
 * WorkerCheckDatabase - after a reload: when payments.database names
 * another database, exit, so that the postmaster starts the worker again
 * (after bgw_restart_time) connected to it.
 */
static void
WorkerCheckDatabase(const char *connected)
{
	if (strcmp(WorkerDatabase, connected) == 0)
		return;
	ereport(LOG,
			(errmsg("payments worker: payments.database changed from \"%s\" to \"%s\", restarting",
					connected, WorkerDatabase)));
	proc_exit(1);
}

/*
 * payments_worker_main - the worker's entry point.
 */
void
payments_worker_main(Datum main_arg)
{
	MemoryContext loopcxt;
	char	   *database;

	pqsignal(SIGHUP, SignalHandlerForConfigReload);
	pqsignal(SIGTERM, die);
	BackgroundWorkerUnblockSignals();
	database = MemoryContextStrdup(TopMemoryContext, WorkerDatabase);
	BackgroundWorkerInitializeConnection(database, NULL, 0);
	pgstat_report_appname("payments worker");
	WorkerAttach();
	loopcxt = AllocSetContextCreate(TopMemoryContext, "payments worker loop",
									ALLOCSET_DEFAULT_SIZES);
	ereport(LOG,
			(errmsg("payments worker started in database \"%s\"", database)));
	for (;;)
	{
		bool		run_now;
		long		wait_ms;

		CHECK_FOR_INTERRUPTS();
		if (ConfigReloadPending)
		{
			ConfigReloadPending = false;
			ProcessConfigFile(PGC_SIGHUP);
			WorkerCheckDatabase(database);
		}
		SpinLockAcquire(&Worker->mutex);
		run_now = Worker->run_now;
		Worker->run_now = false;
		SpinLockRelease(&Worker->mutex);
		MemoryContextSwitchTo(loopcxt);
		wait_ms = WorkerPass(run_now);
		MemoryContextSwitchTo(TopMemoryContext);
		MemoryContextReset(loopcxt);
		(void) WaitLatch(MyLatch, WL_LATCH_SET | WL_TIMEOUT | WL_EXIT_ON_PM_DEATH,
						 wait_ms, PG_WAIT_EXTENSION);
		ResetLatch(MyLatch);
	}
}

PG_FUNCTION_INFO_V1(payments_worker_status);

/*
 * WorkerStatusState - the state to show: the worker's own, or why there is
 * none.
 */
static const char *
WorkerStatusState(const WorkerShared *w)
{
	if (Worker == NULL)
		return "not preloaded";
	if (w->pid == 0 && RecoveryInProgress())
		return "waiting for promotion";
	return w->state;
}

/*
 * payments_worker_status - one row: the worker's state from shared memory.
 */
Datum
payments_worker_status(PG_FUNCTION_ARGS)
{
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
	WorkerShared w = {0};
	Datum		values[12];
	bool		nulls[12] = {0};
	char		purge[192];

	InitMaterializedSRF(fcinfo, 0);
	if (Worker != NULL)
	{
		SpinLockAcquire(&Worker->mutex);
		memcpy(&w, Worker, sizeof(WorkerShared));
		SpinLockRelease(&Worker->mutex);
	}
	values[0] = CStringGetTextDatum(WorkerStatusState(&w));
	values[1] = Int32GetDatum(w.pid);
	nulls[1] = w.pid == 0;
	values[2] = CStringGetTextDatum(WorkerDatabase);
	values[3] = TimestampTzGetDatum(w.started_at);
	values[4] = Int64GetDatum(w.last_run_id);
	values[5] = TimestampTzGetDatum(w.last_run_at);
	values[6] = TimestampTzGetDatum(w.last_window_start);
	values[7] = TimestampTzGetDatum(w.next_run_at);
	values[8] = CStringGetTextDatum(w.last_error);
	values[9] = TimestampTzGetDatum(w.last_error_at);
	values[10] = TimestampTzGetDatum(w.last_purge_at);
	snprintf(purge, sizeof(purge),
			 "{\"idempotency_keys\": " INT64_FORMAT ", \"webhook_rows\": " INT64_FORMAT
			 ", \"stale_sagas_flagged\": " INT64_FORMAT "}",
			 w.purged_keys, w.purged_webhook_rows, w.flagged_sagas);
	values[11] = DirectFunctionCall1(jsonb_in, CStringGetDatum(purge));
	nulls[3] = w.started_at == 0;
	nulls[4] = nulls[5] = nulls[6] = w.last_run_at == 0;
	nulls[7] = w.next_run_at == 0;
	nulls[8] = nulls[9] = w.last_error_at == 0;
	nulls[10] = nulls[11] = w.last_purge_at == 0;
	tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, values, nulls);
	return (Datum) 0;
}

PG_FUNCTION_INFO_V1(payments_worker_run_now);

/*
 * payments_worker_run_now - wake the worker for a pass now, with the
 * previous day due whatever the time; false when no worker runs.
 */
Datum
payments_worker_run_now(PG_FUNCTION_ARGS)
{
	bool		woken = false;

	if (Worker == NULL)
		PG_RETURN_BOOL(false);
	SpinLockAcquire(&Worker->mutex);
	if (Worker->pid != 0 && Worker->latch != NULL)
	{
		Worker->run_now = true;
		SetLatch(Worker->latch);
		woken = true;
	}
	SpinLockRelease(&Worker->mutex);
	PG_RETURN_BOOL(woken);
}

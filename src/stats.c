/*-------------------------------------------------------------------------
 *
 * stats.c
 *	  Shared-memory counters and the SQL function behind payments.stats.
 *
 * The counters are an array of 64-bit atomics in one shared-memory struct,
 * so counting never takes a lock.  They start at zero at server start and
 * are not persisted: the view answers "what happened since the server
 * started", like pg_stat_database.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "fmgr.h"
#include "funcapi.h"
#include "miscadmin.h"
#include "port/atomics.h"
#include "storage/ipc.h"
#include "storage/lwlock.h"
#include "storage/shmem.h"
#include "utils/builtins.h"

#include "payments.h"
#include "stats.h"

typedef struct PaymentsStatsShared
{
	pg_atomic_uint64 counters[PM_STAT_COUNT];
} PaymentsStatsShared;

#define PAYMENTS_COUNTER_NAME(id, name) [id] = name,
static const char *const CounterNames[PM_STAT_COUNT] = {
	PAYMENTS_COUNTERS(PAYMENTS_COUNTER_NAME)
};
#undef PAYMENTS_COUNTER_NAME

/* Set in every backend that attached the struct; NULL when not preloaded. */
static PaymentsStatsShared *StatsShared = NULL;

/*
 * PaymentsStatsShmemSize - shared memory the counters need.
 */
static Size
PaymentsStatsShmemSize(void)
{
	return MAXALIGN(sizeof(PaymentsStatsShared));
}

/*
 * PaymentsStatsShmemInit - create or attach the counters; call with
 * AddinShmemInitLock held, from the shmem_startup_hook.
 */
static void
PaymentsStatsShmemInit(void)
{
	bool		found;

	StatsShared = ShmemInitStruct("payments stats", PaymentsStatsShmemSize(),
								  &found);
	if (!found)
	{
		for (int i = 0; i < PM_STAT_COUNT; i++)
			pg_atomic_init_u64(&StatsShared->counters[i], 0);
	}
}

const PaymentsModule PaymentsStatsModule = {
	.name = "stats",
	.shmem_size = PaymentsStatsShmemSize,
	.shmem_init = PaymentsStatsShmemInit,
};

/*
 * payments_count - add n to a counter; a no-op without shared memory, and
 * in the postmaster itself, which never writes to shared memory (the log
 * scrubber runs there too).
 */
void
payments_count(PaymentsCounter counter, uint64 n)
{
	if (StatsShared != NULL && IsUnderPostmaster)
		pg_atomic_fetch_add_u64(&StatsShared->counters[counter], n);
}

PG_FUNCTION_INFO_V1(payments_preloaded);

/*
 * payments_preloaded - whether this server loaded the library at start, i.e.
 * whether the shared-memory parts of the extension are on.
 */
Datum
payments_preloaded(PG_FUNCTION_ARGS)
{
	PG_RETURN_BOOL(StatsShared != NULL);
}

PG_FUNCTION_INFO_V1(payments_stats);

/*
 * payments_stats - (name, value) for every counter; no rows when the
 * library was not preloaded, because then nothing was counted.
 */
Datum
payments_stats(PG_FUNCTION_ARGS)
{
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;

	InitMaterializedSRF(fcinfo, 0);
	if (StatsShared == NULL)
		return (Datum) 0;

	for (int i = 0; i < PM_STAT_COUNT; i++)
	{
		Datum		values[2];
		bool		nulls[2] = {false};

		values[0] = CStringGetTextDatum(CounterNames[i]);
		values[1] = Int64GetDatum((int64)
								  pg_atomic_read_u64(&StatsShared->counters[i]));
		tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, values, nulls);
	}
	return (Datum) 0;
}

/*-------------------------------------------------------------------------
 *
 * reconcile.h
 *	  Ledger reconciliation: one run, for the SQL function and the worker.
 *
 *-------------------------------------------------------------------------
 */
#ifndef PAYMENTS_RECONCILE_H
#define PAYMENTS_RECONCILE_H

#include "datatype/timestamp.h"
#include "utils/numeric.h"

/* Who asked for a run, as payments.reconciliation_runs records it. */
typedef enum ReconcileTrigger
{
	RECONCILE_MANUAL,
	RECONCILE_WORKER
} ReconcileTrigger;

extern int64 reconcile_run(TimestampTz window_start, TimestampTz window_end,
						   Oid internal, Oid gateway, Numeric tolerance,
						   ReconcileTrigger trigger);

#endif							/* PAYMENTS_RECONCILE_H */

/*-------------------------------------------------------------------------
 *
 * stats.h
 *	  Shared-memory counters behind the view payments.stats.
 *
 * Each entry of PAYMENTS_COUNTERS is one monotonically increasing counter
 * that lives in shared memory from server start (so it needs the library in
 * shared_preload_libraries); without preloading, counting is a no-op and the
 * view has no rows.  A module adds its counters here and calls
 * payments_count() where the event happens.
 *
 *-------------------------------------------------------------------------
 */
#ifndef PAYMENTS_STATS_H
#define PAYMENTS_STATS_H

/*	  X(id, name) */
#define PAYMENTS_COUNTERS(X) \
	X(PM_STAT_IDEMPOTENCY_STARTED, "idempotency_started") \
	X(PM_STAT_IDEMPOTENCY_REPLAYED, "idempotency_replayed") \
	X(PM_STAT_IDEMPOTENCY_CONFLICTED, "idempotency_conflicted") \
	X(PM_STAT_IDEMPOTENCY_IN_FLIGHT_REFUSED, "idempotency_in_flight_refused") \
	X(PM_STAT_IDEMPOTENCY_RESUMED, "idempotency_resumed") \
	X(PM_STAT_WEBHOOK_ACCEPTED, "webhook_accepted") \
	X(PM_STAT_WEBHOOK_DUPLICATE, "webhook_duplicate") \
	X(PM_STAT_WEBHOOK_REJECTED_MISSING_HEADER, "webhook_rejected_missing_header") \
	X(PM_STAT_WEBHOOK_REJECTED_MALFORMED_HEADER, "webhook_rejected_malformed_header") \
	X(PM_STAT_WEBHOOK_REJECTED_NO_MATCHING_SIGNATURE, "webhook_rejected_no_matching_signature") \
	X(PM_STAT_WEBHOOK_REJECTED_TIMESTAMP_TOO_OLD, "webhook_rejected_timestamp_too_old") \
	X(PM_STAT_WEBHOOK_REJECTED_TIMESTAMP_IN_FUTURE, "webhook_rejected_timestamp_in_future") \
	X(PM_STAT_WEBHOOK_REJECTED_NO_SECRET, "webhook_rejected_no_secret") \
	X(PM_STAT_REDACT_PANS_MASKED, "redact_pans_masked") \
	X(PM_STAT_FRAUD_APPROVE, "fraud_approve") \
	X(PM_STAT_FRAUD_REVIEW, "fraud_review") \
	X(PM_STAT_FRAUD_CHALLENGE, "fraud_challenge") \
	X(PM_STAT_FRAUD_BLOCK, "fraud_block") \
	X(PM_STAT_FRAUD_RULE_ERRORS, "fraud_rule_errors") \
	X(PM_STAT_RECONCILE_RUNS, "reconcile_runs") \
	X(PM_STAT_RECONCILE_DISCREPANCIES, "reconcile_discrepancies") \
	X(PM_STAT_SAGA_STARTED, "saga_started") \
	X(PM_STAT_SAGA_COMPLETED, "saga_completed") \
	X(PM_STAT_SAGA_COMPENSATED, "saga_compensated") \
	X(PM_STAT_SAGA_FAILED_COMPENSATION, "saga_failed_compensation")

#define PAYMENTS_COUNTER_ENUM(id, name) id,
typedef enum PaymentsCounter
{
	PAYMENTS_COUNTERS(PAYMENTS_COUNTER_ENUM)
	PM_STAT_COUNT
} PaymentsCounter;
#undef PAYMENTS_COUNTER_ENUM

extern void payments_count(PaymentsCounter counter, uint64 n);

#endif							/* PAYMENTS_STATS_H */

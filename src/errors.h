/*-------------------------------------------------------------------------
 *
 * errors.h
 *	  The payments error catalog: every SQLSTATE of class PM, defined once.
 *
 * Each entry of PAYMENTS_ERRORS names a code, its catalog name, whether a
 * client may retry the same request, the HTTP status an API would answer and
 * what it means.  The list expands into an enum used with payments_errcode()
 * in ereport() calls and into the rows of the view payments.error_codes, so
 * the C code and the SQL catalog cannot drift apart.
 *
 *-------------------------------------------------------------------------
 */
#ifndef PAYMENTS_ERRORS_H
#define PAYMENTS_ERRORS_H

#include "datatype/timestamp.h"
#include "fmgr.h"

/*	  X(id, sqlstate, name, retriable, http_status, meaning) */
#define PAYMENTS_ERRORS(X) \
	X(PM_IDEMPOTENCY_CONFLICT, "PM001", "idempotency_conflict", false, 422, \
	  "the idempotency key was already used with a different request") \
	X(PM_IDEMPOTENCY_IN_FLIGHT, "PM002", "idempotency_in_flight", true, 409, \
	  "a request with this idempotency key is still executing") \
	X(PM_IDEMPOTENCY_INVALID_STATE, "PM003", "idempotency_invalid_state", false, 409, \
	  "checkpoint, complete or fail of a key that is not in flight") \
	X(PM_WEBHOOK_UNKNOWN_ENDPOINT, "PM010", "webhook_unknown_endpoint", false, 404, \
	  "no webhook endpoint of that name is configured in payments.webhook_endpoints") \
	X(PM_SAGA_INVALID_TRANSITION, "PM030", "saga_invalid_transition", false, 409, \
	  "the saga step or outcome is not allowed in the saga's current state") \
	X(PM_SAGA_CONFLICT, "PM031", "saga_conflict", false, 422, \
	  "a saga with this id already exists with another name or other steps") \
	X(PM_SAGA_NOT_FOUND, "PM032", "saga_not_found", false, 404, \
	  "no saga with this id exists")

#define PAYMENTS_ERROR_ENUM(id, sqlstate, name, retriable, http, meaning) id,
typedef enum PaymentsErrorId
{
	PAYMENTS_ERRORS(PAYMENTS_ERROR_ENUM)
	PM_ERROR_COUNT
} PaymentsErrorId;
#undef PAYMENTS_ERROR_ENUM

/* One catalog row. */
typedef struct PaymentsError
{
	const char *sqlstate;
	const char *name;
	bool		retriable;
	int			http_status;
	const char *meaning;
} PaymentsError;

extern const PaymentsError PaymentsErrors[PM_ERROR_COUNT];

extern int	payments_errcode(PaymentsErrorId id);
extern void payments_require_args(FunctionCallInfo fcinfo, int n,
								  const char *const *names);
extern Interval *payments_interval_arg(FunctionCallInfo fcinfo, int n,
										const char *name);

#endif							/* PAYMENTS_ERRORS_H */

/*-------------------------------------------------------------------------
 *
 * errors.c
 *	  The PM error catalog: raising its codes and listing it in SQL.
 *
 * Every error a user can cause in this extension is raised with
 *		ereport(ERROR, payments_errcode(PM_...), errmsg(...), ...)
 * so that the SQLSTATE comes from the one list in errors.h, and the same
 * list backs the view payments.error_codes that applications read to map a
 * SQLSTATE to retry behaviour and an HTTP status.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "fmgr.h"
#include "funcapi.h"
#include "utils/builtins.h"
#include "utils/timestamp.h"

#include "errors.h"

#define PAYMENTS_ERROR_ROW(id, sqlstate, name, retriable, http, meaning) \
	[id] = {sqlstate, name, retriable, http, meaning},
const PaymentsError PaymentsErrors[PM_ERROR_COUNT] = {
	PAYMENTS_ERRORS(PAYMENTS_ERROR_ROW)
};
#undef PAYMENTS_ERROR_ROW

/*
 * payments_errcode - errcode() for a catalog entry, for use inside ereport().
 */
int
payments_errcode(PaymentsErrorId id)
{
	const char *s = PaymentsErrors[id].sqlstate;

	return errcode(MAKE_SQLSTATE(s[0], s[1], s[2], s[3], s[4]));
}

/*
 * payments_require_args - ERROR 22023 naming the first of the first n
 * arguments that is NULL (a NULL name: that argument may be NULL).
 */
void
payments_require_args(FunctionCallInfo fcinfo, int n, const char *const *names)
{
	for (int i = 0; i < n; i++)
	{
		if (names[i] != NULL && PG_ARGISNULL(i))
			ereport(ERROR,
					errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					errmsg("%s must not be NULL", names[i]));
	}
}

PG_FUNCTION_INFO_V1(payments_error_codes);

/*
 * payments_error_codes - the catalog as rows, behind payments.error_codes.
 */
Datum
payments_error_codes(PG_FUNCTION_ARGS)
{
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;

	InitMaterializedSRF(fcinfo, 0);
	for (int i = 0; i < PM_ERROR_COUNT; i++)
	{
		const PaymentsError *e = &PaymentsErrors[i];
		Datum		values[5];
		bool		nulls[5] = {false};

		values[0] = CStringGetTextDatum(e->sqlstate);
		values[1] = CStringGetTextDatum(e->name);
		values[2] = BoolGetDatum(e->retriable);
		values[3] = Int32GetDatum(e->http_status);
		values[4] = CStringGetTextDatum(e->meaning);
		tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, values, nulls);
	}
	return (Datum) 0;
}

/*
 * payments_interval_arg - argument n as an interval, ERROR 22023 naming it
 * when any of its fields is negative.
 */
Interval *
payments_interval_arg(FunctionCallInfo fcinfo, int n, const char *name)
{
	Interval   *v = PG_GETARG_INTERVAL_P(n);

	if (v->month < 0 || v->day < 0 || v->time < 0)
		ereport(ERROR,
				errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				errmsg("%s must not be negative", name));
	return v;
}

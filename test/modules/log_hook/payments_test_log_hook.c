/*-------------------------------------------------------------------------
 *
 * payments_test_log_hook.c
 *	  A test-only library for the tests of the server-log scrubber.
 *
 * It installs an emit_log_hook, for test/t/050_log_hook_order.pl: loaded
 * after payments, its hook runs before the scrubber, which payments must
 * detect and warn about.  And it has a SQL-callable function that raises
 * an error inside a critical section, for test/t/060_log_panic.pl: the
 * error becomes a PANIC, and the scrubber must mask it without allocating
 * where a critical section forbids it.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "fmgr.h"
#include "miscadmin.h"
#include "utils/builtins.h"
#include "utils/elog.h"

PG_MODULE_MAGIC;

void		_PG_init(void);

static emit_log_hook_type prev_emit_log_hook = NULL;

/*
 * TestLogHook - pass every message on unchanged.
 */
static void
TestLogHook(ErrorData *edata)
{
	if (prev_emit_log_hook)
		prev_emit_log_hook(edata);
}

/*
 * _PG_init - install the hook, whether preloaded or loaded by LOAD.
 */
void
_PG_init(void)
{
	prev_emit_log_hook = emit_log_hook;
	emit_log_hook = TestLogHook;
}

PG_FUNCTION_INFO_V1(payments_test_panic);

/*
 * payments_test_panic - raise the given text as an error inside a critical
 * section, which PostgreSQL turns into a PANIC: the server restarts.
 */
Datum
payments_test_panic(PG_FUNCTION_ARGS)
{
	char	   *msg = text_to_cstring(PG_GETARG_TEXT_PP(0));

	START_CRIT_SECTION();
	elog(ERROR, "%s", msg);
	END_CRIT_SECTION();
	PG_RETURN_VOID();
}

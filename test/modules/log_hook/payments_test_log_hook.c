/*-------------------------------------------------------------------------
 *
 * payments_test_log_hook.c
 *	  A test-only library that installs an emit_log_hook, for
 *	  test/t/050_log_hook_order.pl: loaded after payments, its hook runs
 *	  before the scrubber, which payments must detect and warn about.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "fmgr.h"
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

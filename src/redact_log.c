/*-------------------------------------------------------------------------
 *
 * redact_log.c
 *	  The server-log scrubber: an emit_log_hook that masks card data.
 *
 * With shared_preload_libraries = 'payments', every message bound for the
 * server log has its message, detail, hint, context and internal query
 * scrubbed by the scanner of redact_scan.c (and, in a node tree dump of
 * debug_print_*, the bytes of every constant masked), card data in
 * application_name masked where it is kept (every log destination may
 * print it), and webhook secrets masked in
 * place (RedactSecrets: secret-shaped tokens, and the literals of the
 * statements that manage secrets), before the hooks installed
 * before ours, the log and the client see it.  The logged statement is
 * not part of the message: PostgreSQL prints debug_query_string.  When
 * that holds card data, the hook points debug_query_string at a scrubbed
 * copy, writes the message to the server log itself (EmitErrorReport with
 * no hook and no client output), and points it back at once; PostgreSQL
 * then sends the client its copy as usual.  So current_query() and every
 * other reader of debug_query_string see the original text, whatever was
 * logged.
 *
 * The hook runs while an error is being reported, possibly in a critical
 * section on the way to a PANIC, and in the postmaster.  Its rules:
 *	- it never throws: memory is asked for without raising an error, and a
 *	  field that cannot be scrubbed is dropped, never written unscrubbed;
 *	- it never reads the catalog: only GUC variables and the encoding;
 *	- it allocates only in the current context, which during
 *	  EmitErrorReport is ErrorContext, allowed in critical sections, and
 *	  frees the statement copy before it returns;
 *	- it counts masked PANs only in postmaster children (payments_count);
 *	- it leaves debug_query_string and emit_log_hook as it found them.
 *
 * Hook order: a library listed after payments in shared_preload_libraries
 * installs its emit_log_hook later, so it runs first and sees raw card
 * numbers.  The postmaster warns about that once at start, and a backend
 * that meets a hook installed later (LOAD, session_preload_libraries)
 * warns once at the end of its next transaction.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include <limits.h>

#include "access/xact.h"
#include "common/hashfn.h"
#include "miscadmin.h"
#include "utils/backend_status.h"
#include "tcop/tcopprot.h"
#include "utils/elog.h"
#include "utils/guc.h"
#include "utils/memutils.h"

#include "payments.h"
#include "redact.h"
#include "stats.h"

bool		payments_redact_server_log = true;

static emit_log_hook_type prev_emit_log_hook = NULL;

/* Whether this process runs the hook (set when preloaded). */
static bool RedactLogInstalled = false;

/*
 * The outermost emit_log_hook when the postmaster checked the order (it
 * warned about it then), and whether this process has warned since.
 */
static emit_log_hook_type RedactHookAtStart = NULL;
static bool RedactOrderWarned = false;
static bool RedactOrderPending = false;

/* The last statement found clean: its address, length and hash. */
static const char *RedactCleanStmt = NULL;
static size_t RedactCleanLen = 0;
static uint64 RedactCleanHash = 0;

static void RedactEmitLog(ErrorData *edata);

/*
 * RedactShowServerLog - SHOW payments.redact_server_log: "on" only when
 * this process really scrubs, so that the setting cannot claim protection
 * the server does not give when the library is not preloaded.
 */
static const char *
RedactShowServerLog(void)
{
	return RedactLogInstalled && payments_redact_server_log ? "on" : "off";
}

/*
 * RedactLogDefineGucs - payments.redact_server_log.
 */
static void
RedactLogDefineGucs(void)
{
	DefineCustomBoolVariable("payments.redact_server_log",
							 "Scrubs card data from every server log message.",
							 "Needs shared_preload_libraries = 'payments'; shows off without it.",
							 &payments_redact_server_log, true,
							 PGC_SUSET, 0, NULL, NULL, RedactShowServerLog);
}

/*
 * RedactOrderWarn - transaction callback: the deferred warning of a
 * backend that met an emit_log_hook installed after ours.  It runs in
 * ordinary code, where a warning may be raised, unlike the hook.
 */
static void
RedactOrderWarn(XactEvent event, void *arg)
{
	if (!RedactOrderPending ||
		(event != XACT_EVENT_PRE_COMMIT && event != XACT_EVENT_ABORT))
		return;
	RedactOrderPending = false;
	ereport(WARNING,
			errmsg("a library loaded after payments hooks the server log before the card-data scrubber"),
			errdetail("That library sees log messages before card numbers are masked."),
			errhint("Load payments after it: list payments last in shared_preload_libraries."));
}

/*
 * RedactLogPreload - install the hook; only under shared_preload_libraries.
 */
static void
RedactLogPreload(void)
{
	prev_emit_log_hook = emit_log_hook;
	emit_log_hook = RedactEmitLog;
	RedactLogInstalled = true;
	RegisterXactCallback(RedactOrderWarn, NULL);
}

/*
 * RedactLogPreloadDone - in the postmaster, once every preloaded library
 * is in: warn if a later one put its emit_log_hook in front of ours.
 */
static void
RedactLogPreloadDone(void)
{
	RedactHookAtStart = emit_log_hook;
	if (emit_log_hook == RedactEmitLog)
		return;
	ereport(WARNING,
			errmsg("a library listed after payments in shared_preload_libraries hooks the server log before the card-data scrubber"),
			errdetail("That library sees log messages before card numbers are masked."),
			errhint("List payments last in shared_preload_libraries."));
}

const PaymentsModule PaymentsRedactLogModule = {
	.name = "redact_log",
	.define_gucs = RedactLogDefineGucs,
	.preload = RedactLogPreload,
	.preload_done = RedactLogPreloadDone,
};

/*
 * Webhook secrets: where a logged text may carry one as a quoted literal
 * (a call of the secret functions, a statement on the secrets table), and
 * the prefixes of the secrets' own shapes (Stripe and Standard Webhooks'
 * whsec_, Shopify's shpss_).  GitHub's and Slack's secrets have no shape
 * of their own; the literal rule covers them where they are managed.
 */
static const char *const RedactSecretPlaces[] = {
	"webhook_secret_add", "webhook_secret_rotate", "webhook_secrets"
};
static const char *const RedactSecretPrefixes[] = {"whsec_", "shpss_"};

/* Shortest run after a prefix that is taken for a secret. */
#define REDACT_SECRET_MIN 8

/*
 * RedactIsSecretChar - whether c can be part of a secret after its prefix
 * (base64, base64url, hex).
 */
static bool
RedactIsSecretChar(char c)
{
	return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') ||
		(c >= '0' && c <= '9') || c == '+' || c == '/' || c == '=' ||
		c == '_' || c == '-';
}

/*
 * RedactMaskLiterals - from s (where a secret place was named) to the end
 * of its statement, mask the contents of every quoted literal (only say
 * whether there is any, without apply); the length does not change.
 */
static bool
RedactMaskLiterals(char *s, const char *end, bool apply)
{
	bool		in_literal = false;
	bool		changed = false;

	for (; s < end && (in_literal || *s != ';'); s++)
	{
		if (*s == '\'')
		{
			/* a doubled quote inside a literal is part of it */
			if (in_literal && s + 1 < end && s[1] == '\'')
			{
				if (apply)
					s[0] = s[1] = '*';
				s++;
				changed = true;
				continue;
			}
			in_literal = !in_literal;
		}
		else if (in_literal)
		{
			if (apply)
				*s = '*';
			changed = true;
		}
	}
	return changed;
}

/*
 * RedactSecrets - mask webhook secrets in a NUL-terminated text, in place:
 * what follows a secret prefix, and the literals after a secret place.
 * Whether there was anything to mask (without apply, only that).
 */
static bool
RedactSecrets(char *text, bool apply)
{
	char	   *end = text + strlen(text);
	bool		changed = false;

	for (int i = 0; i < (int) lengthof(RedactSecretPrefixes); i++)
	{
		size_t		plen = strlen(RedactSecretPrefixes[i]);

		for (char *p = strstr(text, RedactSecretPrefixes[i]); p != NULL;
			 p = strstr(p + plen, RedactSecretPrefixes[i]))
		{
			char	   *q = p + plen;

			while (q < end && RedactIsSecretChar(*q))
				q++;
			if (q - (p + plen) < REDACT_SECRET_MIN)
				continue;
			if (apply)
				memset(p + plen, '*', q - (p + plen));
			changed = true;
		}
	}
	for (int i = 0; i < (int) lengthof(RedactSecretPlaces); i++)
	{
		for (char *p = strcasestr(text, RedactSecretPlaces[i]); p != NULL;
			 p = strcasestr(p + 1, RedactSecretPlaces[i]))
			changed |= RedactMaskLiterals(p, end, apply);
	}
	return changed;
}

/*
 * RedactLogField - scrub one palloc'd message field in place of the old
 * one.  When no memory can be had for the scrubbed copy, the field is
 * dropped rather than written unscrubbed.
 */
static void
RedactLogField(char **field, const RsOptions *opt)
{
	size_t		len,
				olen,
				nspans,
				npans;
	char	   *out;

	if (*field == NULL)
		return;
	len = strlen(*field);
	olen = rs_redacted_len(*field, len, opt, &nspans, &npans);
	if (nspans == 0)
		return;
	out = AllocSizeIsValid(olen + 1) ?
		palloc_extended(olen + 1, MCXT_ALLOC_NO_OOM) : NULL;
	if (out != NULL)
	{
		rs_redact(*field, len, opt, out, &npans);
		out[olen] = '\0';
		payments_count(PM_STAT_REDACT_PANS_MASKED, npans);
	}
	pfree(*field);
	*field = out;
}

/*
 * RedactNodeDump - in a node tree dump (debug_print_parse, _rewritten,
 * _plan), mask in place the bytes of every constant's value, which spell
 * it out (":constvalue 20 [ 80 0 0 0 52 49 49 ... ]"); the dump may be
 * wrapped over several lines.
 */
static void
RedactNodeDump(char *text)
{
	static const char tag[] = ":constvalue ";

	for (char *p = strstr(text, tag); p != NULL; p = strstr(p, tag))
	{
		p += sizeof(tag) - 1;
		while ((*p >= '0' && *p <= '9') || *p == ' ' || *p == '\n')
			p++;
		if (*p != '[')
			continue;
		for (; *p != '\0' && *p != ']'; p++)
		{
			if (*p >= '0' && *p <= '9')
				*p = '*';
		}
	}
}

/*
 * RedactNameInPlace - mask card data in a NUL-terminated name in place
 * (digits become '*', as the trigger masks); whether it changed.
 */
static bool
RedactNameInPlace(char *name, const RsOptions *opt)
{
	RsOptions	keep = *opt;
	size_t		len,
				olen,
				nspans,
				npans;
	char	   *out;

	if (name == NULL)
		return false;
	keep.keep_length = true;
	len = strlen(name);
	olen = rs_redacted_len(name, len, &keep, &nspans, &npans);
	if (nspans == 0)
		return false;
	/* with keep_length the scrubbed text is never longer */
	out = palloc_extended(len + 1, MCXT_ALLOC_NO_OOM);
	if (out == NULL)
		memset(name, '*', len);
	else
	{
		rs_redact(name, len, &keep, out, &npans);
		memcpy(name, out, olen);
		name[olen] = '\0';
		pfree(out);
	}
	return true;
}

/*
 * RedactSessionNames - mask card data in application_name, which every log
 * destination may print beside a message (%a, a field of csvlog and
 * jsonlog) and any user may set.  It is masked where it is kept, so that
 * SHOW and pg_stat_activity show the masked name too.  (The user and
 * database names of the connection, %u and %d, are not reachable without
 * the GSSAPI headers; see the README.)
 */
static void
RedactSessionNames(const RsOptions *opt)
{
	if (RedactNameInPlace(application_name, opt) && IsUnderPostmaster)
		pgstat_report_appname(application_name);
}

/*
 * RedactLogFields - scrub every field of a message: card data, then
 * webhook secrets in place.  A row of the secrets table in a detail
 * ("Failing row contains (...)") is hidden whole.
 */
static void
RedactLogFields(ErrorData *edata, const RsOptions *opt)
{
	char	  **fields[] = {&edata->message, &edata->detail, &edata->detail_log,
	&edata->hint, &edata->context, &edata->internalquery};

	if (edata->detail != NULL)
		RedactNodeDump(edata->detail);
	for (int i = 0; i < (int) lengthof(fields); i++)
	{
		RedactLogField(fields[i], opt);
		if (*fields[i] != NULL)
			(void) RedactSecrets(*fields[i], true);
	}
	if (edata->table_name != NULL && strcmp(edata->table_name, "webhook_secrets") == 0)
	{
		for (int i = 1; i <= 2; i++)
		{
			char	   *paren = *fields[i] ? strchr(*fields[i], '(') : NULL;

			if (paren != NULL)
				memset(paren + 1, '*', strlen(paren + 1));
		}
	}
}

/*
 * RedactLogLevelOutput - elog.c's is_log_level_output: whether a message
 * of elevel is logged with the statement under log_min_error_statement.
 */
static bool
RedactLogLevelOutput(int elevel, int log_min_level)
{
	if (elevel == LOG || elevel == LOG_SERVER_ONLY)
		return log_min_level == LOG || log_min_level <= ERROR;
	if (elevel == WARNING_CLIENT_ONLY)
		return false;
	if (log_min_level == LOG)
		return elevel >= FATAL;
	return elevel >= log_min_level;
}

/*
 * RedactStatementCopy - the scrubbed copy of the statement this message
 * will print, in the current context; NULL when none is printed or it is
 * clean (remembered, so the next message of the statement skips the
 * scan).  Sets *hide when it needs scrubbing but no memory can be had.
 */
static char *
RedactStatementCopy(ErrorData *edata, const RsOptions *opt, bool *hide)
{
	const char *stmt = debug_query_string;
	size_t		len,
				olen,
				nspans,
				npans;
	uint64		hash;
	char	   *out;

	*hide = false;
	if (stmt == NULL || edata->hide_stmt ||
		!RedactLogLevelOutput(edata->elevel, log_min_error_statement))
		return NULL;
	len = strlen(stmt);
	hash = hash_bytes_extended((const unsigned char *) stmt, (int) Min(len, INT_MAX), 0);
	if (stmt == RedactCleanStmt && len == RedactCleanLen && hash == RedactCleanHash)
		return NULL;
	olen = rs_redacted_len(stmt, len, opt, &nspans, &npans);
	if (nspans == 0 && !RedactSecrets((char *) stmt, false))
	{
		RedactCleanStmt = stmt;
		RedactCleanLen = len;
		RedactCleanHash = hash;
		return NULL;
	}
	out = AllocSizeIsValid(olen + 1) ?
		palloc_extended(olen + 1, MCXT_ALLOC_NO_OOM) : NULL;
	*hide = out == NULL;
	if (out == NULL)
		return NULL;
	if (nspans > 0)
		rs_redact(stmt, len, opt, out, &npans);
	else
		memcpy(out, stmt, len);
	out[olen] = '\0';
	(void) RedactSecrets(out, true);
	return out;
}

/*
 * RedactEmitScrubbed - write the message to the server log with the
 * scrubbed statement in debug_query_string, then put everything back.
 * PostgreSQL sends the client its copy afterwards: the client's message
 * has no statement, and sending it from here would be one level deeper
 * in elog.c's recursion guard, which degrades non-ASCII text.
 */
static void
RedactEmitScrubbed(ErrorData *edata, char *scrubbed)
{
	const char *saved_stmt = debug_query_string;
	emit_log_hook_type saved_hook = emit_log_hook;
	bool		to_client = edata->output_to_client;

	debug_query_string = scrubbed;
	PG_TRY();
	{
		if (prev_emit_log_hook)
			prev_emit_log_hook(edata);
		if (edata->output_to_server)
		{
			emit_log_hook = NULL;
			edata->output_to_client = false;
			EmitErrorReport();
			edata->output_to_server = false;
		}
	}
	PG_FINALLY();
	{
		debug_query_string = saved_stmt;
		emit_log_hook = saved_hook;
		edata->output_to_client = to_client;
	}
	PG_END_TRY();
	pfree(scrubbed);
}

/*
 * RedactNoteHookOrder - remember to warn (once, outside the hook) when an
 * emit_log_hook was installed in front of ours after the postmaster's
 * check.
 */
static void
RedactNoteHookOrder(void)
{
	if (RedactOrderWarned || emit_log_hook == RedactEmitLog ||
		emit_log_hook == RedactHookAtStart || !IsUnderPostmaster)
		return;
	RedactOrderWarned = true;
	RedactOrderPending = true;
}

/*
 * RedactEmitLog - emit_log_hook: scrub the message before anyone (the
 * hooks installed before ours, the server log, the client) sees it.
 */
static void
RedactEmitLog(ErrorData *edata)
{
	RsOptions	opt;
	char	   *scrubbed = NULL;
	bool		hide;

	RedactNoteHookOrder();
	if (payments_redact_server_log)
	{
		redact_scan_options(&opt, false);
		RedactSessionNames(&opt);
		RedactLogFields(edata, &opt);
		scrubbed = RedactStatementCopy(edata, &opt, &hide);
		if (hide)
			edata->hide_stmt = true;
	}
	if (scrubbed != NULL)
		RedactEmitScrubbed(edata, scrubbed);
	else if (prev_emit_log_hook)
		prev_emit_log_hook(edata);
}

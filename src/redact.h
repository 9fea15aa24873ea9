/*-------------------------------------------------------------------------
 *
 * redact.h
 *	  PCI redaction: what the SQL functions (redact.c) and the server-log
 *	  scrubber (redact_log.c) share.
 *
 *-------------------------------------------------------------------------
 */
#ifndef PAYMENTS_REDACT_H
#define PAYMENTS_REDACT_H

#include "utils/jsonb.h"

#include "redact_scan.h"

/* payments.pan_mask: a RsMaskStyle. */
extern int	payments_pan_mask;

/* payments.redact_server_log. */
extern bool payments_redact_server_log;

extern void redact_scan_options(RsOptions *opt, bool keep_length);
extern Jsonb *redact_jsonb(Jsonb *jb);

#endif							/* PAYMENTS_REDACT_H */

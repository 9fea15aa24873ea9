/*-------------------------------------------------------------------------
 *
 * redact.h
 *	  PCI redaction: SQL functions, the row trigger and the log scrubber.
 *
 *-------------------------------------------------------------------------
 */
#ifndef PAYMENTS_REDACT_H
#define PAYMENTS_REDACT_H

/* payments.pan_mask: a RsMaskStyle. */
extern int	payments_pan_mask;

/* payments.redact_server_log. */
extern bool payments_redact_server_log;

extern void PaymentsRedactInit(void);

#endif							/* PAYMENTS_REDACT_H */

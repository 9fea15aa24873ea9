/*-------------------------------------------------------------------------
 *
 * webhook.h
 *	  Webhook signature verification, deduplicating inbox and purge.
 *
 *-------------------------------------------------------------------------
 */
#ifndef PAYMENTS_WEBHOOK_H
#define PAYMENTS_WEBHOOK_H

/* payments.webhook_retention, in seconds. */
extern int	payments_webhook_retention;

#endif							/* PAYMENTS_WEBHOOK_H */

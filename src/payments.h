/*-------------------------------------------------------------------------
 *
 * payments.h
 *	  Names shared by every module of the payments extension.
 *
 *-------------------------------------------------------------------------
 */
#ifndef PAYMENTS_H
#define PAYMENTS_H

/* The schema that owns every object of the extension. */
#define PAYMENTS_SCHEMA "payments"

#endif							/* PAYMENTS_H */

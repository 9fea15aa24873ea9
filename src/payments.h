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

/* The hint given where something needs the library preloaded. */
#define PAYMENTS_PRELOAD_HINT \
	"Add payments to shared_preload_libraries in postgresql.conf and restart the server."

#endif							/* PAYMENTS_H */

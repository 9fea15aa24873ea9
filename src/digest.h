/*-------------------------------------------------------------------------
 *
 * digest.h
 *	  SHA-256 through OpenSSL, shared by the modules that hash.
 *
 *-------------------------------------------------------------------------
 */
#ifndef PAYMENTS_DIGEST_H
#define PAYMENTS_DIGEST_H

#define PAYMENTS_SHA256_LEN 32

extern void payments_sha256(const void *data, size_t len, uint8 *out);

#endif							/* PAYMENTS_DIGEST_H */

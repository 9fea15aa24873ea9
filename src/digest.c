/*-------------------------------------------------------------------------
 *
 * digest.c
 *	  SHA-256 through OpenSSL, shared by the modules that hash.
 *
 * The idempotency fingerprint and the webhook body digest both hash small
 * inputs on hot paths.  OpenSSL 3 looks the algorithm up on every implicit
 * fetch, which is most of the cost of a small hash, so the algorithm and a
 * digest context are fetched once per backend and reused.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include <openssl/evp.h>

#include "digest.h"

/*
 * payments_sha256 - SHA-256 of data[0..len) into out (32 bytes).
 */
void
payments_sha256(const void *data, size_t len, uint8 *out)
{
	static EVP_MD *sha256 = NULL;
	static EVP_MD_CTX *ctx = NULL;
	unsigned int outlen = 0;

	if (sha256 == NULL)
		sha256 = EVP_MD_fetch(NULL, "SHA256", NULL);
	if (ctx == NULL)
		ctx = EVP_MD_CTX_new();
	if (sha256 == NULL || ctx == NULL ||
		EVP_DigestInit_ex(ctx, sha256, NULL) != 1 ||
		EVP_DigestUpdate(ctx, data, len) != 1 ||
		EVP_DigestFinal_ex(ctx, out, &outlen) != 1 ||
		outlen != PAYMENTS_SHA256_LEN)
		elog(ERROR, "OpenSSL SHA-256 failed");
}

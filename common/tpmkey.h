/* Pure helpers between TPM wire structures (tss2-mu) and OpenSSL keys. No TPM
 * is opened here: both the agent and the verifier use these. */
#ifndef DEVID_COMMON_TPMKEY_H
#define DEVID_COMMON_TPMKEY_H

#include <stddef.h>
#include <stdint.h>

#include <openssl/evp.h>
#include <tss2/tss2_tpm2_types.h>

/* Largest Name: 2-byte algorithm id plus a SHA-512 digest. */
#define TPMKEY_NAME_MAX (2 + 64)

/*
 * tpmkey_public_to_pkey sets |*out| to a new EVP_PKEY holding the public key of
 * |pub| (ECC P-256/P-384/P-521 or RSA). The caller owns |*out|. Returns 0, or
 * DEVID_ERR_BAD_REQUEST for an unsupported type or curve.
 */
int tpmkey_public_to_pkey(EVP_PKEY **out, const TPMT_PUBLIC *pub);

/*
 * tpmkey_ec_point_to_pkey sets |*out| to a new EVP_PKEY of the EC public key
 * |point| (|len| bytes, SEC 1 encoded, either form) on curve |group| (an
 * OpenSSL group name). OpenSSL checks that the point is on the curve.
 * Returns 0, DEVID_ERR_BAD_REQUEST when it is not a key on that curve, or
 * DEVID_ERR_ALLOC.
 */
int tpmkey_ec_point_to_pkey(EVP_PKEY **out, const char *group, const uint8_t *point, size_t len);

/*
 * tpmkey_unmarshal_public parses a TPMT_PUBLIC from exactly |len| bytes at
 * |buf| into |*pub|. Trailing bytes are an error. Returns 0 or
 * DEVID_ERR_BAD_REQUEST.
 */
int tpmkey_unmarshal_public(TPMT_PUBLIC *pub, const uint8_t *buf, size_t len);

/*
 * tpmkey_unmarshal_signature parses a TPMT_SIGNATURE from exactly |len| bytes
 * at |buf|. Returns 0 or DEVID_ERR_BAD_REQUEST.
 */
int tpmkey_unmarshal_signature(TPMT_SIGNATURE *sig, const uint8_t *buf, size_t len);

/*
 * tpmkey_signature_to_der sets |*out| to a newly allocated (OPENSSL_malloc)
 * signature in the form OpenSSL verifies: DER ECDSA-Sig-Value for ECDSA, the
 * raw signature for RSASSA and RSAPSS. |*out_len| receives its length. Returns
 * 0 or DEVID_ERR_BAD_REQUEST for an unsupported scheme.
 */
int tpmkey_signature_to_der(uint8_t **out, size_t *out_len, const TPMT_SIGNATURE *sig);

/*
 * tpmkey_verify_digest checks |sig| over |digest| (already hashed with the
 * signature's hash algorithm) with |pkey|. Returns 0 when it verifies,
 * DEVID_ERR_CRYPTO when it does not or the scheme does not fit the key.
 */
int tpmkey_verify_digest(EVP_PKEY *pkey, const TPMT_SIGNATURE *sig, const uint8_t *digest,
                         size_t digest_len);

/*
 * tpmkey_name_from_bytes computes the TPM Name of a marshalled TPMT_PUBLIC:
 * nameAlg (big-endian) || H_nameAlg(|pub_bytes|), over the bytes as given.
 * Writes up to TPMKEY_NAME_MAX bytes to |out| and the length to |*out_len|.
 * Returns 0 or DEVID_ERR_BAD_REQUEST for a malformed or unsupported nameAlg.
 */
int tpmkey_name_from_bytes(uint8_t *out, size_t *out_len, const uint8_t *pub_bytes, size_t pub_len);

/* tpmkey_signature_hash returns the hash algorithm named inside |sig|, or
 * TPM2_ALG_NULL for a scheme devid does not verify. */
TPMI_ALG_HASH tpmkey_signature_hash(const TPMT_SIGNATURE *sig);

/* tpmkey_hash_md returns the OpenSSL digest for TPM hash |alg|, or NULL. */
const EVP_MD *tpmkey_hash_md(TPMI_ALG_HASH alg);

#endif

/* Credential protection (TPM 2.0 Part 1 section 24, the software side of
 * TPM2_MakeCredential): a secret wrapped to a TPM's endorsement key and
 * bound to the Name of an object, which only a TPM holding both that EK and
 * an object of that Name recovers with TPM2_ActivateCredential. Pure: the
 * randomness is OpenSSL's, or the caller's for test vectors.
 *
 * For an EK public area |ek| (nameAlg H with digest size n, symmetric
 * AES-k-CFB), an object Name |name| and a credential |cv|:
 *   RSA EK: seed = n random bytes; encrypted secret = RSA-OAEP(H, MGF1-H,
 *     label "IDENTITY\0") of seed under the EK key.
 *   ECC EK: an ephemeral key pair (d_e, Q_e) on the EK's curve;
 *     Z = x-coordinate of d_e * Q_ek, as many bytes as the field;
 *     seed = KDFe(H, Z, "IDENTITY", Q_e.x, Q_ek.x, 8n);
 *     encrypted secret = TPMS_ECC_POINT Q_e (x and y as TPM2B, field size).
 *   symKey = KDFa(H, seed, "STORAGE", name, "", k);
 *   encIdentity = AES-k-CFB(symKey, IV = 0) of TPM2B_DIGEST cv (its 2-byte
 *     size, then cv);
 *   HMACkey = KDFa(H, seed, "INTEGRITY", "", "", 8n);
 *   outerHMAC = HMAC-H(HMACkey, encIdentity || name);
 *   TPM2B_ID_OBJECT = size || TPM2B_DIGEST outerHMAC || encIdentity;
 *   TPM2B_ENCRYPTED_SECRET = size || encrypted secret.
 * KDFa is SP 800-108 counter mode with HMAC-H (OpenSSL KBKDF: 32-bit
 * counter, label, 0x00, context, 32-bit length in bits); KDFe is the SP
 * 800-56A one-step KDF with H (OpenSSL SSKDF: 32-bit counter, Z, then
 * "IDENTITY\0" || partyUInfo || partyVInfo). */
#ifndef DEVID_VERIFIER_CORE_CREDENTIAL_H
#define DEVID_VERIFIER_CORE_CREDENTIAL_H

#include <stddef.h>
#include <stdint.h>

#include <openssl/evp.h>
#include <tss2/tss2_tpm2_types.h>

/* Largest marshalled TPM2B_ID_OBJECT and TPM2B_ENCRYPTED_SECRET. */
#define CREDENTIAL_ID_OBJECT_MAX (2 + sizeof(TPMU_ENCRYPTED_SECRET) + 64)
#define CREDENTIAL_SECRET_MAX (2 + sizeof(TPMU_ENCRYPTED_SECRET))
/* Most credential bytes (a TPM2B_DIGEST). */
#define CREDENTIAL_MAX sizeof(TPMU_HA)

/* What credential_make writes: the two TPM2B structures, marshalled with
 * their 2-byte sizes, as TPM2_ActivateCredential takes them. */
struct credential_blob {
    uint8_t id_object[CREDENTIAL_ID_OBJECT_MAX];
    size_t id_object_len;
    uint8_t secret[CREDENTIAL_SECRET_MAX];
    size_t secret_len;
};

/*
 * credential_check_ek checks that |ek| can protect a credential: an RSA
 * (2048 bits or more) or ECC (NIST P-256, P-384, P-521) key with
 * restricted, decrypt and fixedTPM, nameAlg SHA-256 or SHA-384, and an
 * AES-128/192/256 CFB symmetric definition. Returns 0 or DEVID_ERR_EK_KEY
 * with |why|.
 */
int credential_check_ek(const TPMT_PUBLIC *ek, char *why, size_t why_len);

/*
 * credential_make wraps |cv| (|cv_len| bytes, 1..the EK nameAlg's digest
 * size) to |ek| for the object Name |name| (|name_len| bytes) into |out|,
 * with fresh randomness. Returns 0, DEVID_ERR_EK_KEY for an EK
 * credential_check_ek refuses, DEVID_ERR_INVALID_ARGUMENT, or
 * DEVID_ERR_CRYPTO, with |why|.
 */
int credential_make(struct credential_blob *out, const TPMT_PUBLIC *ek, const uint8_t *name,
                    size_t name_len, const uint8_t *cv, size_t cv_len, char *why, size_t why_len);

/*
 * credential_make_with is credential_make with the caller's randomness, for
 * test vectors: |seed| (the nameAlg's digest size) for an RSA EK (OAEP
 * still draws its own), |ephemeral| (a key on the EK's curve) for an ECC
 * EK; the other is ignored and may be NULL.
 */
int credential_make_with(struct credential_blob *out, const TPMT_PUBLIC *ek, const uint8_t *name,
                         size_t name_len, const uint8_t *cv, size_t cv_len, const uint8_t *seed,
                         EVP_PKEY *ephemeral, char *why, size_t why_len);

/*
 * credential_kdfa writes |out_len| bytes of KDFa(|md|, |key|, |label|,
 * |ctx_u| || |ctx_v|) to |out| (TPM 2.0 Part 1 section 11.4.10.2; |label|
 * without its terminating NUL, which KDFa adds). Returns 0 or
 * DEVID_ERR_CRYPTO.
 */
int credential_kdfa(uint8_t *out, size_t out_len, const EVP_MD *md, const uint8_t *key,
                    size_t key_len, const char *label, const uint8_t *ctx_u, size_t ctx_u_len,
                    const uint8_t *ctx_v, size_t ctx_v_len);

/* Size of the credential the enrollment makes (credential_derive). */
#define CREDENTIAL_SECRET_LEN 32

/*
 * credential_derive writes the enrollment's credential to |out|:
 * HMAC-SHA-256(|key|, "devid/v1 credential" || |nonce| || |ek_cert_hash| ||
 * |name_hash|), each input 32 bytes, the token key and what the token seals,
 * so that any replica recomputes it at the enrollment without state.
 * Returns 0 or DEVID_ERR_CRYPTO.
 */
int credential_derive(uint8_t out[CREDENTIAL_SECRET_LEN], const uint8_t key[32],
                      const uint8_t nonce[32], const uint8_t ek_cert_hash[32],
                      const uint8_t name_hash[32]);

/*
 * credential_derive_ak writes the boot-state gate's AK credential to |out|
 * (docs/protocol.md section 6.2): HMAC-SHA-256(|key|, "devid/v1 ak
 * credential" || |nonce| || |ek_cert_hash| || |ak_name_hash|), each input 32
 * bytes; another label than credential_derive's, so that neither credential
 * answers for the other. Returns 0 or DEVID_ERR_CRYPTO.
 */
int credential_derive_ak(uint8_t out[CREDENTIAL_SECRET_LEN], const uint8_t key[32],
                         const uint8_t nonce[32], const uint8_t ek_cert_hash[32],
                         const uint8_t ak_name_hash[32]);

/* Smallest RSA AK accepted, in bits. */
#define CREDENTIAL_AK_RSA_MIN_BITS 2048

/*
 * credential_check_ak checks that |ak| is fit to sign the boot-state gate's
 * quote: restricted, sign, fixedTPM, fixedParent and sensitiveDataOrigin
 * set, decrypt clear; nameAlg SHA-256, SHA-384 or SHA-512; ECC on NIST
 * P-256, P-384 or P-521, or RSA of at least CREDENTIAL_AK_RSA_MIN_BITS whose
 * modulus is as long as keyBits says; a scheme, if any, of ECDSA, RSASSA or
 * RSAPSS. Returns 0 or DEVID_ERR_ATTEST_ATTRIBUTES with |why| naming the
 * field.
 */
int credential_check_ak(const TPMT_PUBLIC *ak, char *why, size_t why_len);

#endif

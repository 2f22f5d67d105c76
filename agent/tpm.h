/* The agent's one wrapper around tpm2-tss ESAPI. Every TSS return code is
 * logged here, naming the operation and the handle, and becomes DEVID_ERR_TPM. */
#ifndef DEVID_AGENT_TPM_H
#define DEVID_AGENT_TPM_H

#include <stddef.h>
#include <stdint.h>

#include <tss2/tss2_tpm2_types.h>

/* Largest certificate accepted from an NV index. */
#define TPM_NV_CERT_MAX 8192

struct tpm;
struct tpm_key;

/*
 * tpm_open sets |*out| to a new connection to the TPM reached by the TCTI
 * configuration string |tcti| ("device:/dev/tpmrm0", "tabrmd:bus_type=session",
 * "swtpm:host=127.0.0.1,port=2321"). It sends no command: the first use of a
 * persistent handle or NV index that finds the TPM not started
 * (TPM_RC_INITIALIZE) sends TPM2_Startup(CLEAR) and tries again. The
 * connection reads each persistent handle's and NV index's public area once
 * and keeps it until tpm_free. The caller owns |*out| and frees it with
 * tpm_free. Returns 0 or DEVID_ERR_TPM.
 */
int tpm_open(struct tpm **out, const char *tcti);

/* tpm_free closes |tpm| and its TCTI. Keys from |tpm| must be freed first.
 * tpm_free(NULL) does nothing. */
void tpm_free(struct tpm *tpm);

/*
 * tpm_nv_read sets |*out| (malloc) to the whole contents of NV index |index|,
 * read with the index's own (empty) authorization, and |*out_len| to its size:
 * 1024 bytes per TPM2_NV_Read, or half as much each time the TPM refuses that
 * size. Returns 0,
 * DEVID_ERR_NOT_FOUND when the index is undefined or empty,
 * DEVID_ERR_TOO_LARGE above TPM_NV_CERT_MAX, or DEVID_ERR_TPM.
 */
int tpm_nv_read(struct tpm *tpm, uint8_t **out, size_t *out_len, uint32_t index);

/*
 * tpm_nv_list writes the NV indices defined in |first|..|last| (inclusive),
 * ascending, to |out| (room for |max|) and sets |*n| to their count: one
 * TPM2_GetCapability(TPM_CAP_HANDLES) per TPM2_MAX_CAP_HANDLES handles.
 * Returns 0 (|*n| may be 0), DEVID_ERR_TOO_LARGE when more than |max| are
 * defined there (logged), DEVID_ERR_INVALID_ARGUMENT for a range that is not
 * NV indices in order, or DEVID_ERR_TPM.
 */
int tpm_nv_list(struct tpm *tpm, uint32_t *out, size_t max, size_t *n, uint32_t first,
                uint32_t last);

/*
 * tpm_key_persistent sets |*out| to a new key object for the persistent key at
 * |handle|, with its public area (read from the TPM on the connection's first
 * use of |handle|). Freeing it does not evict the key. Returns 0,
 * DEVID_ERR_NOT_FOUND when no key is at |handle|, or DEVID_ERR_TPM.
 */
int tpm_key_persistent(struct tpm_key **out, struct tpm *tpm, uint32_t handle);

/*
 * tpm_key_srk sets |*out| to the storage root key at persistent |handle|,
 * first creating it in the owner hierarchy (TCG ECC P-256 SRK template,
 * AES-128-CFB) and making it persistent if no object is there. Returns 0 or
 * DEVID_ERR_TPM.
 */
int tpm_key_srk(struct tpm_key **out, struct tpm *tpm, uint32_t handle);

/*
 * tpm_key_create_ldevid creates a new ECC P-256 signing key (fixedTPM,
 * fixedParent, sensitiveDataOrigin, userWithAuth, sign; not restricted, no
 * scheme, empty auth) under |parent| and loads it: one TPM2_CreateLoaded, or
 * TPM2_Create and TPM2_Load on a TPM that answers that it lacks
 * TPM2_CreateLoaded. |*out| owns the transient object, flushed by
 * tpm_key_free or tpm_key_unload. Returns 0 or DEVID_ERR_TPM.
 */
int tpm_key_create_ldevid(struct tpm_key **out, struct tpm_key *parent);

/*
 * tpm_key_create_ak creates the boot-state gate's attestation key under
 * |parent| and loads it, as tpm_key_create_ldevid does: ECC P-256,
 * ECDSA-SHA256, restricted, sign, fixedTPM, fixedParent,
 * sensitiveDataOrigin, userWithAuth, empty auth (docs/protocol.md section
 * 6.2). |*out| owns the transient object, flushed by tpm_key_free. Returns 0
 * or DEVID_ERR_TPM.
 */
int tpm_key_create_ak(struct tpm_key **out, struct tpm_key *parent);

/* tpm_key_free flushes a transient key and frees |key|; a persistent key stays
 * in the TPM. tpm_key_free(NULL) does nothing. */
void tpm_key_free(struct tpm_key *key);

/* tpm_key_unload flushes a transient key now, when it has signed all it
 * will: tpm_key_get0_public and tpm_key_get0_blob still answer, signing and
 * persisting fail. It does nothing to a persistent or NULL key. */
void tpm_key_unload(struct tpm_key *key);

/* tpm_key_get0_public returns the key's public area, owned by |key|. */
const TPMT_PUBLIC *tpm_key_get0_public(const struct tpm_key *key);

/*
 * tpm_key_get0_blob sets |*pub| and |*priv| to the TPM2B_PUBLIC and
 * TPM2B_PRIVATE of a key made by tpm_key_create_ldevid or tpm_key_load, the
 * parts of a loadable key file, borrowed from |key|. Returns 0 or
 * DEVID_ERR_INVALID_ARGUMENT for a key without a blob (a persistent key).
 */
int tpm_key_get0_blob(const struct tpm_key *key, const TPM2B_PUBLIC **pub,
                      const TPM2B_PRIVATE **priv);

/*
 * tpm_sign_sha256 signs the SHA-256 |digest| with |key| in the key's own
 * scheme, or ECDSA-SHA256 (ECC) / RSASSA-SHA256 (RSA) when it has none, and
 * writes the signature to |*sig|: the signer of the transcript and of the
 * CSR. Returns 0, DEVID_ERR_CONFIG for a key whose scheme does not use
 * SHA-256, or DEVID_ERR_TPM.
 */
int tpm_sign_sha256(struct tpm_key *key, TPMT_SIGNATURE *sig,
                    const uint8_t digest[TPM2_SHA256_DIGEST_SIZE]);

/*
 * tpm_sign_scheme signs |digest| (|digest_len| bytes, a |hash| digest) with
 * |key| in the caller's |scheme| (TPM2_ALG_ECDSA, TPM2_ALG_RSASSA or
 * TPM2_ALG_RSAPSS) and a null hashcheck ticket, and writes the signature to
 * |*sig|: the TLS client key's signer (agent/tpmprov.h), for which OpenSSL
 * picks scheme and hash. Returns 0, DEVID_ERR_INVALID_ARGUMENT for a digest
 * of the wrong size, or DEVID_ERR_TPM.
 */
int tpm_sign_scheme(struct tpm_key *key, TPMT_SIGNATURE *sig, TPMI_ALG_SIG_SCHEME scheme,
                    TPMI_ALG_HASH hash, const uint8_t *digest, size_t digest_len);

/*
 * tpm_certify runs TPM2_Certify of |object| by |signer| with |qualifying| as
 * qualifyingData. Sets |*attest| (OPENSSL_malloc) to the TPMS_ATTEST bytes as
 * the TPM returned them and |*sig| to the signature. Returns 0 or
 * DEVID_ERR_TPM.
 */
int tpm_certify(uint8_t **attest, size_t *attest_len, TPMT_SIGNATURE *sig, struct tpm_key *object,
                struct tpm_key *signer, const uint8_t *qualifying, size_t qualifying_len);

/*
 * tpm_pcr_read reads the PCRs of |mask| (bit i: PCR i, 0 to 23) in the
 * SHA-256 bank into |values| (room for |max|), ascending, and sets |*n| to
 * their count: TPM2_PCR_Read until each was returned (one command for up to
 * 8 PCRs). Returns 0, DEVID_ERR_INVALID_ARGUMENT for an empty mask or more
 * than |max| PCRs, DEVID_ERR_TPM (also for a TPM without a SHA-256 bank).
 */
int tpm_pcr_read(struct tpm *tpm, uint8_t (*values)[TPM2_SHA256_DIGEST_SIZE], size_t max, size_t *n,
                 uint32_t mask);

/*
 * tpm_quote runs TPM2_Quote of the SHA-256 PCRs of |mask| by |signer| (the
 * IAK, or the AK) with |qualifying| as qualifyingData. Sets |*attest| (OPENSSL_malloc)
 * to the TPMS_ATTEST bytes as the TPM returned them and |*sig| to the
 * signature. Returns 0 or DEVID_ERR_TPM.
 */
int tpm_quote(uint8_t **attest, size_t *attest_len, TPMT_SIGNATURE *sig, struct tpm_key *signer,
              uint32_t mask, const uint8_t *qualifying, size_t qualifying_len);

/*
 * tpm_key_persist makes the transient |key| persistent at |handle| in the
 * owner hierarchy, first evicting whatever object is there. |key| stays
 * loaded. Returns 0 or DEVID_ERR_TPM.
 */
int tpm_key_persist(struct tpm_key *key, uint32_t handle);

/*
 * tpm_key_load loads the key blob |pub| (its public area) and |priv| (a
 * marshalled TPM2B_PRIVATE) under |parent| and sets |*out| to the transient
 * object, flushed by tpm_key_free. Returns 0, DEVID_ERR_BAD_REQUEST for a
 * malformed blob, or DEVID_ERR_TPM (a blob of another TPM or another SRK).
 */
int tpm_key_load(struct tpm_key **out, struct tpm_key *parent, const TPMT_PUBLIC *pub,
                 const uint8_t *priv, size_t priv_len);

/*
 * tpm_key_create_ek sets |*out| to the EK made from |tmpl| (a TCG EK
 * template) in the endorsement hierarchy with its empty authorization: one
 * TPM2_CreatePrimary, for a TPM whose EK is not persistent. The transient
 * object is flushed by tpm_key_free. Returns 0 or DEVID_ERR_TPM.
 */
int tpm_key_create_ek(struct tpm_key **out, struct tpm *tpm, const TPMT_PUBLIC *tmpl);

/*
 * tpm_activate_credential runs TPM2_ActivateCredential with |object| (the
 * new key, password authorization) as activateHandle and |ek| as keyHandle,
 * authorized by a PolicySecret(TPM_RH_ENDORSEMENT) session unless the EK
 * has userWithAuth (then its empty password), over the marshalled
 * TPM2B_ID_OBJECT |id_object| and TPM2B_ENCRYPTED_SECRET |secret| (each with
 * its 2-byte size). Writes the recovered credential (at most |out_max|
 * bytes) to |out| and its length to |*out_len|. Returns 0,
 * DEVID_ERR_PROTOCOL for blobs that do not unmarshal exactly,
 * DEVID_ERR_TOO_LARGE, or DEVID_ERR_TPM (the TPM refused: not its EK, not
 * the Name of |object|).
 */
int tpm_activate_credential(uint8_t *out, size_t *out_len, size_t out_max, struct tpm_key *object,
                            struct tpm_key *ek, const uint8_t *id_object, size_t id_object_len,
                            const uint8_t *secret, size_t secret_len);

/*
 * tpm_last_error_transient returns non-zero when the last failure of this
 * module may go away by itself: the TPM answered RETRY, YIELDED or TESTING,
 * or the TCTI lost or could not open its connection (a resource manager or
 * simulator restarting, a device node not there yet). The agent then opens
 * the TPM again and retries, up to its deadline.
 */
int tpm_last_error_transient(void);

#endif

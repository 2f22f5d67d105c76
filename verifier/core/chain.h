/* IDevID chain validation against the manufacturer trust store. Pure: the
 * certificates, the store and |now| come in; a verdict goes out.
 *
 * The X509_verify_cert configuration, in full (chain_verify):
 * - one X509_STORE holding every manufacturer's roots (trust anchors);
 *   untrusted intermediates from the device (TLS chain, request, NV) first,
 *   then from config; the manufacturer is the one whose root the chain ends
 *   at;
 * - verification time = |now| (X509_VERIFY_PARAM_set_time), OpenSSL verify
 *   depth CHAIN_MAX_DEPTH - 2 (OpenSSL counts intermediates only: that
 *   allows CHAIN_MAX_DEPTH certificates from the leaf to the anchor), purpose
 *   "any" (the IDevID's keyUsage is checked below);
 * - X509_V_FLAG_X509_STRICT, with a verify callback that tolerates only the
 *   RFC 5280 profile findings real manufacturers are known to ship and that
 *   do not weaken path validation: missing or critical AKI/SKI, a CA
 *   basicConstraints that is not critical, a CA without keyUsage, an empty
 *   subject (802.1AR puts the identity in the SAN), and a trust anchor that
 *   is not a v3 CA (a v1 root). Every other error refuses;
 * - security level checks of OpenSSL are off (auth level 0): the algorithm
 *   rules are ours, per manufacturer (struct chain_mfr_settings), so a
 *   refusal names the rule and config can relax it;
 * - no CRL flags: revocation is checked by chain_verify itself against the
 *   manufacturer's CRLs after the path is built (see chain_revocation).
 * After X509_verify_cert: the path, leaf to anchor inclusive, may hold at
 * most the manufacturer's max_depth certificates; every CA below the anchor
 * must carry basicConstraints cA TRUE (no KU-only or Netscape legacy CAs);
 * the leaf (an IDevID or an IAK) must be an end entity: no basicConstraints
 * cA TRUE and no keyUsage keyCertSign or cRLSign; the leaf's keyUsage, when
 * present, must allow digitalSignature; a critical SAN on the
 * leaf may hold otherNames of type hardwareModuleName or permanentIdentifier
 * only; every certificate's key and every signature below the anchor must
 * meet the manufacturer's algorithm settings. Certificates are verified as
 * received (OpenSSL keeps the received TBS bytes), never re-encoded.
 */
#ifndef DEVID_VERIFIER_CORE_CHAIN_H
#define DEVID_VERIFIER_CORE_CHAIN_H

#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include <openssl/x509.h>

/* The ceiling of every chain-length limit: the most certificates of a path
 * from the leaf to its trust anchor, both counted (so at most
 * CHAIN_MAX_DEPTH - 2 intermediates between them). Also the most
 * intermediates a device may send and the longest issuing chain above the CA
 * certificate. A manufacturer's max_depth may only lower it. */
#define CHAIN_MAX_DEPTH 8
/* The default max_depth: leaf, one to three intermediates, anchor. */
#define CHAIN_DEFAULT_MAX_DEPTH 5
/* The smallest max_depth: a leaf issued by the anchor itself. */
#define CHAIN_MIN_DEPTH 2
/* Largest DER certificate accepted from a device. */
#define CHAIN_MAX_CERT_DER 65536

/*
 * chain_der_cert parses the |len| bytes at |der| as exactly one DER
 * certificate of 1..|max| bytes, as received: no trailing bytes. Returns it
 * (the caller frees it), or NULL with the OpenSSL error queue cleared.
 */
X509 *chain_der_cert(const uint8_t *der, size_t len, size_t max);
/* Most manufacturers, roots, config intermediates and CRLs one store holds. */
#define CHAIN_MAX_MANUFACTURERS 64
#define CHAIN_MAX_ROOTS 256
#define CHAIN_MAX_CONFIG_INTERMEDIATES 512
#define CHAIN_MAX_CRLS 256
#define CHAIN_NAME_MAX 128

struct chain_store;

/* What kind of certificate a store's chains end in: the leaf rules of
 * chain_rules_check_path differ. */
enum chain_leaf {
    /* An IDevID or an IAK (a signing key): keyUsage, when present, must
     * allow digitalSignature. */
    CHAIN_LEAF_IDEVID = 0,
    /* A TPM endorsement key certificate (TCG EK Credential Profile), issued
     * by a TPM vendor: a decryption key, so keyUsage, when present, must
     * allow keyEncipherment or keyAgreement; digitalSignature is not
     * required. */
    CHAIN_LEAF_EK,
};

/* How missing or stale revocation data is handled for one manufacturer. */
enum chain_revocation_mode {
    /* No CRLs configured: revocation is not checked. */
    CHAIN_REVOCATION_NONE = 0,
    /* A missing or stale CRL is recorded in the verdict; the device proceeds.
     * A stale CRL is still consulted: a serial it lists is refused. */
    CHAIN_REVOCATION_SOFT,
    /* A missing or stale CRL refuses the device. */
    CHAIN_REVOCATION_HARD,
};

/* Per-manufacturer settings. chain_mfr_settings_default gives the documented
 * defaults. */
struct chain_mfr_settings {
    /* Smallest RSA modulus accepted in the chain (default 2048). */
    unsigned min_rsa_bits;
    /* Smallest EC field accepted (default 256: P-256 and up). Ed25519 and
     * Ed448 are always accepted. */
    unsigned min_ec_bits;
    /* Whether SHA-1 signatures are accepted below the trust anchor (default
     * no). MD5 and MD2 are never accepted. */
    int allow_sha1;
    enum chain_revocation_mode revocation;
    /* Most certificates from the leaf to the trust anchor, both counted
     * (CHAIN_MIN_DEPTH..CHAIN_MAX_DEPTH, default CHAIN_DEFAULT_MAX_DEPTH). A
     * path of exactly max_depth certificates is accepted. */
    unsigned max_depth;
};

/* chain_mfr_settings_default fills |s| with the defaults documented above
 * (revocation none). */
void chain_mfr_settings_default(struct chain_mfr_settings *s);

/*
 * chain_store_new returns an empty trust store (no manufacturers, no roots,
 * no intermediates), or NULL on allocation failure. Free with
 * chain_store_free.
 */
struct chain_store *chain_store_new(void);

/* chain_store_set_leaf sets which leaf rules |store|'s chains face
 * (default CHAIN_LEAF_IDEVID). The EK store holds the TPM vendors of the
 * manufacturers file. */
void chain_store_set_leaf(struct chain_store *store, enum chain_leaf leaf);

/* chain_store_id returns |store|'s id: unique among the stores this process
 * made, so a verdict kept for one store is never taken for another's. */
uint64_t chain_store_id(const struct chain_store *store);

/* chain_store_free frees |store|; NULL is a no-op. */
void chain_store_free(struct chain_store *store);

/*
 * chain_store_add_manufacturer declares manufacturer |name| (printable ASCII,
 * at most CHAIN_NAME_MAX - 1 bytes, unique) with |settings| (copied; NULL for
 * the defaults). Returns 0, DEVID_ERR_CONFIG for a bad or duplicate name, or
 * another DEVID_ERR_* code.
 */
int chain_store_add_manufacturer(struct chain_store *store, const char *name,
                                 const struct chain_mfr_settings *settings);

/*
 * chain_store_add_mfr_root adds trust anchor |root| (a self-signed CA) to
 * manufacturer |name|. The store takes its own reference. Returns 0,
 * DEVID_ERR_NOT_FOUND for an unknown manufacturer, DEVID_ERR_CONFIG when
 * |root| is not a self-signed CA or already belongs to a manufacturer.
 */
int chain_store_add_mfr_root(struct chain_store *store, const char *name, X509 *root);

/*
 * chain_store_add_crl adds |crl| (the store takes its own reference) to
 * manufacturer |name|'s revocation data. Its signature is checked against the
 * issuing certificate of the chain at verification time. Returns 0 or a
 * DEVID_ERR_* code.
 */
int chain_store_add_crl(struct chain_store *store, const char *name, X509_CRL *crl);

/*
 * chain_store_add_root adds trust anchor |root| (a self-signed CA) under a
 * manufacturer named from its subject O, else CN, creating that manufacturer
 * with default settings when it does not exist yet (the simple `--roots DIR`
 * form). |store| takes its own reference. Returns 0 or a DEVID_ERR_* code.
 */
int chain_store_add_root(struct chain_store *store, X509 *root);

/*
 * chain_store_add_intermediate adds an untrusted intermediate from config.
 * The caller keeps |cert|. Returns 0 or a DEVID_ERR_* code.
 */
int chain_store_add_intermediate(struct chain_store *store, X509 *cert);

/* chain_store_root_count returns how many roots |store| holds. */
size_t chain_store_root_count(const struct chain_store *store);

/* chain_store_has_manufacturer returns 1 when |name| is a manufacturer of
 * |store|, else 0. */
int chain_store_has_manufacturer(const struct chain_store *store, const char *name);

/* What revocation checking found for the IDevID. */
enum chain_revocation {
    /* The manufacturer has revocation none. */
    CHAIN_REV_NOT_CONFIGURED = 0,
    /* A current CRL from the IDevID's issuer was consulted. */
    CHAIN_REV_CHECKED,
    /* Soft mode: no CRL from the issuer; proceeded. */
    CHAIN_REV_SOFT_MISSING,
    /* Soft mode: the issuer's CRL is past nextUpdate (or not yet valid); it
     * was consulted anyway; proceeded. */
    CHAIN_REV_SOFT_STALE,
};

/* chain_revocation_str returns "checked", "soft-missing", "soft-stale" or
 * "not-configured" (static). */
const char *chain_revocation_str(enum chain_revocation rev);

/* The outcome of a successful chain_verify. */
struct chain_verdict {
    /* The trust anchor the chain ends at; owned by the verdict. */
    X509 *root;
    /* The validated path, leaf first, anchor last; owned by the verdict. */
    STACK_OF(X509) *path;
    /* The manufacturer whose root it is. */
    char manufacturer[CHAIN_NAME_MAX];
    enum chain_revocation revocation;
    /* What revocation checking saw, for logs ("CRL from ... nextUpdate ..."). */
    char revocation_detail[512];
    /* The verdict holds from the verification time until this time: the
     * first notAfter on the path, or the first lastUpdate or nextUpdate
     * still ahead among the manufacturer's CRLs (chain_memo.h). */
    time_t valid_until;
};

/* chain_verdict_cleanup frees what |v| owns and zeroes it. */
void chain_verdict_cleanup(struct chain_verdict *v);

/*
 * chain_verify validates |leaf| as described at the top of this header: to a
 * root in |store|, with untrusted intermediates from |device_chain| (may be
 * NULL; at most CHAIN_MAX_DEPTH are used) and from the store, at time
 * |now|. On success fills |verdict| and returns 0. On failure writes a reason
 * naming the certificate (its subject), the check and the field to |why| and
 * returns DEVID_ERR_CHAIN_UNTRUSTED, DEVID_ERR_CHAIN_EXPIRED,
 * DEVID_ERR_CHAIN_REVOKED, DEVID_ERR_REVOCATION_UNKNOWN (hard mode: missing
 * or stale revocation data) or DEVID_ERR_CHAIN_INVALID (which includes weak
 * algorithms, a leaf that is a CA and a path longer than max_depth).
 */
int chain_verify(const struct chain_store *store, struct chain_verdict *verdict, X509 *leaf,
                 STACK_OF(X509) *device_chain, time_t now, char *why, size_t why_len);

/*
 * chain_describe writes a short description of |x|'s key ("EC P-256",
 * "RSA 2048", "ED25519") and signature ("ecdsa-with-SHA256") to |buf|, for
 * operator reports.
 */
void chain_describe(char *buf, size_t len, X509 *x);

/*
 * chain_refuse writes chain_verify's form of a refusal to |why|: "certificate
 * SUBJECT (chain depth DEPTH): WHAT DETAIL" (|detail| may be NULL). Returns
 * |code|.
 */
int chain_refuse(int code, char *why, size_t why_len, X509 *x, int depth, const char *what,
                 const char *detail);

/* chain_subject writes |x|'s subject (RFC 2253, quoted, at most 256 bytes)
 * to |buf|. */
void chain_subject(char *buf, size_t len, X509 *x);

/* chain_name_str writes |name| in RFC 2253 form (OpenSSL's escaping:
 * printable ASCII only), unquoted and cut to |len| - 1 bytes, to |buf|;
 * "(unknown)" when it cannot. */
void chain_name_str(char *buf, size_t len, const X509_NAME *name);

#endif

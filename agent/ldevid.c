#include "agent/ldevid.h"

#include <limits.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>

#include "agent/core/tss2pem.h"
#include "agent/fileset.h"
#include "common/err.h"
#include "common/io/log.h"
#include "common/tpmkey.h"

/* The files of an enrollment as read from the output directory. */
struct files {
    char cert_path[PATH_MAX];
    char key_path[PATH_MAX];
    X509 *cert;
    uint8_t *key_pem; /* key.tss2.pem, wiped when freed */
    size_t key_pem_len;
    EVP_PKEY *key; /* the public key of the blob */
};

static void files_cleanup(struct files *f)
{
    X509_free(f->cert);
    if (f->key_pem != NULL)
        OPENSSL_cleanse(f->key_pem, f->key_pem_len);
    free(f->key_pem);
    EVP_PKEY_free(f->key);
    memset(f, 0, sizeof(*f));
}

static bool valid_now(X509 *cert)
{
    return X509_cmp_current_time(X509_get0_notBefore(cert)) < 0 &&
           X509_cmp_current_time(X509_get0_notAfter(cert)) > 0;
}

/* read_files reads cert.pem and key.tss2.pem and checks that they belong
 * together and that the certificate is valid now. Returns 0,
 * DEVID_ERR_NOT_FOUND (logged, but for a missing certificate) or
 * DEVID_ERR_CONFIG. */
static int read_files(struct files *f, const struct agent_config *cfg)
{
    TPMT_PUBLIC pub;
    uint32_t parent = 0;
    int r;

    memset(f, 0, sizeof(*f));
    if (fileset_path(f->cert_path, sizeof(f->cert_path), cfg, FILESET_CERT) != 0 ||
        fileset_path(f->key_path, sizeof(f->key_path), cfg, FILESET_KEY) != 0)
        return DEVID_ERR_CONFIG;
    if ((r = fileset_read_cert(&f->cert, cfg)) != 0) {
        if (r == DEVID_ERR_CONFIG)
            log_warn("%s is unreadable: enrolling again", f->cert_path);
        return DEVID_ERR_NOT_FOUND;
    }
    if (!valid_now(f->cert)) {
        log_info("%s is expired or not yet valid: enrolling again", f->cert_path);
        return DEVID_ERR_NOT_FOUND;
    }
    if (fileset_read(&f->key_pem, &f->key_pem_len, cfg, FILESET_KEY) != 0 ||
        tss2pem_decode(&parent, &pub, NULL, NULL, (const char *)f->key_pem, f->key_pem_len) != 0 ||
        tpmkey_public_to_pkey(&f->key, &pub) != 0) {
        log_warn("%s is missing or not a TSS2 key: enrolling again", f->key_path);
        return DEVID_ERR_NOT_FOUND;
    }
    if (EVP_PKEY_eq(X509_get0_pubkey(f->cert), f->key) != 1) {
        log_warn("%s is not the key of %s: enrolling again", f->key_path, f->cert_path);
        return DEVID_ERR_NOT_FOUND;
    }
    return 0;
}

/* load_blob loads the TSS2 key file |pem| (read from |key_path|) under the
 * parent it names. Returns 0, DEVID_ERR_NOT_FOUND when it does not load in
 * this TPM (logged), or a transient TPM error. */
static int load_blob(struct tpm_key **out, struct tpm *tpm, const char *key_path,
                     const uint8_t *pem, size_t pem_len)
{
    struct tpm_key *parent_key = NULL;
    uint8_t *priv = NULL;
    size_t priv_len = 0;
    TPMT_PUBLIC pub;
    uint32_t parent = 0;
    int r = DEVID_ERR_NOT_FOUND;

    *out = NULL;
    if (tss2pem_decode(&parent, &pub, &priv, &priv_len, (const char *)pem, pem_len) != 0)
        goto out;
    if ((r = tpm_key_persistent(&parent_key, tpm, parent)) != 0) {
        if (r == DEVID_ERR_NOT_FOUND)
            log_warn("%s names parent 0x%08x, but no key is there (TPM cleared?): enrolling again",
                     key_path, parent);
        else if (!tpm_last_error_transient())
            r = DEVID_ERR_NOT_FOUND;
        goto out;
    }
    if ((r = tpm_key_load(out, parent_key, &pub, priv, priv_len)) != 0 &&
        (r != DEVID_ERR_TPM || !tpm_last_error_transient())) {
        log_warn("%s does not load in this TPM under 0x%08x: enrolling again", key_path, parent);
        r = DEVID_ERR_NOT_FOUND;
    }
out:
    tpm_key_free(parent_key);
    OPENSSL_clear_free(priv, priv_len);
    return r;
}

/* persisted_is checks whether the key at |handle| is |want|: 0 when it is,
 * DEVID_ERR_NOT_FOUND when it is not or nothing is there, or the TPM error. */
static int persisted_is(struct tpm *tpm, uint32_t handle, EVP_PKEY *want)
{
    struct tpm_key *held = NULL;
    EVP_PKEY *have = NULL;
    int r;

    if ((r = tpm_key_persistent(&held, tpm, handle)) != 0)
        return r;
    if (tpmkey_public_to_pkey(&have, tpm_key_get0_public(held)) != 0 ||
        EVP_PKEY_eq(have, want) != 1)
        r = DEVID_ERR_NOT_FOUND;
    EVP_PKEY_free(have);
    tpm_key_free(held);
    return r;
}

/* matches_tpm returns 0 when the blob of |f| loads in this TPM (and, with a
 * persist_handle, the key there is its key), DEVID_ERR_NOT_FOUND when not,
 * or a transient TPM error. */
static int matches_tpm(struct tpm *tpm, const struct agent_config *cfg, const struct files *f)
{
    struct tpm_key *key = NULL;
    int r;

    if ((r = load_blob(&key, tpm, f->key_path, f->key_pem, f->key_pem_len)) != 0)
        return r;
    tpm_key_free(key);
    if (cfg->persist_handle == 0)
        return 0;
    r = persisted_is(tpm, cfg->persist_handle, f->key);
    if (r != 0 && r != DEVID_ERR_NOT_FOUND && tpm_last_error_transient())
        return r;
    if (r != 0) {
        log_warn(
            "the key at persistent handle 0x%08x is not the certificate's key: enrolling again",
            cfg->persist_handle);
        return DEVID_ERR_NOT_FOUND;
    }
    return 0;
}

int ldevid_check(X509 **cert, char *cert_path, size_t cert_path_size,
                 const struct agent_config *cfg, struct tpm *tpm)
{
    struct files f;
    int r;

    *cert = NULL;
    if ((r = read_files(&f, cfg)) != 0)
        goto out;
    if (tpm != NULL && (r = matches_tpm(tpm, cfg, &f)) != 0)
        goto out;
    snprintf(cert_path, cert_path_size, "%s", f.cert_path);
    *cert = f.cert;
    f.cert = NULL;
out:
    files_cleanup(&f);
    return r;
}

int ldevid_persist_blob(struct tpm *tpm, const struct agent_config *cfg)
{
    char key_path[PATH_MAX];
    struct tpm_key *key = NULL;
    EVP_PKEY *want = NULL;
    uint8_t *pem = NULL;
    size_t pem_len = 0;
    int r = 0;

    if (cfg->persist_handle == 0)
        return 0;
    if (fileset_path(key_path, sizeof(key_path), cfg, FILESET_KEY) != 0 ||
        fileset_read(&pem, &pem_len, cfg, FILESET_KEY) != 0)
        goto out;
    if ((r = load_blob(&key, tpm, key_path, pem, pem_len)) != 0) {
        r = r == DEVID_ERR_NOT_FOUND ? 0 : r;
        goto out;
    }
    if ((r = tpmkey_public_to_pkey(&want, tpm_key_get0_public(key))) != 0)
        goto out;
    r = persisted_is(tpm, cfg->persist_handle, want);
    if (r == 0) {
        log_info("the new key is already at persistent handle 0x%08x", cfg->persist_handle);
        goto out;
    }
    if (r != DEVID_ERR_NOT_FOUND)
        goto out;
    log_info(
        "finishing an interrupted renewal: the new key goes to persistent handle 0x%08x, "
        "the old one is evicted",
        cfg->persist_handle);
    r = tpm_key_persist(key, cfg->persist_handle);
out:
    EVP_PKEY_free(want);
    tpm_key_free(key);
    if (pem != NULL)
        OPENSSL_cleanse(pem, pem_len);
    free(pem);
    return r;
}

#include "agent/core/tss2pem.h"

#include <limits.h>
#include <string.h>

#include <openssl/asn1t.h>
#include <openssl/crypto.h>
#include <openssl/bio.h>
#include <openssl/objects.h>
#include <openssl/pem.h>
#include <tss2/tss2_mu.h>

#include "common/err.h"

#define PEM_MAX 16384

/* The OpenSSL template macros need a typedef; the name and layout follow the
 * tpm2-openssl provider (tpm2-provider-pkey.c). */
typedef struct {
    ASN1_OBJECT *type;
    ASN1_BOOLEAN emptyAuth;
    ASN1_INTEGER *parent;
    ASN1_OCTET_STRING *pubkey;
    ASN1_OCTET_STRING *privkey;
} TSSPRIVKEY;

ASN1_SEQUENCE(TSSPRIVKEY) =
    {
        ASN1_SIMPLE(TSSPRIVKEY, type, ASN1_OBJECT),
        ASN1_EXP_OPT(TSSPRIVKEY, emptyAuth, ASN1_BOOLEAN, 0),
        ASN1_SIMPLE(TSSPRIVKEY, parent, ASN1_INTEGER),
        ASN1_SIMPLE(TSSPRIVKEY, pubkey, ASN1_OCTET_STRING),
        ASN1_SIMPLE(TSSPRIVKEY, privkey, ASN1_OCTET_STRING),
} static_ASN1_SEQUENCE_END(TSSPRIVKEY)

        int tss2pem_encode(char **out, size_t *out_len, uint32_t parent, const uint8_t *pub,
                           size_t pub_len, const uint8_t *priv, size_t priv_len)
{
    TSSPRIVKEY *k = NULL;
    uint8_t *der = NULL;
    BIO *bio = NULL;
    char *mem = NULL, *pem = NULL;
    long n;
    int der_len = 0;
    int r = DEVID_ERR_INTERNAL;

    if (out == NULL || out_len == NULL || pub == NULL || priv == NULL || pub_len == 0 ||
        priv_len == 0 || pub_len > INT_MAX || priv_len > INT_MAX)
        return DEVID_ERR_INVALID_ARGUMENT;
    *out = NULL;
    *out_len = 0;
    if ((k = (TSSPRIVKEY *)ASN1_item_new(ASN1_ITEM_rptr(TSSPRIVKEY))) == NULL) {
        r = DEVID_ERR_ALLOC;
        goto out;
    }
    k->emptyAuth = 0xff;
    if ((k->type = OBJ_txt2obj(TSS2PEM_OID_LOADABLE, 1)) == NULL ||
        ASN1_INTEGER_set_uint64(k->parent, parent) != 1 ||
        ASN1_OCTET_STRING_set(k->pubkey, pub, (int)pub_len) != 1 ||
        ASN1_OCTET_STRING_set(k->privkey, priv, (int)priv_len) != 1) {
        r = DEVID_ERR_ALLOC;
        goto out;
    }
    if ((der_len = ASN1_item_i2d((ASN1_VALUE *)k, &der, ASN1_ITEM_rptr(TSSPRIVKEY))) <= 0) {
        r = DEVID_ERR_CRYPTO;
        goto out;
    }
    if ((bio = BIO_new(BIO_s_mem())) == NULL) {
        r = DEVID_ERR_ALLOC;
        goto out;
    }
    if (PEM_write_bio(bio, TSS2PEM_LABEL, "", der, der_len) <= 0 ||
        (n = BIO_get_mem_data(bio, &mem)) <= 0) {
        r = DEVID_ERR_CRYPTO;
        goto out;
    }
    if ((pem = OPENSSL_malloc((size_t)n + 1)) == NULL) {
        r = DEVID_ERR_ALLOC;
        goto out;
    }
    memcpy(pem, mem, (size_t)n);
    pem[n] = '\0';
    *out = pem;
    *out_len = (size_t)n;
    pem = NULL;
    r = 0;
out:
    OPENSSL_free(pem);
    BIO_free(bio);
    OPENSSL_clear_free(der, der_len > 0 ? (size_t)der_len : 0);
    ASN1_item_free((ASN1_VALUE *)k, ASN1_ITEM_rptr(TSSPRIVKEY));
    return r;
}

int tss2pem_encode_blob(char **out, size_t *out_len, uint32_t parent, const TPM2B_PUBLIC *pub,
                        const TPM2B_PRIVATE *priv)
{
    uint8_t pub_buf[sizeof(TPM2B_PUBLIC)], priv_buf[sizeof(TPM2B_PRIVATE)];
    size_t pub_len = 0, priv_len = 0;
    int r = DEVID_ERR_INVALID_ARGUMENT;

    if (out == NULL || out_len == NULL || pub == NULL || priv == NULL)
        return DEVID_ERR_INVALID_ARGUMENT;
    *out = NULL;
    *out_len = 0;
    if (Tss2_MU_TPM2B_PUBLIC_Marshal(pub, pub_buf, sizeof(pub_buf), &pub_len) == TSS2_RC_SUCCESS &&
        Tss2_MU_TPM2B_PRIVATE_Marshal(priv, priv_buf, sizeof(priv_buf), &priv_len) ==
            TSS2_RC_SUCCESS)
        r = tss2pem_encode(out, out_len, parent, pub_buf, pub_len, priv_buf, priv_len);
    OPENSSL_cleanse(priv_buf, sizeof(priv_buf));
    return r;
}

int tss2pem_decode(uint32_t *parent, TPMT_PUBLIC *pub, uint8_t **priv, size_t *priv_len,
                   const char *pem, size_t pem_len)
{
    TSSPRIVKEY *k = NULL;
    ASN1_OBJECT *oid = NULL;
    BIO *bio = NULL;
    char *name = NULL, *header = NULL;
    unsigned char *data = NULL;
    const unsigned char *p;
    long data_len = 0;
    uint64_t par = 0;
    TPM2B_PUBLIC pub2b;
    size_t off = 0;
    int r = DEVID_ERR_INTERNAL;

    if (parent == NULL || pub == NULL || pem == NULL || (priv == NULL) != (priv_len == NULL))
        return DEVID_ERR_INVALID_ARGUMENT;
    if (priv != NULL) {
        *priv = NULL;
        *priv_len = 0;
    }
    if (pem_len == 0 || pem_len > PEM_MAX)
        return DEVID_ERR_BAD_REQUEST;
    if ((bio = BIO_new_mem_buf(pem, (int)pem_len)) == NULL ||
        (oid = OBJ_txt2obj(TSS2PEM_OID_LOADABLE, 1)) == NULL) {
        r = DEVID_ERR_ALLOC;
        goto out;
    }
    r = DEVID_ERR_BAD_REQUEST;
    if (PEM_read_bio(bio, &name, &header, &data, &data_len) != 1 ||
        strcmp(name, TSS2PEM_LABEL) != 0 || data_len <= 0)
        goto out;
    p = data;
    k = (TSSPRIVKEY *)ASN1_item_d2i(NULL, &p, data_len, ASN1_ITEM_rptr(TSSPRIVKEY));
    if (k == NULL || p != data + data_len)
        goto out;
    if (OBJ_cmp(k->type, oid) != 0 || k->emptyAuth <= 0)
        goto out;
    if (ASN1_INTEGER_get_uint64(&par, k->parent) != 1 || par > UINT32_MAX)
        goto out;
    memset(&pub2b, 0, sizeof(pub2b));
    if (Tss2_MU_TPM2B_PUBLIC_Unmarshal(ASN1_STRING_get0_data(k->pubkey),
                                       (size_t)ASN1_STRING_length(k->pubkey), &off,
                                       &pub2b) != TSS2_RC_SUCCESS ||
        off != (size_t)ASN1_STRING_length(k->pubkey))
        goto out;
    if (ASN1_STRING_length(k->privkey) <= 0)
        goto out;
    if (priv != NULL) {
        if ((*priv = OPENSSL_memdup(ASN1_STRING_get0_data(k->privkey),
                                    (size_t)ASN1_STRING_length(k->privkey))) == NULL) {
            r = DEVID_ERR_ALLOC;
            goto out;
        }
        *priv_len = (size_t)ASN1_STRING_length(k->privkey);
    }
    *parent = (uint32_t)par;
    *pub = pub2b.publicArea;
    r = 0;
out:
    ASN1_item_free((ASN1_VALUE *)k, ASN1_ITEM_rptr(TSSPRIVKEY));
    ASN1_OBJECT_free(oid);
    OPENSSL_free(name);
    OPENSSL_free(header);
    OPENSSL_clear_free(data, data_len > 0 ? (size_t)data_len : 0);
    BIO_free(bio);
    return r;
}

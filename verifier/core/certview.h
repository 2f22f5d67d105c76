/* A certificate read without decoding its subject key. OpenSSL 3.0's
 * d2i_X509 builds a decoder (OSSL_DECODER_CTX_new_for_pkey) for the key of
 * every certificate it parses, and that costs more than the rest of the
 * parse: the privilege-separated signer checks (signcheck.h) and signs
 * certificates in this form instead. It holds the TBSCertificate as OpenSSL's
 * own ASN.1 types, with the key as its algorithm and bit string. Pure. */
#ifndef DEVID_VERIFIER_CORE_CERTVIEW_H
#define DEVID_VERIFIER_CORE_CERTVIEW_H

#include <stddef.h>
#include <stdint.h>

#include <openssl/asn1t.h>
#include <openssl/evp.h>
#include <openssl/x509.h>

/* SubjectPublicKeyInfo as its two fields, the key undecoded. */
typedef struct {
    X509_ALGOR *algor;
    ASN1_BIT_STRING *public_key;
} SPKI_VIEW;

DECLARE_ASN1_ITEM(SPKI_VIEW)

/* TBSCertificate (RFC 5280 4.1). */
typedef struct {
    /* NULL: absent, a version 1 certificate. */
    ASN1_INTEGER *version;
    ASN1_INTEGER *serial;
    X509_ALGOR *signature;
    X509_NAME *issuer;
    X509_VAL *validity;
    X509_NAME *subject;
    SPKI_VIEW *spki;
    ASN1_BIT_STRING *issuer_uid;
    ASN1_BIT_STRING *subject_uid;
    STACK_OF(X509_EXTENSION) *extensions;
} TBS_VIEW;

typedef struct {
    TBS_VIEW *tbs;
    X509_ALGOR *sig_alg;
    ASN1_BIT_STRING *signature;
} CERT_VIEW;

/*
 * certview_parse sets |*out| to the certificate that is exactly the |len|
 * bytes at |der|, nothing after it. Returns 0, or DEVID_ERR_BAD_REQUEST
 * when they are not one certificate.
 */
int certview_parse(CERT_VIEW **out, const uint8_t *der, size_t len);

void certview_free(CERT_VIEW *v);

/*
 * certview_pkey returns a new EVP_PKEY of |v|'s subject key, or NULL when it
 * is not a usable key. A named-curve EC key is imported from its point, which
 * OpenSSL checks is on the curve; any other key goes through d2i_PUBKEY.
 */
EVP_PKEY *certview_pkey(const CERT_VIEW *v);

/*
 * certview_sign signs |v| with |mctx| (EVP_DigestSignInit done): it sets
 * both signature algorithm fields to the key's and the signature over the
 * TBSCertificate's DER, as X509_sign_ctx does. Returns 0 or DEVID_ERR_CRYPTO.
 */
int certview_sign(CERT_VIEW *v, EVP_MD_CTX *mctx);

/*
 * certview_encode sets |*der| to |v|'s DER (OPENSSL_malloc; the caller
 * frees it with OPENSSL_free) and |*len| to its length. Returns 0 or
 * DEVID_ERR_CRYPTO.
 */
int certview_encode(const CERT_VIEW *v, uint8_t **der, size_t *len);

#endif

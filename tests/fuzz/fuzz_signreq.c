/* What the signer reads from the serving process (verifier/core/signreq.h,
 * verifier/pki/signer.c): a request head, then its body, parsed as the
 * signer does. A head that parses must stay within its type's maximum; a
 * CRL or tree head body that decodes must encode back to the same bytes
 * (and a tree head goes through signcheck_tree_head); a certificate
 * body goes through the profile check (signcheck_cert), whose every refusal
 * must say why, and is walked as the signer's answer to itself and to the
 * fixture's IDevID (signreq_cert_answer_check), which is what the serving
 * process does with an answer: a certificate is the answer to itself when
 * its two algorithms agree, and every refusal says why. The signer's reading
 * (certview.h) must take exactly the bodies d2i_X509 takes, and find the
 * key OpenSSL finds. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/err.h>
#include <openssl/x509.h>

#include "common/err.h"
#include "fuzzutil.h"
#include "verifier/core/signcheck.h"
#include "verifier/core/signreq.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const struct fu_world *w = fu_world();
    struct signcheck_rules rules = {w->inter, 365L * 86400, 86400, "1.3.6.1.4.1.32473"};
    struct signreq_crl crl;
    static struct signreq_tree_head th;
    static uint8_t th_enc[SIGNREQ_MAX_TREE_HEAD];
    const struct tlog_head last = {5, FU_NOW - 60, {0}};
    uint8_t type, *enc = NULL;
    size_t len = 0, enc_len = 0;
    char why[SIGNREQ_MAX_WHY];
    const unsigned char *p;
    CERT_VIEW *x = NULL;
    X509 *ref;
    int r;

    if (size < SIGNREQ_HEAD_LEN)
        return 0;
    if (signreq_head_parse(&type, &len, data, 0, why, sizeof(why)) != 0)
        return 0;
    if ((type == SIGNREQ_CERT && len > SIGNREQ_MAX_CERT) ||
        (type == SIGNREQ_CRL && len > SIGNREQ_MAX_CRL) ||
        (type == SIGNREQ_TREE_HEAD && len > SIGNREQ_MAX_TREE_HEAD))
        abort();
    data += SIGNREQ_HEAD_LEN;
    size -= SIGNREQ_HEAD_LEN;
    if (len > size)
        return 0;
    if (type == SIGNREQ_CRL && signreq_crl_decode(&crl, data, len, why, sizeof(why)) == 0) {
        if (signreq_crl_encode(&enc, &enc_len, &crl) != 0 || enc_len != len ||
            memcmp(enc, data, len) != 0)
            abort();
        why[0] = '\0';
        if (signcheck_crl(&rules, &crl, 1, 5, FU_NOW, why, sizeof(why)) != 0 && why[0] == '\0')
            abort();
        free(enc);
        signreq_crl_cleanup(&crl);
    }
    if (type == SIGNREQ_TREE_HEAD &&
        signreq_tree_head_decode(&th, data, len, why, sizeof(why)) == 0) {
        if (signreq_tree_head_encode(th_enc, &enc_len, &th) != 0 || enc_len != len ||
            memcmp(th_enc, data, len) != 0)
            abort();
        why[0] = '\0';
        if (signcheck_tree_head(&th, &last, FU_NOW, why, sizeof(why)) != 0 && why[0] == '\0')
            abort();
    }
    if (type == SIGNREQ_CERT) {
        static uint8_t *idevid;
        static int idevid_len;

        if (idevid == NULL && (idevid_len = i2d_X509(w->idevid, &idevid)) <= 0)
            abort();
        why[0] = '\0';
        if (signreq_cert_answer_check(idevid, (size_t)idevid_len, data, len, why, sizeof(why)) !=
                0 &&
            why[0] == '\0')
            abort();
        why[0] = '\0';
        if (signreq_cert_answer_check(data, len, data, len, why, sizeof(why)) != 0 &&
            why[0] == '\0')
            abort();
        /* As the signer reads it, without decoding the key; and beside
         * OpenSSL's own reading, which must take the same bytes and find the
         * same key. */
        p = data;
        ref = d2i_X509(NULL, &p, (long)len);
        if (ref != NULL && p != data + len) {
            X509_free(ref);
            ref = NULL;
        }
        if ((certview_parse(&x, data, len) == 0) != (ref != NULL))
            abort();
        if (x != NULL) {
            EVP_PKEY *k = certview_pkey(x);

            if ((k != NULL) != (X509_get0_pubkey(ref) != NULL) ||
                (k != NULL && EVP_PKEY_eq(k, X509_get0_pubkey(ref)) != 1))
                abort();
            EVP_PKEY_free(k);
            why[0] = '\0';
            r = signcheck_cert(&rules, x, FU_NOW, why, sizeof(why));
            if (r != 0 && (r != DEVID_ERR_REFUSED || why[0] == '\0'))
                abort();
            certview_free(x);
        }
        X509_free(ref);
    }
    ERR_clear_error();
    return 0;
}

/* Unit tests for agent/tss2pem: the TSS2 PRIVATE KEY file of the LDevID. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>
#include <openssl/crypto.h>
#include <tss2/tss2_mu.h>

#include "agent/core/tss2pem.h"
#include "common/err.h"

/* Made by the tpm2-openssl 1.1.1 provider on swtpm
 * (openssl genpkey -provider tpm2 -algorithm EC -pkeyopt group:P-256):
 * parent 0x40000001, emptyAuth TRUE encoded as 0x01. */
static const char provider_pem[] =
    "-----BEGIN TSS2 PRIVATE KEY-----\n"
    "MIHwBgZngQUKAQOgAwEBAQIEQAAAAQRYAFYAIwALAAYAcgAAABAAEAADABAAIMIq\n"
    "QyBlydNaqOKwFwFraX+spXkhhtT4Xwn974nf9NG2ACA0La4pw9ccc66UIQUKyuGt\n"
    "uA1PcopEXjjnKJ9e0SRZLwSBgAB+ACC6zrfBHVOBRCaWtybooWv+Zu4DSpW7sGUS\n"
    "MBeo0sW35gAQ8tUQ0G9AVhFpH+x+z+kVmAWY6zI6vWD9oUWZdPwftTSItthguYRv\n"
    "kl/XlhnUUrmoGV56EwhSWKaqIJrM4B8zO/FKOcc2eGDectMORlYg9Ug7lsTca27F\n"
    "ilfv\n"
    "-----END TSS2 PRIVATE KEY-----\n";

static size_t make_public(uint8_t *buf, size_t size, TPM2B_PUBLIC *pub)
{
    size_t off = 0;

    memset(pub, 0, sizeof(*pub));
    pub->publicArea.type = TPM2_ALG_ECC;
    pub->publicArea.nameAlg = TPM2_ALG_SHA256;
    pub->publicArea.objectAttributes = TPMA_OBJECT_FIXEDTPM | TPMA_OBJECT_FIXEDPARENT |
                                       TPMA_OBJECT_SENSITIVEDATAORIGIN | TPMA_OBJECT_USERWITHAUTH |
                                       TPMA_OBJECT_SIGN_ENCRYPT;
    pub->publicArea.parameters.eccDetail.symmetric.algorithm = TPM2_ALG_NULL;
    pub->publicArea.parameters.eccDetail.scheme.scheme = TPM2_ALG_NULL;
    pub->publicArea.parameters.eccDetail.curveID = TPM2_ECC_NIST_P256;
    pub->publicArea.parameters.eccDetail.kdf.scheme = TPM2_ALG_NULL;
    pub->publicArea.unique.ecc.x.size = 32;
    pub->publicArea.unique.ecc.y.size = 32;
    memset(pub->publicArea.unique.ecc.x.buffer, 0x11, 32);
    memset(pub->publicArea.unique.ecc.y.buffer, 0x22, 32);
    assert_int_equal(Tss2_MU_TPM2B_PUBLIC_Marshal(pub, buf, size, &off), TSS2_RC_SUCCESS);
    return off;
}

static void test_round_trip(void **state)
{
    uint8_t pubbuf[sizeof(TPM2B_PUBLIC)], privbuf[100], *priv = NULL;
    TPM2B_PUBLIC pub;
    TPMT_PUBLIC got;
    size_t pub_len, priv_len = 0, pem_len = 0;
    uint32_t parent = 0;
    char *pem = NULL;

    (void)state;
    pub_len = make_public(pubbuf, sizeof(pubbuf), &pub);
    memset(privbuf, 0x5a, sizeof(privbuf));
    privbuf[0] = 0;
    privbuf[1] = sizeof(privbuf) - 2;
    assert_int_equal(
        tss2pem_encode(&pem, &pem_len, 0x81000001, pubbuf, pub_len, privbuf, sizeof(privbuf)), 0);
    assert_non_null(pem);
    assert_int_equal(strlen(pem), pem_len);
    assert_non_null(strstr(pem, "-----BEGIN TSS2 PRIVATE KEY-----\n"));
    assert_int_equal(tss2pem_decode(&parent, &got, &priv, &priv_len, pem, pem_len), 0);
    assert_int_equal(parent, 0x81000001);
    assert_memory_equal(&got, &pub.publicArea, sizeof(got));
    assert_int_equal(priv_len, sizeof(privbuf));
    assert_memory_equal(priv, privbuf, sizeof(privbuf));
    OPENSSL_free(priv);
    OPENSSL_free(pem);
}

static void test_provider_file(void **state)
{
    TPMT_PUBLIC got;
    uint32_t parent = 0;

    (void)state;
    assert_int_equal(tss2pem_decode(&parent, &got, NULL, NULL, provider_pem, strlen(provider_pem)),
                     0);
    assert_int_equal(parent, 0x40000001);
    assert_int_equal(got.type, TPM2_ALG_ECC);
    assert_int_equal(got.parameters.eccDetail.curveID, TPM2_ECC_NIST_P256);
    assert_int_equal(got.unique.ecc.x.size, 32);
}

static void test_rejects(void **state)
{
    char bad[sizeof(provider_pem)];
    TPMT_PUBLIC got;
    uint32_t parent = 0;
    char *p;

    (void)state;
    memcpy(bad, provider_pem, sizeof(bad));
    p = strstr(bad, "TSS2 PRIVATE KEY");
    memcpy(p, "TSS2 PRIVATE KEZ", 16);
    assert_int_equal(tss2pem_decode(&parent, &got, NULL, NULL, bad, strlen(bad)),
                     DEVID_ERR_BAD_REQUEST);
    assert_int_equal(tss2pem_decode(&parent, &got, NULL, NULL, provider_pem, 60),
                     DEVID_ERR_BAD_REQUEST);
    assert_int_equal(tss2pem_decode(&parent, &got, NULL, NULL, "", 0), DEVID_ERR_BAD_REQUEST);
    /* OID 2.23.133.10.1.3 -> 2.23.133.10.1.4 (importable): "Q" -> "R" in base64 "AQOg". */
    memcpy(bad, provider_pem, sizeof(bad));
    p = strstr(bad, "AQOg");
    p[1] = 'R';
    assert_int_equal(tss2pem_decode(&parent, &got, NULL, NULL, bad, strlen(bad)),
                     DEVID_ERR_BAD_REQUEST);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_round_trip),
        cmocka_unit_test(test_provider_file),
        cmocka_unit_test(test_rejects),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

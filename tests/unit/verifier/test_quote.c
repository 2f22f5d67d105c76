/* Unit tests for verifier/quote: the boot-state gate's TPM2_Quote. The
 * TPMS_ATTEST is built in the test (tss2-mu marshalling, software P-256
 * signer standing in for the IAK): no TPM runs here; test_boot_gate.sh
 * checks quotes a swtpm made. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include <openssl/evp.h>
#include <tss2/tss2_mu.h>

#include "common/err.h"
#include "testutil.h"
#include "verifier/core/quote.h"

struct qx {
    EVP_PKEY *iak;
    EVP_PKEY *other;
    uint8_t t[32];
    struct quote_pcr pcrs[2]; /* PCRs 7 and 11 */
    size_t n_pcrs;
    uint32_t selection;
    TPMS_ATTEST att;
    uint8_t info[2048];
    size_t info_len;
    uint8_t sig[512];
    size_t sig_len;
};

/* Marshals q->att and signs it with |by|. */
static void qx_seal(struct qx *q, EVP_PKEY *by)
{
    uint8_t d[32];
    size_t off = 0;

    assert_int_equal(Tss2_MU_TPMS_ATTEST_Marshal(&q->att, q->info, sizeof(q->info), &off),
                     TSS2_RC_SUCCESS);
    q->info_len = off;
    tu_sha256(d, q->info, q->info_len);
    q->sig_len = sizeof(q->sig);
    tu_tpm_sign(q->sig, &q->sig_len, by, d);
}

/* The quote a TPM makes of PCRs 7 and 11 holding q->pcrs, over q->t. */
static void qx_build(struct qx *q)
{
    TPMS_QUOTE_INFO *qi = &q->att.attested.quote;
    uint8_t cat[64];

    memset(&q->att, 0, sizeof(q->att));
    q->att.magic = TPM2_GENERATED_VALUE;
    q->att.type = TPM2_ST_ATTEST_QUOTE;
    q->att.qualifiedSigner.size = 4;
    memcpy(q->att.qualifiedSigner.name, "\x00\x0b\x01\x02", 4);
    memcpy(q->att.extraData.buffer, q->t, sizeof(q->t));
    q->att.extraData.size = sizeof(q->t);
    q->att.clockInfo.clock = 123456;
    q->att.clockInfo.safe = 1;
    qi->pcrSelect.count = 1;
    qi->pcrSelect.pcrSelections[0].hash = TPM2_ALG_SHA256;
    qi->pcrSelect.pcrSelections[0].sizeofSelect = 3;
    qi->pcrSelect.pcrSelections[0].pcrSelect[0] = 0x80; /* PCR 7 */
    qi->pcrSelect.pcrSelections[0].pcrSelect[1] = 0x08; /* PCR 11 */
    memcpy(cat, q->pcrs[0].sha256, 32);
    memcpy(cat + 32, q->pcrs[1].sha256, 32);
    tu_sha256(qi->pcrDigest.buffer, cat, sizeof(cat));
    qi->pcrDigest.size = 32;
    qx_seal(q, q->iak);
}

static int setup(void **state)
{
    struct qx *q = test_calloc(1, sizeof(*q));
    size_t i;

    q->iak = tu_ec_key();
    q->other = tu_ec_key();
    for (i = 0; i < 32; i++) {
        q->t[i] = (uint8_t)(0xc0 + i);
        q->pcrs[0].sha256[i] = (uint8_t)(0x70 + i);
        q->pcrs[1].sha256[i] = (uint8_t)(0x11 ^ i);
    }
    q->pcrs[0].index = 7;
    q->pcrs[1].index = 11;
    q->n_pcrs = 2;
    q->selection = 1u << 7 | 1u << 11;
    qx_build(q);
    *state = q;
    return 0;
}

static int teardown(void **state)
{
    struct qx *q = *state;

    EVP_PKEY_free(q->iak);
    EVP_PKEY_free(q->other);
    test_free(q);
    return 0;
}

static int check(struct qx *q, char *why, size_t why_len)
{
    struct quote_input in = {
        .info = q->info,
        .info_len = q->info_len,
        .sig = q->sig,
        .sig_len = q->sig_len,
        .signer = q->iak,
        .qualifying = q->t,
        .qualifying_len = sizeof(q->t),
        .selection = q->selection,
        .pcrs = q->pcrs,
        .n_pcrs = q->n_pcrs,
    };
    int r = quote_check(&in, why, why_len);

    if (r != 0)
        assert_true(why[0] != '\0');
    return r;
}

static void test_good(void **state)
{
    char why[256];

    assert_int_equal(check(*state, why, sizeof(why)), 0);
}

static void test_wrong_qualifying(void **state)
{
    struct qx *q = *state;
    char why[256];

    q->att.extraData.buffer[0] ^= 1;
    qx_seal(q, q->iak);
    assert_int_equal(check(q, why, sizeof(why)), DEVID_ERR_QUOTE_NONCE);
    assert_non_null(strstr(why, "transcript T"));
}

static void test_signed_by_another_key(void **state)
{
    struct qx *q = *state;
    char why[256];

    /* The IDevID, say: a TPMS_ATTEST it signs may be made up in software. */
    qx_seal(q, q->other);
    assert_int_equal(check(q, why, sizeof(why)), DEVID_ERR_QUOTE_SIGNATURE);
    assert_non_null(strstr(why, "IAK"));
}

static void test_bad_signature_bytes(void **state)
{
    struct qx *q = *state;
    char why[256];

    q->sig_len = 3;
    assert_int_equal(check(q, why, sizeof(why)), DEVID_ERR_QUOTE_MALFORMED);
}

static void test_wrong_type_and_magic(void **state)
{
    struct qx *q = *state;
    char why[256];

    q->att.type = TPM2_ST_ATTEST_CERTIFY;
    q->att.attested.certify.name.size = 0;
    q->att.attested.certify.qualifiedName.size = 0;
    qx_seal(q, q->iak);
    assert_int_equal(check(q, why, sizeof(why)), DEVID_ERR_QUOTE_MALFORMED);
    assert_non_null(strstr(why, "TPM_ST_ATTEST_QUOTE"));
    qx_build(q);
    q->att.magic ^= 1;
    qx_seal(q, q->iak);
    assert_int_equal(check(q, why, sizeof(why)), DEVID_ERR_QUOTE_MALFORMED);
    qx_build(q);
    q->info_len--;
    assert_int_equal(check(q, why, sizeof(why)), DEVID_ERR_QUOTE_MALFORMED);
    q->info_len = 0;
    assert_int_equal(check(q, why, sizeof(why)), DEVID_ERR_QUOTE_MALFORMED);
}

static void test_selection(void **state)
{
    struct qx *q = *state;
    char why[256];

    /* The verifier asked for PCR 7 only. */
    q->selection = 1u << 7;
    assert_int_equal(check(q, why, sizeof(why)), DEVID_ERR_QUOTE_SELECTION);
    assert_non_null(strstr(why, "quotes SHA-256 PCRs 7,11, the verifier asked for 7"));
    q->selection = 1u << 7 | 1u << 11;
    /* Another bank. */
    q->att.attested.quote.pcrSelect.pcrSelections[0].hash = TPM2_ALG_SHA1;
    qx_seal(q, q->iak);
    assert_int_equal(check(q, why, sizeof(why)), DEVID_ERR_QUOTE_SELECTION);
    /* Two banks. */
    qx_build(q);
    q->att.attested.quote.pcrSelect.count = 2;
    q->att.attested.quote.pcrSelect.pcrSelections[1] =
        q->att.attested.quote.pcrSelect.pcrSelections[0];
    qx_seal(q, q->iak);
    assert_int_equal(check(q, why, sizeof(why)), DEVID_ERR_QUOTE_SELECTION);
    /* A PCR past 23. */
    qx_build(q);
    q->att.attested.quote.pcrSelect.pcrSelections[0].sizeofSelect = 4;
    q->att.attested.quote.pcrSelect.pcrSelections[0].pcrSelect[3] = 1;
    qx_seal(q, q->iak);
    assert_int_equal(check(q, why, sizeof(why)), DEVID_ERR_QUOTE_SELECTION);
}

static void test_reported_values(void **state)
{
    struct qx *q = *state;
    struct quote_pcr swapped[2];
    char why[256];

    /* One missing. */
    q->n_pcrs = 1;
    assert_int_equal(check(q, why, sizeof(why)), DEVID_ERR_QUOTE_SELECTION);
    assert_non_null(strstr(why, "reports PCRs 7, the quote covers 7,11"));
    q->n_pcrs = 2;
    /* Out of order. */
    swapped[0] = q->pcrs[1];
    swapped[1] = q->pcrs[0];
    memcpy(q->pcrs, swapped, sizeof(swapped));
    assert_int_equal(check(q, why, sizeof(why)), DEVID_ERR_QUOTE_SELECTION);
    /* Twice. */
    q->pcrs[0] = q->pcrs[1];
    assert_int_equal(check(q, why, sizeof(why)), DEVID_ERR_QUOTE_SELECTION);
    /* Not asked for. */
    q->pcrs[0].index = 3;
    assert_int_equal(check(q, why, sizeof(why)), DEVID_ERR_QUOTE_SELECTION);
    q->pcrs[0].index = 99;
    assert_int_equal(check(q, why, sizeof(why)), DEVID_ERR_QUOTE_SELECTION);
}

static void test_digest(void **state)
{
    struct qx *q = *state;
    char why[256];

    /* A value that is not the TPM's: the quote's digest does not match. */
    q->pcrs[1].sha256[5] ^= 0x40;
    assert_int_equal(check(q, why, sizeof(why)), DEVID_ERR_QUOTE_DIGEST);
    assert_non_null(strstr(why, "pcrDigest"));
}

static void test_strings(void **state)
{
    struct qx *q = *state;
    char s[QUOTE_PCRS_STR_LEN], sel[80];

    (void)state;
    assert_string_equal(quote_selection_str(sel, sizeof(sel), 1u << 0 | 1u << 7 | 1u << 23),
                        "0,7,23");
    assert_string_equal(quote_selection_str(sel, sizeof(sel), 0), "");
    q->pcrs[0].index = 23;
    memset(q->pcrs[0].sha256, 0xab, 32);
    assert_string_equal(
        quote_pcrs_str(s, sizeof(s), q->pcrs, 1),
        "23=sha256:abababababababababababababababababababababababababababababababab");
    assert_string_equal(quote_pcrs_str(s, sizeof(s), q->pcrs, 0), "");
}

#define T(t) cmocka_unit_test_setup_teardown(t, setup, teardown)

int main(void)
{
    const struct CMUnitTest tests[] = {
        T(test_good),
        T(test_wrong_qualifying),
        T(test_signed_by_another_key),
        T(test_bad_signature_bytes),
        T(test_wrong_type_and_magic),
        T(test_selection),
        T(test_reported_values),
        T(test_digest),
        T(test_strings),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

/* Unit tests for the config parsers (common/conf, mfrconf, policy_parse)
 * and the trust state loader (verifier/pki/trust) over files in a temporary
 * directory. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include <openssl/pem.h>

#include "common/err.h"
#include "testutil.h"
#include "verifier/core/mfrconf.h"
#include "verifier/core/policy.h"
#include "verifier/pki/trust.h"

static int policy_of(struct policy **p, const char *text, char *why, size_t why_len)
{
    return policy_parse(p, text, strlen(text), "policy.conf", why, why_len);
}

static struct device_identity ident(const char *mfr, const char *model, const char *serial)
{
    struct device_identity id;

    memset(&id, 0, sizeof(id));
    snprintf(id.manufacturer, sizeof(id.manufacturer), "%s", mfr);
    snprintf(id.model, sizeof(id.model), "%s", model);
    snprintf(id.serial, sizeof(id.serial), "%s", serial);
    memset(id.fingerprint, 'a', 64);
    return id;
}

static void test_policy_file(void **state)
{
    static const char text[] =
        "# comment\n"
        "[policy]\n"
        "allow_manufacturer = Acme Devices\n"
        "deny_model = Bad\n"
        "allow_serial = SN*\n"
        "reenroll = deny\n"
        "require_iak = yes\n"
        "\n"
        "[denylist]\n"
        "serial = SN-STOLEN\n"
        "fingerprint = AA:aa:aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\n";
    struct policy *p = NULL;
    struct device_identity ok = ident("Acme Devices", "Good", "SN1");
    struct device_identity other = ident("Beta", "Good", "SN1");
    struct device_identity stolen = ident("Acme Devices", "Good", "SN-STOLEN");
    char why[256];

    assert_int_equal(policy_of(&p, text, why, sizeof(why)), 0);
    assert_int_equal(policy_minimum(p, &ok, why, sizeof(why)), ASSURANCE_IAK);
    assert_string_equal(why, "[assurance]");
    assert_false(policy_reenroll(p));
    assert_string_equal(policy_get0_manufacturer(p, 0), "Acme Devices");
    assert_null(policy_get0_manufacturer(p, 1));
    ok.fingerprint[0] = 'b';
    assert_int_equal(policy_check(p, &ok, why, sizeof(why)), 0);
    assert_int_equal(policy_check(p, &other, why, sizeof(why)), DEVID_ERR_POLICY_DENIED);
    assert_non_null(strstr(why, "manufacturer \"Beta\""));
    stolen.fingerprint[0] = 'b';
    assert_int_equal(policy_check(p, &stolen, why, sizeof(why)), DEVID_ERR_POLICY_DENIED);
    assert_non_null(strstr(why, "local deny list"));
    ok.fingerprint[0] = 'a';
    assert_int_equal(policy_check(p, &ok, why, sizeof(why)), DEVID_ERR_POLICY_DENIED);
    assert_non_null(strstr(why, "fingerprint"));
    assert_int_equal(policy_check_assurance(p, &ok, ASSURANCE_NONE, why, sizeof(why)),
                     DEVID_ERR_POLICY_DENIED);
    assert_int_equal(policy_check_assurance(p, &ok, ASSURANCE_IAK, why, sizeof(why)), 0);
    assert_int_equal(policy_check_reenroll(p, &ok, true, why, sizeof(why)),
                     DEVID_ERR_POLICY_DENIED);
    assert_int_equal(policy_check_reenroll(p, &ok, false, why, sizeof(why)), 0);
    policy_free(p);
}

/* [assurance] sections: the model's rule over the manufacturer's over the
 * default; the default without a file is none. */
static void test_policy_assurance(void **state)
{
    static const char text[] =
        "[policy]\n"
        "allow_manufacturer = Acme Devices\n"
        "[assurance]\n"
        "minimum = ek\n"
        "[assurance \"Acme Devices\"]\n"
        "minimum = iak\n"
        "[assurance \"Acme Devices\" \"Old Box\"]\n"
        "minimum = none\n";
    struct policy *p = NULL, *dflt = policy_new();
    struct device_identity acme = ident("Acme Devices", "Good", "SN1");
    struct device_identity old = ident("Acme Devices", "Old Box", "SN2");
    struct device_identity beta = ident("Beta", "Old Box", "SN3");
    char why[600];

    assert_non_null(dflt);
    assert_int_equal(policy_minimum(dflt, &acme, why, sizeof(why)), ASSURANCE_NONE);
    assert_string_equal(why, "the default");
    assert_int_equal(policy_check_assurance(dflt, &acme, ASSURANCE_NONE, why, sizeof(why)), 0);
    policy_free(dflt);
    assert_int_equal(policy_of(&p, text, why, sizeof(why)), 0);
    assert_int_equal(policy_minimum(p, &acme, why, sizeof(why)), ASSURANCE_IAK);
    assert_string_equal(why, "[assurance \"Acme Devices\"]");
    assert_int_equal(policy_minimum(p, &old, why, sizeof(why)), ASSURANCE_NONE);
    assert_string_equal(why, "[assurance \"Acme Devices\" \"Old Box\"]");
    assert_int_equal(policy_minimum(p, &beta, why, sizeof(why)), ASSURANCE_EK);
    assert_string_equal(why, "[assurance]");
    assert_int_equal(policy_check_assurance(p, &acme, ASSURANCE_NONE, why, sizeof(why)),
                     DEVID_ERR_POLICY_DENIED);
    assert_string_equal(why,
                        "assurance none is below minimum iak ([assurance \"Acme Devices\"], "
                        "model \"Good\" of \"Acme Devices\"): the certify evidence is signed by "
                        "the unrestricted IDevID key, which proves possession of the IDevID but "
                        "not where the new key lives; certify with the device's IAK");
    assert_int_equal(policy_check_assurance(p, &acme, ASSURANCE_IAK, why, sizeof(why)), 0);
    assert_int_equal(policy_check_assurance(p, &old, ASSURANCE_NONE, why, sizeof(why)), 0);
    assert_int_equal(policy_check_assurance(p, &beta, ASSURANCE_NONE, why, sizeof(why)),
                     DEVID_ERR_POLICY_DENIED);
    assert_int_equal(policy_check_assurance(p, &beta, ASSURANCE_IAK, why, sizeof(why)), 0);
    policy_free(p);
    assert_int_equal(policy_of(&p, "[policy]\nrequire_iak = no\n", why, sizeof(why)), 0);
    assert_int_equal(policy_minimum(p, &acme, why, sizeof(why)), ASSURANCE_NONE);
    assert_string_equal(why, "[assurance]");
    policy_free(p);
}

static void test_policy_unknown_manufacturer_denied(void **state)
{
    struct policy *p = NULL;
    struct device_identity id = ident("Acme Devices", "M", "S");
    char why[256];

    assert_int_equal(policy_of(&p, "[policy]\nallow_model = M\n", why, sizeof(why)), 0);
    assert_int_equal(policy_check(p, &id, why, sizeof(why)), DEVID_ERR_POLICY_DENIED);
    assert_non_null(strstr(why, "allows none"));
    policy_free(p);
}

static void test_policy_errors(void **state)
{
    static const struct {
        const char *text, *want;
    } cases[] = {
        {"[policy]\nbogus = 1\n", "policy.conf:2: unknown key \"bogus\""},
        {"[policy]\n\nreenroll = maybe\n", "policy.conf:3: key \"reenroll\""},
        {"[policy]\nrequire_iak = perhaps\n", "policy.conf:2: key \"require_iak\""},
        {"[assurance]\nminimum = high\n", "policy.conf:2: key \"minimum\": value \"high\""},
        {"[assurance]\nlevel = iak\n", "policy.conf:2: unknown key \"level\""},
        {"[assurance Acme]\nminimum = iak\n", "policy.conf:2: section [assurance Acme]"},
        {"[assurance \"\"]\nminimum = iak\n", "policy.conf:2: section [assurance \"\"]"},
        {"[assurance \"A\" \"B\" \"C\"]\nminimum = iak\n", "policy.conf:2: section"},
        {"[assurances]\nminimum = iak\n", "policy.conf:2: section [assurances]"},
        {"[policy]\nrequire_iak = yes\n[assurance]\nminimum = iak\n",
         "policy.conf:4: key \"minimum\": the default minimum is already set"},
        {"[assurance]\nminimum = iak\n[policy]\nrequire_iak = no\n",
         "policy.conf:4: key \"require_iak\": the default minimum is already set"},
        {"[other]\nx = 1\n", "policy.conf:2: key \"x\" in unknown section [other]"},
        {"allow_model = M\n", "policy.conf:1: key \"allow_model\" in unknown section []"},
        {"[denylist]\nfingerprint = abcd\n", "policy.conf:2: key \"fingerprint\""},
        {"[policy]\nthis is not ini\n", "policy.conf:2: syntax error"},
        {"[policy\n", "policy.conf:1: syntax error"},
    };
    struct policy *p = (struct policy *)1;
    char why[256], big[400];
    size_t i;

    for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        p = (struct policy *)1;
        assert_int_equal(policy_of(&p, cases[i].text, why, sizeof(why)), DEVID_ERR_CONFIG);
        assert_null(p);
        if (strstr(why, cases[i].want) == NULL)
            fail_msg("case %zu: \"%s\" lacks \"%s\"", i, why, cases[i].want);
    }
    memset(big, 'x', sizeof(big));
    memcpy(big, "[policy]\nallow_model = ", 23);
    big[sizeof(big) - 1] = '\0';
    assert_int_equal(policy_of(&p, big, why, sizeof(why)), DEVID_ERR_CONFIG);
    assert_non_null(strstr(why, "policy.conf:2: line longer than"));
    assert_int_equal(policy_parse(&p, "[policy]\0x", 10, "policy.conf", why, sizeof(why)),
                     DEVID_ERR_CONFIG);
    assert_non_null(strstr(why, "NUL"));
}

static void test_mfrconf(void **state)
{
    static const char text[] =
        "[manufacturer \"Acme Devices\"]\n"
        "roots = a.pem\n"
        "roots = b.pem\n"
        "intermediates = i.pem\n"
        "crl = c.crl\n"
        "min_rsa_bits = 3072\n"
        "min_ec_bits = 384\n"
        "allow_sha1 = yes\n"
        "[manufacturer \"Beta\"]\n"
        "roots = /abs/beta.pem\n"
        "crl = x.crl\n"
        "revocation = hard\n"
        "[tpm_vendor \"Beta\"]\n"
        "roots = tpm.pem\n"
        "max_depth = 4\n";
    struct mfrconf *c = NULL;
    char why[256];

    assert_int_equal(mfrconf_parse(&c, text, strlen(text), "m.conf", why, sizeof(why)), 0);
    assert_string_equal(c->entries[0]->name, "Acme Devices");
    assert_int_equal(c->entries[0]->n_roots, 2);
    assert_int_equal(c->entries[0]->settings.min_rsa_bits, 3072);
    assert_int_equal(c->entries[0]->settings.min_ec_bits, 384);
    assert_int_equal(c->entries[0]->settings.allow_sha1, 1);
    assert_int_equal(c->entries[0]->settings.revocation, CHAIN_REVOCATION_SOFT);
    assert_int_equal(c->entries[1]->settings.revocation, CHAIN_REVOCATION_HARD);
    /* A TPM vendor may share a manufacturer's name: it is another kind. */
    assert_int_equal(c->n, 3);
    assert_int_equal(c->entries[1]->kind, MFRCONF_MANUFACTURER);
    assert_int_equal(c->entries[2]->kind, MFRCONF_TPM_VENDOR);
    assert_string_equal(c->entries[2]->name, "Beta");
    assert_int_equal(c->entries[2]->n_roots, 1);
    assert_int_equal(c->entries[2]->settings.max_depth, 4);
    assert_int_equal(c->entries[2]->settings.revocation, CHAIN_REVOCATION_NONE);
    mfrconf_free(c);
    mfrconf_free(NULL);
}

static void test_mfrconf_errors(void **state)
{
    static const struct {
        const char *text, *want;
    } cases[] = {
        {"[manufacturer \"A\"]\nroots = a\nbogus = 1\n", "m.conf:3: unknown key \"bogus\""},
        {"[Acme]\nroots = a\n", "m.conf:2: key \"roots\" in section [Acme]"},
        {"[manufacturer \"A\"]\nroots = a\nmin_rsa_bits = 512\n", "m.conf:3: key \"min_rsa_bits\""},
        {"[manufacturer \"A\"]\nroots = a\nmin_ec_bits = big\n", "m.conf:3: key \"min_ec_bits\""},
        {"[manufacturer \"A\"]\nroots = a\nrevocation = maybe\n", "m.conf:3: key \"revocation\""},
        {"[manufacturer \"A\"]\nroots = a\nallow_sha1 = 2\n", "m.conf:3: key \"allow_sha1\""},
        {"[manufacturer \"A\"]\ncrl = c\n", "manufacturer \"A\" has no roots file"},
        {"[manufacturer \"A\"]\nroots = a\ncrl = c\nrevocation = none\n", "revocation = none"},
        {"# nothing\n", "no [manufacturer"},
        {"[tpm_vendor \"T\"]\nroots = t\n", "no [manufacturer"},
        {"[manufacturer \"A\"]\nroots = a\n[tpm_vendor \"T\"]\ncrl = c\n",
         "TPM vendor \"T\" has no roots file"},
        {"[manufacturer \"A\"]\nroots = a\n[tpm_vendor \"T\"]\nroots = t\nek = 1\n",
         "m.conf:5: unknown key \"ek\" in section [tpm_vendor \"T\"]"},
    };
    struct mfrconf *c;
    char why[256];
    size_t i;

    for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        c = (struct mfrconf *)1;
        assert_int_equal(
            mfrconf_parse(&c, cases[i].text, strlen(cases[i].text), "m.conf", why, sizeof(why)),
            DEVID_ERR_CONFIG);
        assert_null(c);
        if (strstr(why, cases[i].want) == NULL)
            fail_msg("case %zu: \"%s\" lacks \"%s\"", i, why, cases[i].want);
    }
}

static void write_file(const char *path, const char *text)
{
    FILE *f = fopen(path, "w");

    assert_non_null(f);
    assert_true(fputs(text, f) >= 0);
    fclose(f);
}

static void test_trust_load_files(void **state)
{
    static const struct tu_cert_spec root_spec = {.o = "Acme Devices",
                                                  .cn = "Acme Root",
                                                  .ca = 1,
                                                  .not_before = TU_NOW - TU_DAY,
                                                  .not_after = TU_NOW + TU_DAY};
    char dir[] = "/tmp/devid-trust-XXXXXX", path[512], mconf[512], pconf[512], why[512];
    EVP_PKEY *k = tu_ec_key();
    X509 *root = tu_cert(&root_spec, k, NULL, k);
    struct trust *t = NULL;
    FILE *f;

    assert_non_null(mkdtemp(dir));
    snprintf(path, sizeof(path), "%s/root.pem", dir);
    assert_non_null(f = fopen(path, "w"));
    assert_int_equal(PEM_write_X509(f, root), 1);
    fclose(f);
    snprintf(mconf, sizeof(mconf), "%s/m.conf", dir);
    snprintf(pconf, sizeof(pconf), "%s/p.conf", dir);
    write_file(mconf, "[manufacturer \"Acme Devices\"]\nroots = root.pem\n");
    write_file(pconf, "[policy]\nallow_manufacturer = Acme Devices\n");
    assert_int_equal(trust_new_from_files(&t, mconf, pconf, why, sizeof(why)), 0);
    assert_int_equal(chain_store_root_count(trust_get0_store(t)), 1);
    assert_true(chain_store_has_manufacturer(trust_get0_store(t), "Acme Devices"));
    assert_int_equal(chain_store_root_count(trust_get0_ek_store(t)), 0);
    trust_free(t);
    assert_int_equal(trust_new_from_files(&t, mconf, NULL, why, sizeof(why)), 0);
    trust_free(t);
    trust_free(NULL);
    /* The same root as a TPM vendor's: in the EK store, not the IDevID one. */
    write_file(mconf,
               "[manufacturer \"Other\"]\nroots = root.pem\n"
               "[tpm_vendor \"Acme Devices\"]\nroots = root.pem\n");
    assert_int_equal(trust_new_from_files(&t, mconf, NULL, why, sizeof(why)), 0);
    assert_int_equal(chain_store_root_count(trust_get0_ek_store(t)), 1);
    assert_true(chain_store_has_manufacturer(trust_get0_ek_store(t), "Acme Devices"));
    assert_false(chain_store_has_manufacturer(trust_get0_store(t), "Acme Devices"));
    trust_free(t);
    t = NULL;
    write_file(mconf, "[manufacturer \"Acme Devices\"]\nroots = root.pem\n");

    t = (struct trust *)1;
    write_file(pconf, "[policy]\nallow_manufacturer = Nobody\n");
    assert_int_equal(trust_new_from_files(&t, mconf, pconf, why, sizeof(why)), DEVID_ERR_CONFIG);
    assert_null(t);
    assert_non_null(strstr(why, "\"Nobody\" is not configured"));
    write_file(mconf, "[manufacturer \"Acme Devices\"]\nroots = missing.pem\n");
    assert_int_equal(trust_new_from_files(&t, mconf, NULL, why, sizeof(why)), DEVID_ERR_IO);
    assert_non_null(strstr(why, "missing.pem: cannot open"));
    write_file(mconf, "[manufacturer \"Acme Devices\"]\nroots = root.pem\ncrl = root.pem\n");
    assert_int_equal(trust_new_from_files(&t, mconf, NULL, why, sizeof(why)), DEVID_ERR_CONFIG);
    assert_non_null(strstr(why, "bad CRL"));
    write_file(mconf, "[manufacturer \"Acme Devices\"]\nroots = root.pem\nroots = root.pem\n");
    assert_int_equal(trust_new_from_files(&t, mconf, NULL, why, sizeof(why)), DEVID_ERR_CONFIG);
    assert_non_null(strstr(why, "refused"));
    assert_int_equal(trust_new_from_files(&t, "/nonexistent/m.conf", NULL, why, sizeof(why)),
                     DEVID_ERR_IO);
    assert_null(t);

    unlink(path);
    unlink(mconf);
    unlink(pconf);
    rmdir(dir);
    X509_free(root);
    EVP_PKEY_free(k);
}

#define PCR_A "dc2fca0a8d215a67ebebf7180e8d345e8b031780dbac8974faab8e6cebf92b94"
#define PCR_B "39B3CAFA66FCD81527F88C3969412A5CE616C5F4688A78D61344D943496E2159"

/* A PCR value of |hex| (64 digits, any case). */
static struct quote_pcr pcr_of(unsigned index, const char *hex)
{
    struct quote_pcr v;
    size_t i;
    unsigned x;

    v.index = index;
    for (i = 0; i < 32; i++) {
        assert_int_equal(sscanf(hex + 2 * i, "%2x", &x), 1);
        v.sha256[i] = (uint8_t)x;
    }
    return v;
}

/* pcr.N in [assurance "MFR" "MODEL"] and [assurance "MFR"]: the model's
 * rules replace the manufacturer's; the challenge names the PCRs; a value
 * outside the set is refused naming PCR, value and set. */
static void test_policy_pcrs(void **state)
{
    struct policy *p = NULL;
    struct device_identity x1 = ident("Acme Devices", "Gateway X1", "SN1");
    struct device_identity x2 = ident("Acme Devices", "Gateway X2", "SN2");
    struct device_identity beta = ident("Beta", "Gateway X1", "SN3");
    struct quote_pcr v[2];
    char why[512], rule[600];

    (void)state;
    assert_int_equal(policy_of(&p,
                               "[policy]\nallow_manufacturer = Acme Devices\n"
                               "[assurance \"Acme Devices\"]\npcr.0 = sha256:" PCR_A "\n"
                               "[assurance \"Acme Devices\" \"Gateway X1\"]\n"
                               "pcr.7 = sha256:" PCR_A " ,sha256:" PCR_B "\n"
                               "pcr.11 = sha256:" PCR_A "\n",
                               why, sizeof(why)),
                     0);
    assert_int_equal(policy_pcr_selection(p, &x1, rule, sizeof(rule)), 1u << 7 | 1u << 11);
    assert_string_equal(rule, "[assurance \"Acme Devices\" \"Gateway X1\"]");
    assert_int_equal(policy_pcr_selection(p, &x2, rule, sizeof(rule)), 1u << 0);
    assert_string_equal(rule, "[assurance \"Acme Devices\"]");
    assert_int_equal(policy_pcr_selection(p, &beta, rule, sizeof(rule)), 0);
    assert_string_equal(rule, "");
    /* Gateway X1: PCR 7 either value, PCR 11 the one; PCR 0 is not its. */
    v[0] = pcr_of(7, PCR_B);
    v[1] = pcr_of(11, PCR_A);
    assert_int_equal(policy_check_pcrs(p, &x1, v, 2, why, sizeof(why)), 0);
    v[0] = pcr_of(7, PCR_A);
    assert_int_equal(policy_check_pcrs(p, &x1, v, 2, why, sizeof(why)), 0);
    v[1] = pcr_of(11, PCR_B);
    assert_int_equal(policy_check_pcrs(p, &x1, v, 2, why, sizeof(why)), DEVID_ERR_PCR_VALUE);
    assert_string_equal(why,
                        "PCR 11 of model \"Gateway X1\" of \"Acme Devices\" holds "
                        "sha256:39b3cafa66fcd81527f88c3969412a5ce616c5f4688a78d61344d943496e2159"
                        ", which [assurance \"Acme Devices\" \"Gateway X1\"] does not allow; "
                        "allowed: sha256:" PCR_A);
    assert_int_equal(policy_check_pcrs(p, &x1, v, 1, why, sizeof(why)), DEVID_ERR_PCR_VALUE);
    assert_non_null(
        strstr(why, "PCR 11 of model \"Gateway X1\" of \"Acme Devices\" was not quoted"));
    /* Gateway X2: the manufacturer's PCR 0. */
    v[0] = pcr_of(0, PCR_A);
    assert_int_equal(policy_check_pcrs(p, &x2, v, 1, why, sizeof(why)), 0);
    assert_int_equal(policy_check_pcrs(p, &x2, NULL, 0, why, sizeof(why)), DEVID_ERR_PCR_VALUE);
    /* No rules: nothing to check. */
    assert_int_equal(policy_check_pcrs(p, &beta, NULL, 0, why, sizeof(why)), 0);
    policy_free(p);
}

static void test_policy_pcr_errors(void **state)
{
    static const struct {
        const char *text, *want;
    } cases[] = {
        {"[assurance]\npcr.7 = sha256:" PCR_A "\n",
         "policy.conf:2: key \"pcr.7\": PCR rules belong"},
        {"[assurance \"A\"]\npcr.24 = sha256:" PCR_A "\n", "want pcr.N with N a PCR index 0 to 23"},
        {"[assurance \"A\"]\npcr.07 = sha256:" PCR_A "\n", "want pcr.N"},
        {"[assurance \"A\"]\npcr. = sha256:" PCR_A "\n", "want pcr.N"},
        {"[assurance \"A\"]\npcr.123 = sha256:" PCR_A "\n", "want pcr.N"},
        {"[assurance \"A\"]\npcr.7 = sha1:" PCR_A "\n", "not a comma-separated list of sha256:HEX"},
        {"[assurance \"A\"]\npcr.7 = sha256:abcd\n", "not a comma-separated list"},
        {"[assurance \"A\"]\npcr.7 = sha256:" PCR_A ",\n", "not a comma-separated list"},
        {"[assurance \"A\"]\npcr.7 = sha256:" PCR_A " x\n", "not a comma-separated list"},
        {"[assurance \"A\"]\npcr.0 = sha256:" PCR_A "\npcr.1 = sha256:" PCR_A
         "\npcr.2 = sha256:" PCR_A "\npcr.3 = sha256:" PCR_A "\npcr.4 = sha256:" PCR_A
         "\npcr.5 = sha256:" PCR_A "\npcr.6 = sha256:" PCR_A "\npcr.7 = sha256:" PCR_A
         "\npcr.8 = sha256:" PCR_A "\n",
         "more than 8 PCRs in one section"},
    };
    struct policy *p = NULL;
    char why[512];
    size_t i;

    (void)state;
    for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        assert_int_equal(policy_of(&p, cases[i].text, why, sizeof(why)), DEVID_ERR_CONFIG);
        assert_null(p);
        if (strstr(why, cases[i].want) == NULL)
            fail_msg("case %zu: \"%s\" lacks \"%s\"", i, why, cases[i].want);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_policy_file),
        cmocka_unit_test(test_policy_assurance),
        cmocka_unit_test(test_policy_unknown_manufacturer_denied),
        cmocka_unit_test(test_policy_errors),
        cmocka_unit_test(test_policy_pcrs),
        cmocka_unit_test(test_policy_pcr_errors),
        cmocka_unit_test(test_mfrconf),
        cmocka_unit_test(test_mfrconf_errors),
        cmocka_unit_test(test_trust_load_files),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

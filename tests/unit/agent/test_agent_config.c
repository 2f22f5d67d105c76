/* Unit tests for agent/config.c: the INI parser and the flag checks. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "agent/core/config.h"
#include "common/err.h"

static void parse_ok(void **state)
{
    static const char text[] =
        "# a comment\n"
        "[verifier]\n"
        "url = https://verifier.example:8443\n"
        "ca_bundle = /etc/devid/verifier-ca.pem\n"
        "proxy = http://proxy:3128\n"
        "tls_version = 1.3\n"
        "[tpm]\n"
        "tcti = tabrmd:bus_type=system\n"
        "idevid_handle = 0x81020010\n"
        "idevid_cert_nv = 0x01C90010\n"
        "iak_handle = 0x81020002\n"
        "iak_cert_file = /etc/devid/iak.pem\n"
        "chain_nv = 0x01C90001\n"
        "chain_file = /etc/devid/chain.pem\n"
        "persist_handle = 0x81020001\n"
        "[output]\n"
        "dir = /var/lib/devid-test\n"
        "[retry]\n"
        "request_timeout = 10\n"
        "deadline = 600\n"
        "backoff_initial = 250\n"
        "backoff_max = 30000\n"
        "[renew]\n"
        "renew_at = 0.5\n";
    struct agent_config cfg;
    char err[256] = "";

    (void)state;
    assert_int_equal(agent_config_init(&cfg), 0);
    assert_int_equal(agent_config_parse(&cfg, err, sizeof(err), text, "agent.conf"), 0);
    assert_string_equal(cfg.url, "https://verifier.example:8443");
    assert_string_equal(cfg.ca_bundle, "/etc/devid/verifier-ca.pem");
    assert_string_equal(cfg.proxy, "http://proxy:3128");
    assert_int_equal(cfg.tls_version, CONFIG_TLS_1_3);
    assert_string_equal(cfg.tcti, "tabrmd:bus_type=system");
    assert_int_equal(cfg.idevid_handle, 0x81020010u);
    assert_int_equal(cfg.idevid_nv, 0x01C90010u);
    assert_int_equal(cfg.iak_handle, 0x81020002u);
    assert_int_equal(cfg.iak_nv, CONFIG_DEFAULT_IAK_NV);
    assert_string_equal(cfg.iak_cert_file, "/etc/devid/iak.pem");
    assert_int_equal(cfg.chain_nv, 0x01C90001u);
    assert_int_equal(cfg.chain_nv_last, 0);
    assert_string_equal(cfg.chain_file, "/etc/devid/chain.pem");
    assert_int_equal(cfg.persist_handle, 0x81020001u);
    assert_string_equal(cfg.out_dir, "/var/lib/devid-test");
    assert_int_equal(cfg.timeout, 10);
    assert_int_equal(cfg.deadline, 600);
    assert_int_equal(cfg.backoff_initial_ms, 250);
    assert_int_equal(cfg.backoff_max_ms, 30000);
    assert_true(cfg.renew_at > 0.49 && cfg.renew_at < 0.51);
    assert_int_equal(agent_config_check(&cfg, err, sizeof(err)), 0);
    agent_config_cleanup(&cfg);
}

static void defaults(void **state)
{
    struct agent_config cfg;
    char err[256] = "";

    (void)state;
    assert_int_equal(agent_config_init(&cfg), 0);
    assert_int_equal(agent_config_parse(&cfg, err, sizeof(err), "", "empty"), 0);
    assert_string_equal(cfg.tcti, CONFIG_DEFAULT_TCTI);
    assert_string_equal(cfg.out_dir, CONFIG_DEFAULT_OUT_DIR);
    assert_int_equal(cfg.idevid_handle, CONFIG_DEFAULT_IDEVID_HANDLE);
    assert_int_equal(cfg.iak_handle, 0);
    assert_int_equal(cfg.persist_handle, 0);
    assert_int_equal(cfg.ak, CONFIG_AK_OFF);
    assert_int_equal(cfg.deadline, CONFIG_DEFAULT_DEADLINE);
    /* No verifier: not enough to enroll. */
    assert_int_equal(agent_config_check(&cfg, err, sizeof(err)), DEVID_ERR_CONFIG);
    assert_non_null(strstr(err, "url"));
    agent_config_cleanup(&cfg);
    agent_config_cleanup(NULL);
}

/* expect_error parses |text| and checks the message names |where| and |why|. */
static void expect_error(const char *text, const char *where, const char *why)
{
    struct agent_config cfg;
    char err[256] = "";

    assert_int_equal(agent_config_init(&cfg), 0);
    assert_int_equal(agent_config_parse(&cfg, err, sizeof(err), text, "/etc/devid/agent.conf"),
                     DEVID_ERR_CONFIG);
    if (strstr(err, where) == NULL || strstr(err, why) == NULL)
        fail_msg("message \"%s\" lacks \"%s\" or \"%s\"", err, where, why);
    agent_config_cleanup(&cfg);
}

static void errors_name_file_line_reason(void **state)
{
    (void)state;
    expect_error("[verifier]\nurl = https://x\nbogus = 1\n",
                 "/etc/devid/agent.conf:3:", "unknown key \"bogus\" in section [verifier]");
    expect_error("[nope]\nurl = x\n", "agent.conf:2:", "unknown section [nope]");
    expect_error("url = x\n", "agent.conf:1:", "outside any section");
    expect_error("[tpm]\n\nidevid_handle = 0x01C90000\n",
                 "agent.conf:3:", "not a persistent handle");
    expect_error("[tpm]\nidevid_handle = 81020000x\n", "agent.conf:2:", "idevid_handle");
    expect_error("[tpm]\nidevid_handle = -1\n", "agent.conf:2:", "idevid_handle");
    expect_error("[tpm]\nidevid_handle = 0x181020000\n", "agent.conf:2:", "idevid_handle");
    expect_error("[tpm]\nchain_nv = 0x81000001\n", "agent.conf:2:", "not a NV index");
    expect_error("[tpm]\nchain_nv = 0x01C001FF-0x01C00100\n",
                 "agent.conf:2:", "ends before it starts");
    expect_error("[tpm]\nchain_nv = 0x01C00100-0x81000001\n", "agent.conf:2:", "not a NV index");
    expect_error("[tpm]\nchain_nv = -0x01C00100\n", "agent.conf:2:", "FIRST-LAST");
    expect_error("[tpm]\nchain_nv = none-0x01C00100\n", "agent.conf:2:", "not a NV index");
    expect_error("[tpm]\ntcti =\n", "agent.conf:2:", "tcti: empty");
    expect_error("[verifier]\ntls_version = 1.1\n", "agent.conf:2:", "not 1.2, 1.3 or any");
    expect_error("[tpm]\nak = on\n", "agent.conf:2:", "ak: \"on\" is not auto or off");
    expect_error("[retry]\ndeadline = 0\n", "agent.conf:2:", "deadline");
    expect_error("[retry]\ndeadline = ten\n", "agent.conf:2:", "whole number");
    expect_error("[retry]\nrequest_timeout = 3601\n", "agent.conf:2:", "request_timeout");
    expect_error("[renew]\nrenew_at = 1.5\n", "agent.conf:2:", "fraction");
    expect_error("[renew]\nrenew_at = nan\n", "agent.conf:2:", "fraction");
    expect_error("[verifier]\nthis line has no equals sign\n", "agent.conf:2:", "syntax error");
    /* The first error is reported even when later lines are bad too. */
    expect_error("[tpm]\nx = 1\ny = 2\n", "agent.conf:2:", "\"x\"");
}

static void optional_handles(void **state)
{
    struct agent_config cfg;
    char err[256] = "";

    (void)state;
    assert_int_equal(agent_config_init(&cfg), 0);
    assert_int_equal(
        agent_config_parse(&cfg, err, sizeof(err), "[tpm]\niak_handle = 0x81020002\n", "a"), 0);
    assert_int_equal(cfg.iak_handle, 0x81020002u);
    assert_int_equal(agent_config_parse(&cfg, err, sizeof(err), "[tpm]\niak_handle = none\n", "b"),
                     0);
    assert_int_equal(cfg.iak_handle, 0);
    /* A flag is applied exactly like a file line, and wins. */
    assert_int_equal(
        agent_config_set(&cfg, err, sizeof(err), "tpm", "persist_handle", "0x81020001"), 0);
    assert_int_equal(cfg.persist_handle, 0x81020001u);
    assert_int_equal(
        agent_config_set(&cfg, err, sizeof(err), "tpm", "persist_handle", "0x01000000"),
        DEVID_ERR_CONFIG);
    assert_int_equal(cfg.persist_handle, 0x81020001u);
    assert_int_equal(agent_config_parse(&cfg, err, sizeof(err), "[tpm]\nak = auto\n", "c"), 0);
    assert_int_equal(cfg.ak, CONFIG_AK_AUTO);
    assert_int_equal(agent_config_set(&cfg, err, sizeof(err), "tpm", "ak", "off"), 0);
    assert_int_equal(cfg.ak, CONFIG_AK_OFF);
    agent_config_cleanup(&cfg);
}

/* chain_nv: one index (which may hold several certificates), a range (one
 * certificate in each defined index) or none. */
static void chain_nv_range(void **state)
{
    struct agent_config cfg;
    char err[256] = "";

    (void)state;
    assert_int_equal(agent_config_init(&cfg), 0);
    assert_int_equal(cfg.chain_nv, 0);
    assert_int_equal(cfg.chain_nv_last, 0);
    assert_int_equal(
        agent_config_set(&cfg, err, sizeof(err), "tpm", "chain_nv", "0x01C00100-0x01C001FF"), 0);
    assert_int_equal(cfg.chain_nv, 0x01C00100u);
    assert_int_equal(cfg.chain_nv_last, 0x01C001FFu);
    assert_int_equal(agent_config_set(&cfg, err, sizeof(err), "tpm", "chain_nv", "0x01C90001"), 0);
    assert_int_equal(cfg.chain_nv, 0x01C90001u);
    assert_int_equal(cfg.chain_nv_last, 0);
    assert_int_equal(
        agent_config_set(&cfg, err, sizeof(err), "tpm", "chain_nv", "0x01C90001-0x01C90001"), 0);
    assert_int_equal(cfg.chain_nv_last, 0x01C90001u);
    assert_int_equal(agent_config_set(&cfg, err, sizeof(err), "tpm", "chain_nv", "none"), 0);
    assert_int_equal(cfg.chain_nv, 0);
    assert_int_equal(cfg.chain_nv_last, 0);
    /* A range that takes in the IDevID's own index is refused. */
    assert_int_equal(agent_config_parse(&cfg, err, sizeof(err),
                                        "[verifier]\nurl = https://v:1\nca_bundle = ca.pem\n"
                                        "[tpm]\nchain_nv = 0x01C8FFFF-0x01C90001\n",
                                        "c"),
                     0);
    assert_int_equal(agent_config_check(&cfg, err, sizeof(err)), DEVID_ERR_CONFIG);
    assert_non_null(strstr(err, "chain_nv includes idevid_cert_nv 0x01c90000"));
    assert_int_equal(
        agent_config_set(&cfg, err, sizeof(err), "tpm", "chain_nv", "0x01C90001-0x01C900FF"), 0);
    assert_int_equal(agent_config_check(&cfg, err, sizeof(err)), 0);
    agent_config_cleanup(&cfg);
}

static void check_coherence(void **state)
{
    struct agent_config cfg;
    char err[256] = "";

    (void)state;
    assert_int_equal(agent_config_init(&cfg), 0);
    assert_int_equal(agent_config_parse(&cfg, err, sizeof(err),
                                        "[verifier]\nurl = https://v:1\nca_bundle = ca.pem\n", "c"),
                     0);
    assert_int_equal(agent_config_check(&cfg, err, sizeof(err)), 0);

    cfg.persist_handle = cfg.idevid_handle;
    assert_int_equal(agent_config_check(&cfg, err, sizeof(err)), DEVID_ERR_CONFIG);
    assert_non_null(strstr(err, "would replace the IDevID"));
    cfg.persist_handle = 0;

    assert_int_equal(agent_config_set(&cfg, err, sizeof(err), "verifier", "url", "http://v:1"), 0);
    assert_int_equal(agent_config_check(&cfg, err, sizeof(err)), DEVID_ERR_CONFIG);
    assert_non_null(strstr(err, "not an https:// URL"));
    assert_int_equal(agent_config_set(&cfg, err, sizeof(err), "verifier", "url", "https://v:1"), 0);

    cfg.backoff_initial_ms = 5000;
    cfg.backoff_max_ms = 1000;
    assert_int_equal(agent_config_check(&cfg, err, sizeof(err)), DEVID_ERR_CONFIG);
    assert_non_null(strstr(err, "backoff_max"));
    cfg.backoff_max_ms = 60000;

    cfg.deadline = 5;
    assert_int_equal(agent_config_check(&cfg, err, sizeof(err)), DEVID_ERR_CONFIG);
    assert_non_null(strstr(err, "deadline"));
    cfg.deadline = 300;

    assert_int_equal(
        agent_config_set(&cfg, err, sizeof(err), "tpm", "tcti", "swtpm:host=127.0.0.1,port=2321"),
        0);
    /* A bare swtpm is fine: the agent keeps one TPM connection (tpmprov). */
    assert_int_equal(agent_config_check(&cfg, err, sizeof(err)), 0);
    agent_config_cleanup(&cfg);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(parse_ok),
        cmocka_unit_test(defaults),
        cmocka_unit_test(errors_name_file_line_reason),
        cmocka_unit_test(optional_handles),
        cmocka_unit_test(chain_nv_range),
        cmocka_unit_test(check_coherence),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

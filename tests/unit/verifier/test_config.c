/* Unit tests for the verifier's INI configuration parser and the metrics
 * renderer. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>
#include <openssl/ssl.h>

#include "common/err.h"
#include "verifier/core/config.h"
#include "verifier/core/metrics.h"

static void test_defaults(void **state)
{
    struct verifier_config c;

    verifier_config_init(&c);
    assert_string_equal(c.listen, "0.0.0.0:8443");
    assert_string_equal(c.metrics_listen, "127.0.0.1:9443");
    assert_int_equal(c.tls_min, TLS1_2_VERSION);
    assert_int_equal(c.max_connections, 16384);
    assert_int_equal(c.timeout_hello, 5);
    assert_int_equal(c.timeout_request, 10);
    assert_string_equal(c.roots, "/etc/devid/roots");
    assert_null(c.proxy_from);
    assert_int_equal(c.crl_poll_seconds, 2);
    assert_null(c.log_key);
    assert_null(c.token_key);
    assert_null(c.token_accept_key);
    assert_int_equal(c.log_poll_seconds, 1);
    assert_int_equal(c.log_sign_seconds, 300);
    assert_string_equal(c.assurance_arc, "2.25.155771893908230422273977835285324693140");
    verifier_config_cleanup(&c);
}

static void test_parse_good(void **state)
{
    static const char text[] =
        "# comment\n"
        "[server]\n"
        "listen = 127.0.0.1:9000\n"
        "workers = 3\n"
        "replica_id = r1\n"
        "[tls]\n"
        "cert = /t/server.pem\n"
        "min_version = 1.3\n"
        "[ca]\n"
        "validity_days = 30\n"
        "assurance_policy_arc = 1.3.6.1.4.1.32473.7\n"
        "[token]\n"
        "key_file = /t/token.key\n"
        "accept_key_file = /t/token-accept.key\n"
        "ttl_seconds = 60\n"
        "[limits]\n"
        "max_connections = 8\n"
        "max_body_enroll = 4096\n"
        "[server]\n"
        "proxy_from = 127.0.0.1, 10.0.0.0/8 fd00::/8\n"
        "[crl]\n"
        "poll_seconds = 7\n"
        "[log]\n"
        "key = /t/log.key\n"
        "poll_seconds = 3\n"
        "sign_seconds = 60\n"
        "[timeouts]\n"
        "idle = 5\n";
    struct verifier_config c;
    char err[256] = "";

    verifier_config_init(&c);
    assert_int_equal(verifier_config_parse(&c, text, strlen(text), "v.conf", err, sizeof(err)), 0);
    assert_string_equal(c.listen, "127.0.0.1:9000");
    assert_int_equal(c.workers, 3);
    assert_string_equal(c.tls_cert, "/t/server.pem");
    assert_int_equal(c.tls_min, TLS1_3_VERSION);
    assert_int_equal(c.validity_seconds, 30L * 86400);
    assert_int_equal(c.token_ttl_seconds, 60);
    assert_string_equal(c.token_key, "/t/token.key");
    assert_string_equal(c.token_accept_key, "/t/token-accept.key");
    assert_int_equal(c.max_connections, 8);
    assert_int_equal(c.max_body_enroll, 4096);
    assert_int_equal(c.timeout_idle, 5);
    assert_string_equal(c.replica_id, "r1");
    assert_string_equal(c.proxy_from, "127.0.0.1, 10.0.0.0/8 fd00::/8");
    assert_int_equal(c.crl_poll_seconds, 7);
    assert_string_equal(c.log_key, "/t/log.key");
    assert_int_equal(c.log_poll_seconds, 3);
    assert_int_equal(c.log_sign_seconds, 60);
    assert_string_equal(c.assurance_arc, "1.3.6.1.4.1.32473.7");
    verifier_config_cleanup(&c);
}

static void expect_error(const char *text, const char *want)
{
    struct verifier_config c;
    char err[256] = "";

    verifier_config_init(&c);
    assert_int_equal(verifier_config_parse(&c, text, strlen(text), "v.conf", err, sizeof(err)),
                     DEVID_ERR_CONFIG);
    if (strstr(err, want) == NULL)
        fail_msg("error \"%s\" does not contain \"%s\"", err, want);
    verifier_config_cleanup(&c);
}

static void test_parse_errors(void **state)
{
    expect_error("[server]\nlisten = a:1\nbogus = 1\n",
                 "v.conf:3: unknown key \"bogus\" in section [server]");
    expect_error("[nowhere]\nx = 1\n", "v.conf:2: unknown section [nowhere]");
    expect_error("[server]\nlisten = a:1\nproxy_from = 127.0.0.1, 10.0.0.0/33\n",
                 "v.conf:3: [server] proxy_from: \"10.0.0.0/33\" is not an IPv4 or IPv6 address");
    expect_error("[server]\nproxy_from =\n", "must not be empty");
    expect_error("[crl]\npoll_seconds = 0\n", "v.conf:2: [crl] poll_seconds must be");
    expect_error("[log]\nsign_seconds = 0\n", "v.conf:2: [log] sign_seconds must be");
    expect_error("[limits]\nmax_connections = 0\n", "v.conf:2: [limits] max_connections must be");
    expect_error("[limits]\nmax_connections = 12abc\n", "v.conf:2:");
    expect_error("[tls]\nmin_version = 1.1\n", "must be 1.2 or 1.3");
    expect_error("[tls]\ncert =\n", "must not be empty");
    expect_error("[token]\naccept_key_file =\n", "[token] accept_key_file must not be empty");
    expect_error("[server]\nthis is not ini\n", "v.conf:2: syntax error");
    expect_error("[timeouts]\nrequest = 99999999999999999999\n", "v.conf:2:");
    expect_error("[ca]\nassurance_policy_arc = 1.3.x\n",
                 "v.conf:2: [ca] assurance_policy_arc must be a dotted-decimal OID");
    expect_error("[ca]\nassurance_policy_arc = 7\n", "v.conf:2: [ca] assurance_policy_arc");
}

/* Every key names its section and key, and the one past the last is refused;
 * the man page generator (deploy/man) walks the table this way. */
static void test_key_names(void **state)
{
    const char *section = "x", *name = "x";
    size_t i;

    (void)state;
    assert_int_equal(verifier_config_get0_key(0, &section, &name), 0);
    assert_string_equal(section, "server");
    assert_string_equal(name, "listen");
    for (i = 0; verifier_config_get0_key(i, &section, &name) == 0; i++) {
        assert_non_null(section);
        assert_non_null(name);
        assert_non_null(verifier_config_get0_option(i));
    }
    assert_null(verifier_config_get0_option(i));
    assert_int_equal(verifier_config_get0_key(i, &section, &name), DEVID_ERR_NOT_FOUND);
    assert_null(section);
    assert_null(name);
    assert_int_equal(verifier_config_get0_key(0, NULL, &name), DEVID_ERR_INVALID_ARGUMENT);
}

/* The accept-only token key is [token] accept_key_file in the file and
 * --token-accept-key on the command line, where "" leaves it unset. */
static void test_token_accept_option(void **state)
{
    const struct verifier_config_option *o;
    const char *section = NULL, *name = NULL;
    struct verifier_config c;
    char why[256];
    size_t i;

    (void)state;
    for (i = 0; (o = verifier_config_get0_option(i)) != NULL; i++) {
        if (strcmp(o->name, "token-accept-key") == 0)
            break;
    }
    assert_non_null(o);
    assert_string_equal(o->arg, "FILE");
    assert_int_equal(verifier_config_get0_key(i, &section, &name), 0);
    assert_string_equal(section, "token");
    assert_string_equal(name, "accept_key_file");
    verifier_config_init(&c);
    assert_int_equal(verifier_config_set_option(&c, i, "/t/next.key", why, sizeof(why)), 0);
    assert_string_equal(c.token_accept_key, "/t/next.key");
    assert_int_equal(verifier_config_set_option(&c, i, "", why, sizeof(why)), 0);
    assert_string_equal(c.token_accept_key, "");
    verifier_config_cleanup(&c);
}

static void test_metrics_render(void **state)
{
    static struct metrics a, b;
    struct metrics *all[2] = {&a, &b};
    struct metrics_gauges g = {
        .connections_open = 3, .workers = 2, .crl_number = 17, .proxy_refusals = 4};
    char buf[16384];
    long n;

    metrics_enroll_done(&a, 0, 0.002);
    metrics_enroll_done(&b, 0, 0.3);
    metrics_enroll_done(&b, DEVID_ERR_POLICY_DENIED, 0.001);
    metrics_challenge_done(&a, 0);
    n = metrics_render(buf, sizeof(buf), all, 2, &g);
    assert_true(n > 0);
    assert_non_null(strstr(buf, "devid_enrollments_total{result=\"issued\",reason=\"\"} 2\n"));
    assert_non_null(strstr(
        buf, "devid_enrollments_total{result=\"refused\",reason=\"REASON_POLICY_DENIED\"} 1\n"));
    assert_non_null(strstr(buf, "devid_enroll_duration_seconds_bucket{le=\"0.0025\"} 2\n"));
    assert_non_null(strstr(buf, "devid_enroll_duration_seconds_bucket{le=\"+Inf\"} 3\n"));
    assert_non_null(strstr(buf, "devid_enroll_duration_seconds_count 3\n"));
    assert_non_null(strstr(buf, "devid_connections_open 3\n"));
    assert_non_null(strstr(buf, "devid_crl_number 17\n"));
    assert_non_null(strstr(buf, "devid_crl_build_failures_total 0\n"));
    assert_non_null(strstr(buf, "devid_proxy_refusals_total 4\n"));
    assert_int_equal(metrics_render(buf, 64, all, 2, &g), -1);
}

/* The token keys loaded, and the tokens each opened: the accept-only key's
 * line appears only while it is loaded; its counter, always. */
static void test_metrics_token_keys(void **state)
{
    static struct metrics a, b;
    struct metrics *all[2] = {&a, &b};
    struct metrics_gauges g = {.workers = 2, .token_key_id = "0a1b2c3d"};
    char buf[16384];

    (void)state;
    metrics_token_opened(&a, TOKEN_KEY_CURRENT);
    metrics_token_opened(&b, TOKEN_KEY_CURRENT);
    metrics_token_opened(&b, TOKEN_KEY_ACCEPT);
    metrics_token_opened(&a, TOKEN_KEY_NONE);
    assert_true(metrics_render(buf, sizeof(buf), all, 2, &g) > 0);
    assert_non_null(strstr(buf,
                           "# TYPE devid_token_key_info gauge\n"
                           "devid_token_key_info{key=\"current\",id=\"0a1b2c3d\"} 1\n#"));
    assert_null(strstr(buf, "devid_token_key_info{key=\"accept\""));
    assert_non_null(strstr(buf,
                           "# TYPE devid_tokens_opened_total counter\n"
                           "devid_tokens_opened_total{key=\"current\"} 2\n"
                           "devid_tokens_opened_total{key=\"accept\"} 1\n"));
    g.token_accept_key_id = "e5f60718";
    assert_true(metrics_render(buf, sizeof(buf), all, 2, &g) > 0);
    assert_non_null(strstr(buf,
                           "devid_token_key_info{key=\"current\",id=\"0a1b2c3d\"} 1\n"
                           "devid_token_key_info{key=\"accept\",id=\"e5f60718\"} 1\n"));
}

/* The issuance log's gauges and the signer's answers by type and result. */
static void test_metrics_log_signer(void **state)
{
    static struct metrics a;
    struct metrics *all[1] = {&a};
    struct metrics_gauges g = {.workers = 1,
                               .log_entries = 1010,
                               .log_head_size = 1009,
                               .log_head_timestamp = 1796137959,
                               .log_failures = 2,
                               .log_stopped = 1,
                               .signer = {{300, 6, 1}, {4, 0, 0}, {12, 0, 3}}};
    char buf[32768], line[128];

    (void)state;
    assert_true(metrics_render(buf, sizeof(buf), all, 1, &g) > 0);
    assert_non_null(strstr(buf, "devid_log_entries 1010\n"));
    assert_non_null(strstr(buf, "devid_log_head_size 1009\n"));
    snprintf(line, sizeof(line), "devid_log_head_timestamp_seconds %lld\n", 1796137959LL);
    assert_non_null(strstr(buf, line));
    assert_non_null(strstr(buf, "devid_log_failures_total 2\n"));
    assert_non_null(strstr(buf, "devid_log_stopped 1\n"));
    assert_non_null(strstr(buf,
                           "# TYPE devid_signer_requests_total counter\n"
                           "devid_signer_requests_total{type=\"certificate\",result=\"signed\"} "
                           "300\n"
                           "devid_signer_requests_total{type=\"certificate\",result=\"refused\"} "
                           "6\n"));
    assert_non_null(strstr(buf, "devid_signer_requests_total{type=\"crl\",result=\"signed\"} 4\n"));
    assert_non_null(
        strstr(buf, "devid_signer_requests_total{type=\"tree_head\",result=\"failed\"} 3\n"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_defaults),
        cmocka_unit_test(test_parse_good),
        cmocka_unit_test(test_parse_errors),
        cmocka_unit_test(test_key_names),
        cmocka_unit_test(test_token_accept_option),
        cmocka_unit_test(test_metrics_render),
        cmocka_unit_test(test_metrics_log_signer),
        cmocka_unit_test(test_metrics_token_keys),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

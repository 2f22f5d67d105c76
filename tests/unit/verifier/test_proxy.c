/* Unit tests for verifier/core/proxy: PROXY protocol v2 headers and the
 * proxy_from address list. */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "common/err.h"
#include "verifier/core/proxy.h"

static const uint8_t sig[12] = {0x0d, 0x0a, 0x0d, 0x0a, 0x00, 0x0d,
                                0x0a, 0x51, 0x55, 0x49, 0x54, 0x0a};

/* 192.0.2.7:54321 -> 127.0.0.1:8443 over TCP4, with a CRC32C TLV (computed
 * independently of proxy.c). */
static const uint8_t tcp4_crc[] = {0x0d, 0x0a, 0x0d, 0x0a, 0x00, 0x0d, 0x0a, 0x51, 0x55,
                                   0x49, 0x54, 0x0a, 0x21, 0x11, 0x00, 0x13, 0xc0, 0x00,
                                   0x02, 0x07, 0x7f, 0x00, 0x00, 0x01, 0xd4, 0x31, 0x20,
                                   0xfb, 0x03, 0x00, 0x04, 0x96, 0x9f, 0x21, 0xc8};

/* header writes a v2 header with |ver_cmd|, |fam| and |body| to |out|. */
static size_t header(uint8_t *out, uint8_t ver_cmd, uint8_t fam, const uint8_t *body, size_t len)
{
    memcpy(out, sig, sizeof(sig));
    out[12] = ver_cmd;
    out[13] = fam;
    out[14] = (uint8_t)(len >> 8);
    out[15] = (uint8_t)len;
    if (len > 0)
        memcpy(out + 16, body, len);
    return 16 + len;
}

static int parse(enum proxy_found *found, struct proxy_header *h, size_t *need, const uint8_t *in,
                 size_t len)
{
    char why[256] = "";

    return proxy_parse(found, h, need, in, len, why, sizeof(why));
}

static void test_tcp4(void **state)
{
    struct proxy_header h;
    enum proxy_found found;
    char addr[PROXY_ADDR_LEN];
    size_t need = 0, i;

    (void)state;
    assert_int_equal(parse(&found, &h, &need, tcp4_crc, sizeof(tcp4_crc)), 0);
    assert_int_equal(found, PROXY_HEADER);
    assert_int_equal(h.len, sizeof(tcp4_crc));
    assert_int_equal(h.proxied, 1);
    assert_string_equal(proxy_addr_format(addr, sizeof(addr), (struct sockaddr *)&h.src),
                        "192.0.2.7:54321");
    assert_string_equal(proxy_addr_format(addr, sizeof(addr), (struct sockaddr *)&h.dst),
                        "127.0.0.1:8443");
    /* Every prefix asks for more, never past the header. */
    for (i = 0; i < sizeof(tcp4_crc); i++) {
        assert_int_equal(parse(&found, &h, &need, tcp4_crc, i), 0);
        assert_int_equal(found, PROXY_INCOMPLETE);
        assert_true(need > i && need <= sizeof(tcp4_crc));
    }
    assert_int_equal(parse(&found, &h, &need, tcp4_crc, 15), 0);
    assert_int_equal(need, 16);
    assert_int_equal(parse(&found, &h, &need, tcp4_crc, 16), 0);
    assert_int_equal(need, sizeof(tcp4_crc));
}

static void test_crc_mismatch(void **state)
{
    uint8_t bad[sizeof(tcp4_crc)];
    struct proxy_header h;
    enum proxy_found found;
    size_t need;

    (void)state;
    memcpy(bad, tcp4_crc, sizeof(bad));
    bad[19] ^= 1; /* another source address */
    assert_int_equal(parse(&found, &h, &need, bad, sizeof(bad)), DEVID_ERR_BAD_REQUEST);
    assert_int_equal(h.proxied, 0);
}

static void test_tcp6_and_local(void **state)
{
    uint8_t body[36] = {0}, buf[64];
    struct proxy_header h;
    enum proxy_found found;
    char addr[PROXY_ADDR_LEN];
    size_t need, n;

    (void)state;
    body[15] = 1;    /* ::1 */
    body[16] = 0xfd; /* fd00::2 */
    body[31] = 2;
    body[32] = 0x01; /* port 443 */
    body[33] = 0xbb;
    body[35] = 80;
    n = header(buf, 0x21, 0x21, body, sizeof(body));
    assert_int_equal(parse(&found, &h, &need, buf, n), 0);
    assert_int_equal(found, PROXY_HEADER);
    assert_string_equal(proxy_addr_format(addr, sizeof(addr), (struct sockaddr *)&h.src),
                        "[::1]:443");
    assert_string_equal(proxy_addr_format(addr, sizeof(addr), (struct sockaddr *)&h.dst),
                        "[fd00::2]:80");
    /* LOCAL (a health check): the connection's own address stands. */
    n = header(buf, 0x20, 0x00, NULL, 0);
    assert_int_equal(parse(&found, &h, &need, buf, n), 0);
    assert_int_equal(found, PROXY_HEADER);
    assert_int_equal(h.len, 16);
    assert_int_equal(h.proxied, 0);
    /* PROXY of an unspecified family: the same. */
    n = header(buf, 0x21, 0x00, body, 4);
    assert_int_equal(parse(&found, &h, &need, buf, n), 0);
    assert_int_equal(found, PROXY_HEADER);
    assert_int_equal(h.len, 20);
    assert_int_equal(h.proxied, 0);
}

static void test_absent(void **state)
{
    static const uint8_t hello[] = {0x16, 0x03, 0x01, 0x02, 0x00, 0x01};
    struct proxy_header h;
    enum proxy_found found;
    size_t need;

    (void)state;
    assert_int_equal(parse(&found, &h, &need, hello, sizeof(hello)), 0);
    assert_int_equal(found, PROXY_ABSENT);
    assert_int_equal(parse(&found, &h, &need, hello, 1), 0);
    assert_int_equal(found, PROXY_ABSENT);
    assert_int_equal(parse(&found, &h, &need, (const uint8_t *)"GET / HTTP/1.1", 14), 0);
    assert_int_equal(found, PROXY_ABSENT);
    assert_int_equal(parse(&found, &h, &need, hello, 0), 0);
    assert_int_equal(found, PROXY_INCOMPLETE);
    assert_int_equal(need, 1);
    /* a signature that breaks off late is not one */
    assert_int_equal(parse(&found, &h, &need, (const uint8_t *)"\r\n\r\n\0\r\nQUIX", 12), 0);
    assert_int_equal(found, PROXY_ABSENT);
}

static void test_refused(void **state)
{
    uint8_t body[64] = {0}, buf[1200];
    struct proxy_header h;
    enum proxy_found found;
    char why[256] = "";
    size_t need, n;

    (void)state;
    assert_int_equal(
        proxy_parse(&found, &h, &need, (const uint8_t *)"PROXY TCP4 1.2.3.4 5.6.7.8 1 2\r\n", 32,
                    why, sizeof(why)),
        DEVID_ERR_BAD_REQUEST);
    assert_non_null(strstr(why, "send-proxy-v2"));
    assert_int_equal(parse(&found, &h, &need, (const uint8_t *)"PROX", 4), 0);
    assert_int_equal(found, PROXY_INCOMPLETE);
    assert_int_equal(need, 6);
    n = header(buf, 0x11, 0x11, body, 12); /* version 1 in binary form */
    assert_int_equal(parse(&found, &h, &need, buf, n), DEVID_ERR_BAD_REQUEST);
    n = header(buf, 0x22, 0x11, body, 12); /* command 2 */
    assert_int_equal(parse(&found, &h, &need, buf, n), DEVID_ERR_BAD_REQUEST);
    n = header(buf, 0x21, 0x12, body, 12); /* UDP */
    assert_int_equal(parse(&found, &h, &need, buf, n), DEVID_ERR_BAD_REQUEST);
    n = header(buf, 0x21, 0x11, body, 8); /* TCP4 addresses cut short */
    assert_int_equal(parse(&found, &h, &need, buf, n), DEVID_ERR_BAD_REQUEST);
    body[12] = 0x01; /* a TLV of 16 bytes in 1 */
    body[14] = 16;
    n = header(buf, 0x21, 0x11, body, 16);
    assert_int_equal(parse(&found, &h, &need, buf, n), DEVID_ERR_BAD_REQUEST);
    body[14] = 1; /* a TLV of 1 byte in 1: fine */
    n = header(buf, 0x21, 0x11, body, 16);
    assert_int_equal(parse(&found, &h, &need, buf, n), 0);
    assert_int_equal(found, PROXY_HEADER);
    memset(buf, 0, sizeof(buf));
    n = header(buf, 0x21, 0x11, body, 12);
    buf[14] = 0x04; /* 1024 bytes announced */
    assert_int_equal(parse(&found, &h, &need, buf, 16), DEVID_ERR_TOO_LARGE);
}

static struct sockaddr_storage v4(const char *a)
{
    struct sockaddr_storage ss;
    struct sockaddr_in *s = (struct sockaddr_in *)&ss;

    memset(&ss, 0, sizeof(ss));
    s->sin_family = AF_INET;
    assert_int_equal(inet_pton(AF_INET, a, &s->sin_addr), 1);
    return ss;
}

static struct sockaddr_storage v6(const char *a)
{
    struct sockaddr_storage ss;
    struct sockaddr_in6 *s = (struct sockaddr_in6 *)&ss;

    memset(&ss, 0, sizeof(ss));
    s->sin6_family = AF_INET6;
    assert_int_equal(inet_pton(AF_INET6, a, &s->sin6_addr), 1);
    return ss;
}

static bool allows(const struct proxy_acl *acl, struct sockaddr_storage ss)
{
    return proxy_acl_allows(acl, (const struct sockaddr *)&ss);
}

static void test_acl(void **state)
{
    struct proxy_acl acl;
    char why[256];
    char many[1024] = "";
    int i;

    (void)state;
    assert_int_equal(
        proxy_acl_parse(&acl, "127.0.0.1, 10.0.0.0/8 fd00::/8,,192.168.1.128/25", why, sizeof(why)),
        0);
    assert_int_equal(acl.n, 4);
    assert_true(allows(&acl, v4("127.0.0.1")));
    assert_false(allows(&acl, v4("127.0.0.2")));
    assert_true(allows(&acl, v4("10.200.3.4")));
    assert_false(allows(&acl, v4("11.0.0.1")));
    assert_true(allows(&acl, v4("192.168.1.200")));
    assert_false(allows(&acl, v4("192.168.1.127")));
    assert_true(allows(&acl, v6("::ffff:10.9.9.9")));
    assert_true(allows(&acl, v6("fd12::1")));
    assert_false(allows(&acl, v6("::1")));
    assert_false(allows(&acl, v6("fe00::1")));
    assert_false(proxy_acl_allows(&acl, NULL));

    assert_int_equal(proxy_acl_parse(&acl, "", why, sizeof(why)), 0);
    assert_int_equal(acl.n, 0);
    assert_false(allows(&acl, v4("127.0.0.1")));
    assert_int_equal(proxy_acl_parse(&acl, "0.0.0.0/0", why, sizeof(why)), 0);
    assert_true(allows(&acl, v4("203.0.113.9")));
    assert_false(allows(&acl, v6("2001:db8::1")));

    assert_int_equal(proxy_acl_parse(&acl, "10.0.0.0/33", why, sizeof(why)), DEVID_ERR_CONFIG);
    assert_non_null(strstr(why, "\"10.0.0.0/33\""));
    assert_int_equal(acl.n, 0);
    assert_int_equal(proxy_acl_parse(&acl, "127.0.0.1, lb.example", why, sizeof(why)),
                     DEVID_ERR_CONFIG);
    assert_non_null(strstr(why, "lb.example"));
    assert_int_equal(proxy_acl_parse(&acl, "1.2.3.4/", why, sizeof(why)), DEVID_ERR_CONFIG);
    assert_int_equal(proxy_acl_parse(&acl, "/8", why, sizeof(why)), DEVID_ERR_CONFIG);
    assert_int_equal(proxy_acl_parse(&acl, "::1/129", why, sizeof(why)), DEVID_ERR_CONFIG);
    for (i = 0; i <= PROXY_ACL_MAX; i++)
        memcpy(many + 8 * i, "1.2.3.4 ", 9);
    assert_int_equal(proxy_acl_parse(&acl, many, why, sizeof(why)), DEVID_ERR_CONFIG);
    assert_non_null(strstr(why, "more than"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_tcp4),           cmocka_unit_test(test_crc_mismatch),
        cmocka_unit_test(test_tcp6_and_local), cmocka_unit_test(test_absent),
        cmocka_unit_test(test_refused),        cmocka_unit_test(test_acl),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}

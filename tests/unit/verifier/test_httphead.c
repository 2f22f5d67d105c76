/* Unit tests for verifier/core/httphead: every row of docs/protocol.md
 * section 3's table, the heads it accepts, and a head that arrives in
 * pieces. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "common/err.h"
#include "verifier/core/httphead.h"

static const struct httphead_limits lim = {8192, 32, 1024, 65536};

#define OK_CHALLENGE                           \
    "POST /v1/challenge HTTP/1.1\r\n"          \
    "Host: verifier.example:8443\r\n"          \
    "Content-Type: application/x-protobuf\r\n" \
    "Content-Length: 12\r\n"

/* parse runs httphead_parse over the NUL-terminated |head|. */
static int parse(struct httphead *h, const char *head)
{
    return httphead_parse(h, head, strlen(head), &lim);
}

/* refused checks that |head| (|len| bytes) is refused with |status| and a
 * close, and that |why| says |word|. */
static void refused_n(const char *head, size_t len, int status, const char *word)
{
    struct httphead h;

    assert_int_equal(httphead_parse(&h, head, len, &lim), DEVID_ERR_BAD_REQUEST);
    assert_int_equal(h.status, status);
    assert_true(h.close);
    if (strstr(h.why, word) == NULL)
        fail_msg("why \"%s\" does not say \"%s\"", h.why, word);
}

static void refused(const char *head, int status, const char *word)
{
    refused_n(head, strlen(head), status, word);
}

/* A string literal that holds a NUL, whole. */
#define REFUSED_LITERAL(s, status, word) refused_n((s), sizeof(s) - 1, (status), (word))

static void test_accepted(void **state)
{
    struct httphead h;

    assert_int_equal(parse(&h, OK_CHALLENGE "\r\nbody"), 0);
    assert_true(h.complete);
    assert_int_equal(h.route, HTTPHEAD_ROUTE_CHALLENGE);
    assert_int_equal(h.content_length, 12);
    assert_int_equal(h.head_len, strlen(OK_CHALLENGE "\r\n"));
    assert_true(h.keep_alive);
    assert_string_equal(h.method, "POST");
    assert_string_equal(h.target, "/v1/challenge");

    assert_int_equal(parse(&h, "GET /v1/crl HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"), 0);
    assert_int_equal(h.route, HTTPHEAD_ROUTE_CRL);
    assert_false(h.keep_alive);
    assert_int_equal(parse(&h, "GET /v1/log/head HTTP/1.1\r\nHost: x\r\n\r\n"), 0);
    assert_int_equal(h.route, HTTPHEAD_ROUTE_LOG_HEAD);
    /* Case-insensitive field names, a parameter, OWS, a query, obs-text. */
    assert_int_equal(parse(&h,
                           "POST /v1/enroll?x=1 HTTP/1.1\r\nhost:x\r\n"
                           "content-type:  Application/X-Protobuf; v=1 \r\n"
                           "CONTENT-LENGTH: 65536\r\nX-Note: caf\xc3\xa9\r\n"
                           "Expect: 100-continue\r\n\r\n"),
                     0);
    assert_int_equal(h.route, HTTPHEAD_ROUTE_ENROLL);
    assert_int_equal(h.content_length, 65536);
}

/* A head is judged only once it is complete, however it arrives, unless the
 * bytes so far already show it must be refused. */
static void test_in_pieces(void **state)
{
    const char *head = OK_CHALLENGE "\r\n";
    struct httphead h;
    size_t i;

    for (i = 0; i < strlen(head); i++) {
        assert_int_equal(httphead_parse(&h, head, i, &lim), 0);
        assert_false(h.complete);
    }
    assert_int_equal(httphead_parse(&h, head, strlen(head), &lim), 0);
    assert_true(h.complete);
    refused_n("POST /v1/challenge HTTP/1.1\nHo", 30, 400, "bare LF");
    assert_int_equal(httphead_parse(&h, "", 0, &lim), 0);
    assert_false(h.complete);
    assert_int_equal(httphead_parse(NULL, "", 0, &lim), DEVID_ERR_INVALID_ARGUMENT);
    assert_int_equal(httphead_parse(&h, NULL, 3, &lim), DEVID_ERR_INVALID_ARGUMENT);
}

static void test_paths_and_methods(void **state)
{
    struct httphead h;

    refused("GET /v1/nothing HTTP/1.1\r\nHost: x\r\n\r\n", 404, "no resource /v1/nothing");
    refused("POST /v1/challenge/ HTTP/1.1\r\nHost: x\r\n\r\n", 404, "no resource");
    refused("POST /.devid/refused HTTP/1.1\r\nHost: x\r\n\r\n", 404, "no resource");
    refused("PUT /v1/enroll HTTP/1.1\r\nHost: x\r\n\r\n", 405, "POST only");
    refused("DELETE /v1/crl HTTP/1.1\r\nHost: x\r\n\r\n", 405, "GET only");
    refused("BREW /v1/challenge HTTP/1.1\r\nHost: x\r\n\r\n", 405, "POST only");
    refused("post /v1/challenge HTTP/1.1\r\nHost: x\r\n\r\n", 405, "POST only");
    assert_int_equal(parse(&h, "GET /v1/enroll HTTP/1.1\r\nHost: x\r\n\r\n"),
                     DEVID_ERR_BAD_REQUEST);
    assert_string_equal(h.allow, "POST");
    assert_int_equal(parse(&h, "POST /v1/crl HTTP/1.1\r\nHost: x\r\n\r\n"), DEVID_ERR_BAD_REQUEST);
    assert_string_equal(h.allow, "GET");
    refused("GET /v1/crl HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\n\r\n", 400, "GET with a body");
    refused("POST /v1/log/head HTTP/1.1\r\nHost: x\r\n\r\n", 405, "GET only");
}

static void test_post_fields(void **state)
{
    refused("POST /v1/enroll HTTP/1.1\r\nHost: x\r\nContent-Type: application/x-protobuf\r\n\r\n",
            411, "without Content-Length");
    refused("POST /v1/enroll HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\n\r\n", 415,
            "application/x-protobuf");
    refused(
        "POST /v1/enroll HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\n"
        "Content-Type: application/json\r\n\r\n",
        415, "Content-Type");
    refused(
        "POST /v1/enroll HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\n"
        "Content-Type: application/x-protobuf\r\nContent-Type: application/x-protobuf\r\n\r\n",
        415, "Content-Type");
    refused(OK_CHALLENGE "Expect: 200-ok\r\n\r\n", 417, "Expect");
}

/* A POST to |path| with Content-Length |value|: refused with |status|. */
static void length_refused(const char *path, const char *value, int status, const char *word)
{
    char head[256];

    snprintf(head, sizeof(head),
             "POST %s HTTP/1.1\r\nHost: x\r\nContent-Type: application/x-protobuf\r\n"
             "Content-Length: %s\r\n\r\n",
             path, value);
    refused(head, status, word);
}

static void test_content_length(void **state)
{
    refused(OK_CHALLENGE "Content-Length: 12\r\n\r\n", 400, "more than one Content-Length");
    refused(OK_CHALLENGE "Content-Length: 13\r\n\r\n", 400, "more than one Content-Length");
    length_refused("/v1/challenge", "1,1", 400, "not a decimal");
    length_refused("/v1/challenge", "-1", 400, "not a decimal");
    length_refused("/v1/challenge", "", 400, "not a decimal");
    length_refused("/v1/challenge", "0x10", 400, "not a decimal");
    length_refused("/v1/challenge", "1025", 413, "over the limit of 1024");
    length_refused("/v1/enroll", "99999999999999999999", 400, "not a decimal");
    length_refused("/v1/enroll", "65537", 413, "over the limit of 65536");
}

static void test_framing(void **state)
{
    refused(OK_CHALLENGE "Transfer-Encoding: chunked\r\n\r\n", 400, "Transfer-Encoding");
    refused(OK_CHALLENGE "transfer-encoding: identity\r\n\r\n", 400, "Transfer-Encoding");
    refused("POST /v1/challenge HTTP/1.1\r\nHost: x\n\n", 400, "bare LF");
    refused(OK_CHALLENGE " folded\r\n\r\n", 400, "folding");
    refused(OK_CHALLENGE "\tfolded\r\n\r\n", 400, "folding");
    refused(OK_CHALLENGE "no colon here\r\n\r\n", 400, "not a field");
    refused(OK_CHALLENGE ": empty name\r\n\r\n", 400, "not a field");
    refused(OK_CHALLENGE "Bad Name: x\r\n\r\n", 400, "field name");
    refused(OK_CHALLENGE "X-A: b\rc\r\n\r\n", 400, "CR inside");
    refused("POST /v1/challenge\r\nHost: x\r\n\r\n", 400, "request line");
    refused("POST  /v1/challenge HTTP/1.1\r\nHost: x\r\n\r\n", 400, "absolute path");
    refused("POST v1/challenge HTTP/1.1\r\nHost: x\r\n\r\n", 400, "absolute path");
    refused("POST /v1/challenge HTTP/1.1 \r\nHost: x\r\n\r\n", 400, "HTTP version");
    refused("POST /v1/challenge HTTP/x.y\r\nHost: x\r\n\r\n", 400, "HTTP version");
    refused("\r\nPOST /v1/challenge HTTP/1.1\r\nHost: x\r\n\r\n", 400, "request line");
}

static void test_host(void **state)
{
    refused(
        "POST /v1/challenge HTTP/1.1\r\nContent-Type: application/x-protobuf\r\n"
        "Content-Length: 1\r\n\r\n",
        400, "exactly one Host");
    refused(OK_CHALLENGE "Host: y\r\n\r\n", 400, "exactly one Host");
}

/* A NUL or any other control character in a field is refused, in the name
 * or the value; HTAB is whitespace. */
static void test_control_characters(void **state)
{
    char head[256];
    struct httphead h;
    unsigned c;
    int n;

    for (c = 0; c < 0x80; c++) {
        if (c >= 0x20 && c != 0x7f)
            continue;
        n = snprintf(head, sizeof(head), "%sX-A: a%cb\r\n\r\n", OK_CHALLENGE, 'Z');
        assert_true(n > 0 && (size_t)n < sizeof(head));
        head[strlen(OK_CHALLENGE) + 6] = (char)c;
        if (c == '\t') {
            assert_int_equal(httphead_parse(&h, head, (size_t)n, &lim), 0);
            continue;
        }
        if (c == '\r' || c == '\n')
            continue; /* line ends: test_framing */
        refused_n(head, (size_t)n, 400, "control character");
    }
    /* NUL in a name, in the request target and the method. */
    REFUSED_LITERAL(OK_CHALLENGE "X-\0A: b\r\n\r\n", 400, "field name");
    REFUSED_LITERAL("POST /v1/chal\0lenge HTTP/1.1\r\nHost: x\r\n\r\n", 400, "request target");
    REFUSED_LITERAL("PO\0ST /v1/challenge HTTP/1.1\r\nHost: x\r\n\r\n", 400, "method");
}

static void test_limits(void **state)
{
    struct httphead h;
    char big[9000], target[300];
    size_t i, n = 0;

    refused("GET /v1/crl HTTP/2.0\r\nHost: x\r\n\r\n", 505, "HTTP/1.1");
    refused("GET /v1/crl HTTP/1.2\r\nHost: x\r\n\r\n", 505, "HTTP/1.1");
    assert_int_equal(parse(&h, "GET /v1/crl HTTP/1.0\r\n\r\n"), 0);
    assert_false(h.keep_alive);
    assert_int_equal(parse(&h, "GET /v1/crl HTTP/1.0\r\nConnection: keep-alive\r\n\r\n"), 0);
    assert_true(h.keep_alive);
    memset(target, 'a', sizeof(target));
    target[0] = '/';
    snprintf(big, sizeof(big), "GET %.257s HTTP/1.1\r\nHost: x\r\n\r\n", target);
    refused(big, 414, "too long");
    /* 33 fields */
    n = (size_t)snprintf(big, sizeof(big), "GET /v1/crl HTTP/1.1\r\nHost: x\r\n");
    for (i = 0; i < 32; i++)
        n += (size_t)snprintf(big + n, sizeof(big) - n, "X-%zu: y\r\n", i);
    snprintf(big + n, sizeof(big) - n, "\r\n");
    refused(big, 431, "header fields");
    /* 8 KiB without an end: refused before the end arrives. */
    n = (size_t)snprintf(big, sizeof(big), "GET /v1/crl HTTP/1.1\r\nX-Long: ");
    memset(big + n, 'z', sizeof(big) - n);
    refused_n(big, lim.max_head, 431, "header size");
    refused_n(big, sizeof(big), 431, "header size");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_accepted),
        cmocka_unit_test(test_in_pieces),
        cmocka_unit_test(test_paths_and_methods),
        cmocka_unit_test(test_post_fields),
        cmocka_unit_test(test_content_length),
        cmocka_unit_test(test_framing),
        cmocka_unit_test(test_host),
        cmocka_unit_test(test_control_characters),
        cmocka_unit_test(test_limits),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

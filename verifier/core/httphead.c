#include "verifier/core/httphead.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "common/err.h"

#define CONTENT_TYPE "application/x-protobuf"

struct route_rule {
    const char *path;
    const char *method;
    enum httphead_route route;
};

static const struct route_rule routes[] = {
    {"/v1/challenge", "POST", HTTPHEAD_ROUTE_CHALLENGE},
    {"/v1/enroll", "POST", HTTPHEAD_ROUTE_ENROLL},
    {"/v1/crl", "GET", HTTPHEAD_ROUTE_CRL},
    {"/v1/log/head", "GET", HTTPHEAD_ROUTE_LOG_HEAD},
};

/* What the field loop collects. */
struct fields {
    unsigned n, host, content_length, content_type_ok, content_type;
    bool conn_close, conn_keep_alive;
};

static int refuse(struct httphead *out, int status, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static int refuse(struct httphead *out, int status, const char *fmt, ...)
{
    va_list ap;

    out->status = status;
    out->close = true;
    va_start(ap, fmt);
    vsnprintf(out->why, sizeof(out->why), fmt, ap);
    va_end(ap);
    return DEVID_ERR_BAD_REQUEST;
}

/* tchar of RFC 9110 §5.6.2. */
static bool is_tchar(unsigned char c)
{
    return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
           (c != '\0' && strchr("!#$%&'*+-.^_`|~", c) != NULL);
}

static bool is_digit(char c)
{
    return c >= '0' && c <= '9';
}

static bool field_is(const char *name, size_t len, const char *want)
{
    return strlen(want) == len && strncasecmp(name, want, len) == 0;
}

/* Finds the empty line ending the head (out->complete); bare LF line ends
 * are refused. */
static int find_end(struct httphead *out, const char *buf, size_t len, size_t max)
{
    size_t i, scan = len < max ? len : max;

    for (i = 0; i < scan; i++) {
        if (buf[i] != '\n')
            continue;
        if (i == 0 || buf[i - 1] != '\r')
            return refuse(out, 400, "%s", "a line ends in a bare LF, not CRLF");
        if (i >= 3 && buf[i - 2] == '\n' && buf[i - 3] == '\r') {
            out->head_len = i + 1;
            out->complete = true;
            return 0;
        }
    }
    if (len >= max)
        return refuse(out, 431, "%s", "the request head is over the header size limit");
    return 0;
}

static int parse_request_line(struct httphead *out, const char *p, size_t n)
{
    const char *sp1 = memchr(p, ' ', n), *sp2, *ver;
    size_t mlen, tlen, vlen, i;

    if (sp1 == NULL || (sp2 = memchr(sp1 + 1, ' ', (size_t)(p + n - sp1 - 1))) == NULL)
        return refuse(out, 400, "%s", "malformed request line");
    mlen = (size_t)(sp1 - p);
    tlen = (size_t)(sp2 - sp1 - 1);
    ver = sp2 + 1;
    vlen = (size_t)(p + n - ver);
    if (mlen == 0 || mlen > HTTPHEAD_METHOD_MAX)
        return refuse(out, 400, "%s", "malformed method in the request line");
    for (i = 0; i < mlen; i++) {
        if (!is_tchar((unsigned char)p[i]))
            return refuse(out, 400, "%s", "malformed method in the request line");
    }
    if (tlen == 0 || sp1[1] != '/')
        return refuse(out, 400, "%s", "the request target is not an absolute path");
    if (tlen > HTTPHEAD_TARGET_MAX)
        return refuse(out, 414, "%s", "the request target is too long");
    for (i = 0; i < tlen; i++) {
        if ((unsigned char)sp1[1 + i] < 0x21 || (unsigned char)sp1[1 + i] > 0x7e)
            return refuse(out, 400, "%s", "a control or space character in the request target");
    }
    if (vlen == 8 && memcmp(ver, "HTTP/1.1", 8) == 0)
        out->keep_alive = true;
    else if (vlen == 8 && memcmp(ver, "HTTP/1.0", 8) == 0)
        out->keep_alive = false;
    else if (vlen == 8 && memcmp(ver, "HTTP/", 5) == 0 && is_digit(ver[5]) && ver[6] == '.' &&
             is_digit(ver[7]))
        return refuse(out, 505, "%s", "only HTTP/1.0 and HTTP/1.1 are served");
    else
        return refuse(out, 400, "%s", "malformed HTTP version in the request line");
    memcpy(out->method, p, mlen);
    memcpy(out->target, sp1 + 1, tlen);
    return 0;
}

static int parse_content_length(struct httphead *out, const char *v, size_t n)
{
    uint64_t x = 0;
    size_t i;

    if (n == 0 || n > 19)
        return refuse(out, 400, "%s", "Content-Length is not a decimal number");
    for (i = 0; i < n; i++) {
        if (v[i] < '0' || v[i] > '9')
            return refuse(out, 400, "%s", "Content-Length is not a decimal number");
        x = x * 10 + (uint64_t)(v[i] - '0');
    }
    out->content_length = x;
    return 0;
}

static bool has_token(const char *v, size_t n, const char *tok)
{
    size_t i = 0, start, tl = strlen(tok);

    while (i < n) {
        while (i < n && (v[i] == ' ' || v[i] == '\t' || v[i] == ','))
            i++;
        start = i;
        while (i < n && v[i] != ',' && v[i] != ' ' && v[i] != '\t')
            i++;
        if (i - start == tl && strncasecmp(v + start, tok, tl) == 0)
            return true;
    }
    return false;
}

static int known_field(struct httphead *out, struct fields *f, const char *name, size_t nlen,
                       const char *v, size_t vlen)
{
    int r;

    if (field_is(name, nlen, "Host")) {
        f->host++;
    } else if (field_is(name, nlen, "Content-Length")) {
        if (++f->content_length > 1)
            return refuse(out, 400, "%s", "more than one Content-Length field");
        if ((r = parse_content_length(out, v, vlen)) != 0)
            return r;
    } else if (field_is(name, nlen, "Transfer-Encoding")) {
        return refuse(out, 400, "%s", "Transfer-Encoding is not accepted: send Content-Length");
    } else if (field_is(name, nlen, "Content-Type")) {
        f->content_type++;
        f->content_type_ok = (vlen == strlen(CONTENT_TYPE) ||
                              (vlen > strlen(CONTENT_TYPE) && v[strlen(CONTENT_TYPE)] == ';')) &&
                             strncasecmp(v, CONTENT_TYPE, strlen(CONTENT_TYPE)) == 0;
    } else if (field_is(name, nlen, "Connection")) {
        f->conn_close |= has_token(v, vlen, "close");
        f->conn_keep_alive |= has_token(v, vlen, "keep-alive");
    } else if (field_is(name, nlen, "Expect")) {
        if (!(vlen == 12 && strncasecmp(v, "100-continue", 12) == 0))
            return refuse(out, 417, "%s", "Expect other than 100-continue");
    }
    return 0;
}

static int parse_field(struct httphead *out, struct fields *f, const char *p, size_t n)
{
    const char *colon, *v, *end = p + n;
    size_t nlen, i;
    char name[48];

    if (p[0] == ' ' || p[0] == '\t')
        return refuse(out, 400, "%s", "obsolete line folding in the header");
    if ((colon = memchr(p, ':', n)) == NULL || colon == p)
        return refuse(out, 400, "%s", "a header line is not a field");
    nlen = (size_t)(colon - p);
    for (i = 0; i < nlen; i++) {
        if (!is_tchar((unsigned char)p[i]))
            return refuse(out, 400, "%s", "malformed header field name");
    }
    snprintf(name, sizeof(name), "%.*s", (int)(nlen < 40 ? nlen : 40), p);
    for (v = colon + 1; v < end; v++) {
        unsigned char c = (unsigned char)*v;
        if ((c < 0x20 && c != '\t') || c == 0x7f)
            return refuse(out, 400, "a control character in header field %s", name);
    }
    v = colon + 1;
    while (v < end && (*v == ' ' || *v == '\t'))
        v++;
    while (end > v && (end[-1] == ' ' || end[-1] == '\t'))
        end--;
    return known_field(out, f, p, nlen, v, (size_t)(end - v));
}

static int check_route(struct httphead *out, const struct fields *f,
                       const struct httphead_limits *lim)
{
    size_t plen = strcspn(out->target, "?"), i;
    size_t max;

    for (i = 0; i < sizeof(routes) / sizeof(routes[0]); i++) {
        if (strlen(routes[i].path) == plen && strncmp(out->target, routes[i].path, plen) == 0)
            break;
    }
    if (i == sizeof(routes) / sizeof(routes[0]))
        return refuse(out, 404, "no resource %.120s", out->target);
    if (strcmp(out->method, routes[i].method) != 0) {
        out->allow = routes[i].method;
        return refuse(out, 405, "%s",
                      strcmp(routes[i].method, "GET") == 0 ? "this resource takes GET only"
                                                           : "this resource takes POST only");
    }
    out->route = routes[i].route;
    if (out->route == HTTPHEAD_ROUTE_CRL || out->route == HTTPHEAD_ROUTE_LOG_HEAD) {
        if (out->content_length != 0)
            return refuse(out, 400, "%s", "a GET with a body");
        return 0;
    }
    if (f->content_length == 0)
        return refuse(out, 411, "%s", "a POST without Content-Length");
    if (f->content_type != 1 || !f->content_type_ok)
        return refuse(out, 415, "%s", "Content-Type must be " CONTENT_TYPE);
    max = out->route == HTTPHEAD_ROUTE_CHALLENGE ? lim->max_body_challenge : lim->max_body_enroll;
    if (out->content_length > max)
        return refuse(out, 413, "body of %llu bytes is over the limit of %zu",
                      (unsigned long long)out->content_length, max);
    return 0;
}

int httphead_parse(struct httphead *out, const char *buf, size_t len,
                   const struct httphead_limits *lim)
{
    struct fields f;
    const char *p, *eol, *end;
    int r;

    if (out == NULL || (buf == NULL && len > 0) || lim == NULL)
        return DEVID_ERR_INVALID_ARGUMENT;
    memset(out, 0, sizeof(*out));
    memset(&f, 0, sizeof(f));
    if ((r = find_end(out, buf, len, lim->max_head)) != 0 || !out->complete)
        return r;
    end = buf + out->head_len - 2; /* the final CRLF */
    eol = memchr(buf, '\r', (size_t)(end - buf) + 1);
    if (eol == NULL || eol[1] != '\n')
        return refuse(out, 400, "%s", "a CR inside the request line");
    if ((r = parse_request_line(out, buf, (size_t)(eol - buf))) != 0)
        return r;
    for (p = eol + 2; p < end; p = eol + 2) {
        eol = memchr(p, '\r', (size_t)(end - p));
        if (eol == NULL || eol[1] != '\n')
            return refuse(out, 400, "%s", "a CR inside a header line");
        if (++f.n > lim->max_fields)
            return refuse(out, 431, "%s", "more header fields than the limit");
        if ((r = parse_field(out, &f, p, (size_t)(eol - p))) != 0)
            return r;
    }
    if (out->keep_alive && f.host != 1)
        return refuse(out, 400, "%s", "an HTTP/1.1 request needs exactly one Host field");
    if (f.conn_close)
        out->keep_alive = false;
    else if (f.conn_keep_alive)
        out->keep_alive = true;
    return check_route(out, &f, lim);
}

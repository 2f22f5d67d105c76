/* The device listener's own reading of an HTTP/1.1 request head (RFC 9112),
 * stricter than evhttp's, so that every request the verifier refuses gets the
 * verifier's own answer (an Error with a Reason), never evhttp's HTML page.
 * Pure: bytes and limits in, a verdict out. */
#ifndef DEVID_VERIFIER_CORE_HTTPHEAD_H
#define DEVID_VERIFIER_CORE_HTTPHEAD_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Longest method and request target kept. */
#define HTTPHEAD_METHOD_MAX 16
#define HTTPHEAD_TARGET_MAX 256

/* The endpoints of the device listener. */
enum httphead_route {
    HTTPHEAD_ROUTE_NONE = 0,
    HTTPHEAD_ROUTE_CHALLENGE, /* POST /v1/challenge */
    HTTPHEAD_ROUTE_ENROLL,    /* POST /v1/enroll */
    HTTPHEAD_ROUTE_CRL,       /* GET /v1/crl */
    HTTPHEAD_ROUTE_LOG_HEAD,  /* GET /v1/log/head */
};

struct httphead_limits {
    size_t max_head;     /* request line and header fields, CRLFs included */
    unsigned max_fields; /* header fields */
    size_t max_body_challenge;
    size_t max_body_enroll;
};

/* What httphead_parse found. */
struct httphead {
    /* A whole head arrived; the fields below describe it. */
    bool complete;
    size_t head_len; /* bytes up to and including the empty line */
    enum httphead_route route;
    char method[HTTPHEAD_METHOD_MAX + 1];
    char target[HTTPHEAD_TARGET_MAX + 1];
    uint64_t content_length;
    bool keep_alive;
    /* On a refusal: the HTTP status (400, 404, 405, 411, 413, 415, 417, 431,
     * 505), whether the connection must be closed after the answer (the
     * framing is lost), the Allow header value for a 405, and why. */
    int status;
    bool close;
    const char *allow;
    char why[160];
};

/*
 * httphead_parse reads the request head at the start of |buf| (|len| bytes
 * received so far). Returns 0 with out->complete false while no empty line
 * has arrived and the head is still within the limits; 0 with out->complete
 * true and |out| filled when the head is complete and acceptable (route,
 * body length, keep-alive); or DEVID_ERR_BAD_REQUEST with out->status,
 * out->close, out->allow and out->why saying how to refuse it, as soon as
 * the bytes received show it must be refused. It refuses (400 unless said):
 * a malformed request line, a request target that is not an absolute path of
 * visible ASCII (414 over HTTPHEAD_TARGET_MAX), a version other than
 * HTTP/1.0 or 1.1 (505), bare LF line ends, obsolete line folding, a control
 * character in a field, a malformed field name, a missing or repeated Host
 * (HTTP/1.1), more than one Content-Length or one that is not a decimal, any
 * Transfer-Encoding, an Expect other than 100-continue (417), a head over
 * the limits (431), an unknown path (404), a method the path does not take
 * (405), a POST without Content-Length (411) or without Content-Type
 * application/x-protobuf (415), a GET with a body, and a body over the
 * route's limit (413). Every refusal closes the connection.
 */
int httphead_parse(struct httphead *out, const char *buf, size_t len,
                   const struct httphead_limits *lim);

#endif

#include "verifier/server/testhook.h"

#include <stdlib.h>

#include <event2/buffer.h>
#include <openssl/x509.h>

#include "common/err.h"
#include "common/io/log.h"
#include "verifier/pki/ca.h"
#include "verifier/server/http.h"
#include "verifier/server/state.h"

#define TESTHOOK_MAX_BODY 16384

void testhook_sign(struct evhttp_request *req, void *arg)
{
    struct server *s = arg;
    struct evbuffer *in = evhttp_request_get_input_buffer(req);
    size_t len = evbuffer_get_length(in);
    const unsigned char *p;
    unsigned char *body = NULL;
    uint8_t *out = NULL;
    size_t n = 0;
    X509 *x = NULL;
    int r;

    if (evhttp_request_get_command(req) != EVHTTP_REQ_POST || len == 0 || len > TESTHOOK_MAX_BODY ||
        (body = malloc(len)) == NULL || evbuffer_remove(in, body, len) != (int)len) {
        evhttp_send_error(req, 400, "want POST with a DER certificate");
        goto out;
    }
    p = body;
    if ((x = d2i_X509(NULL, &p, (long)len)) == NULL) {
        evhttp_send_error(req, 400, "not a DER certificate");
        goto out;
    }
    log_warn("test hook: asking the signer to sign a certificate from POST /test/sign");
    if ((r = ca_sign(s->ca, x, &out, &n)) != 0) {
        evhttp_send_error(req, r == DEVID_ERR_REFUSED ? 403 : 500, devid_err_str(r));
        goto out;
    }
    http_reply_body(req, NULL, 200, (const char *)out, n, "application/pkix-cert");
out:
    free(out);
    X509_free(x);
    free(body);
}

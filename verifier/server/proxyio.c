#include "verifier/server/proxyio.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include <openssl/bio.h>

#include "common/err.h"
#include "common/io/log.h"
#include "verifier/core/proxy.h"

/* Where a connection's first bytes are. */
enum state {
    DETECTING, /* reading until proxy_parse decides */
    REPLAYING, /* no header: handing the bytes read to TLS first */
    PASSING,   /* reads go straight to the socket */
    REFUSED,   /* reads fail: the connection is closed */
};

struct filter {
    struct server *s;
    char *peer;
    char tcp_peer[PROXY_ADDR_LEN];
    int allowed;
    enum state state;
    uint8_t buf[PROXY_V2_MAX_LEN];
    size_t have, off;
};

static BIO_METHOD *method;
static pthread_once_t method_once = PTHREAD_ONCE_INIT;

static int refuse(struct filter *f, const char *why)
{
    atomic_fetch_add(&f->s->proxy_refusals, 1);
    log_warn("refusing the connection from %s: %s", f->tcp_peer, why);
    f->state = REFUSED;
    return 0;
}

/* detect reads from |next| until the first bytes are decided. Returns 1
 * when decided (the state moved on), 0 when it must wait or failed. */
static int detect(BIO *b, struct filter *f, BIO *next)
{
    struct proxy_header h;
    enum proxy_found found;
    char why[256] = "";
    size_t need = 0, got = 0;

    for (;;) {
        if (proxy_parse(&found, &h, &need, f->buf, f->have, why, sizeof(why)) != 0)
            return refuse(f, why);
        if (found == PROXY_ABSENT) {
            f->state = REPLAYING;
            return 1;
        }
        if (found == PROXY_HEADER || f->have >= 12) {
            if (!f->allowed)
                return refuse(f,
                              "it sent a PROXY protocol header and is not in [server] "
                              "proxy_from");
        }
        if (found == PROXY_HEADER) {
            if (h.proxied)
                proxy_addr_format(f->peer, PROXY_ADDR_LEN, (const struct sockaddr *)&h.src);
            log_debug("connection from %s forwarded by %s", f->peer, f->tcp_peer);
            f->have = 0;
            f->state = PASSING;
            return 1;
        }
        /* The fixed part first (as much of it as has arrived), then exactly
         * the rest of the header: never a byte past it. TLS bytes read
         * while deciding are replayed. */
        if (need < PROXY_V2_FIXED_LEN)
            need = PROXY_V2_FIXED_LEN;
        if (need > sizeof(f->buf) || need <= f->have)
            return refuse(f, "malformed PROXY protocol header");
        if (!BIO_read_ex(next, f->buf + f->have, need - f->have, &got)) {
            BIO_copy_next_retry(b);
            return 0;
        }
        f->have += got;
    }
}

static int filter_read(BIO *b, char *out, size_t len, size_t *readbytes)
{
    struct filter *f = BIO_get_data(b);
    BIO *next = BIO_next(b);
    size_t n;
    int ok;

    BIO_clear_retry_flags(b);
    *readbytes = 0;
    if (f == NULL || next == NULL || f->state == REFUSED ||
        (f->state == DETECTING && !detect(b, f, next)))
        return 0;
    if (f->state == REPLAYING) {
        n = f->have - f->off < len ? f->have - f->off : len;
        memcpy(out, f->buf + f->off, n);
        f->off += n;
        if (f->off == f->have)
            f->state = PASSING;
        *readbytes = n;
        return 1;
    }
    ok = BIO_read_ex(next, out, len, readbytes);
    BIO_copy_next_retry(b);
    return ok;
}

static int filter_write(BIO *b, const char *in, size_t len, size_t *written)
{
    int ok = BIO_write_ex(BIO_next(b), in, len, written);

    BIO_clear_retry_flags(b);
    BIO_copy_next_retry(b);
    return ok;
}

static long filter_ctrl(BIO *b, int cmd, long larg, void *parg)
{
    struct filter *f = BIO_get_data(b);
    long pending;

    if (BIO_next(b) == NULL)
        return 0;
    if (cmd == BIO_CTRL_PENDING && f != NULL && f->state == REPLAYING) {
        pending = BIO_ctrl(BIO_next(b), cmd, larg, parg);
        return (long)(f->have - f->off) + (pending > 0 ? pending : 0);
    }
    return BIO_ctrl(BIO_next(b), cmd, larg, parg);
}

static int filter_destroy(BIO *b)
{
    free(BIO_get_data(b));
    BIO_set_data(b, NULL);
    return 1;
}

static void make_method(void)
{
    BIO_METHOD *m = BIO_meth_new(BIO_get_new_index() | BIO_TYPE_FILTER, "devid PROXY v2");

    if (m == NULL || !BIO_meth_set_read_ex(m, filter_read) ||
        !BIO_meth_set_write_ex(m, filter_write) || !BIO_meth_set_ctrl(m, filter_ctrl) ||
        !BIO_meth_set_destroy(m, filter_destroy)) {
        BIO_meth_free(m);
        return;
    }
    method = m;
}

int proxyio_attach(SSL *ssl, struct server *s, int fd, char *peer)
{
    struct sockaddr_storage sa;
    socklen_t sa_len = sizeof(sa);
    struct filter *f = NULL;
    BIO *b = NULL, *next = SSL_get_rbio(ssl);

    if (pthread_once(&method_once, make_method) != 0 || method == NULL || next == NULL)
        return DEVID_ERR_INTERNAL;
    if ((f = calloc(1, sizeof(*f))) == NULL || (b = BIO_new(method)) == NULL) {
        free(f);
        return DEVID_ERR_ALLOC;
    }
    memset(&sa, 0, sizeof(sa));
    if (fd < 0 || getpeername(fd, (struct sockaddr *)&sa, &sa_len) != 0)
        sa.ss_family = AF_UNSPEC;
    f->s = s;
    f->peer = peer;
    proxy_addr_format(f->tcp_peer, sizeof(f->tcp_peer), (const struct sockaddr *)&sa);
    memcpy(peer, f->tcp_peer, sizeof(f->tcp_peer));
    f->allowed = proxy_acl_allows(&s->proxy_acl, (const struct sockaddr *)&sa);
    BIO_set_data(b, f);
    BIO_set_init(b, 1);
    /* The socket BIO stays the write BIO and is now also next in our
     * chain: one more reference for that; SSL_set0_rbio drops the one the
     * read side held. */
    BIO_up_ref(next);
    BIO_push(b, next);
    SSL_set0_rbio(ssl, b);
    return 0;
}

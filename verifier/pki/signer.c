#include "verifier/pki/signer.h"

#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/pidfd.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <openssl/crypto.h>
#include <openssl/x509.h>

#include "common/err.h"
#include "common/io/log.h"
#include "common/io/runas.h"
#include "common/serial.h"
#include "verifier/core/signcheck.h"
#include "verifier/core/tlog.h"
#include "verifier/pki/ca.h"

/* A request the signer has not answered in this long is taken as a wedged
 * signer (a stuck TPM): it is killed and serve stops. */
#define CALL_TIMEOUT_SECONDS 30
/* The signer's exit status when its key cannot be loaded. */
#define EXIT_KEY 78

struct signer {
    pid_t pid;
    int fd;
    int pidfd;
    pthread_mutex_t lock;
    int broken; /* under |lock| */
    /* Answers by request type (1..3) and result (enum signer_result). */
    atomic_ullong answers[SIGNER_TYPES][SIGNER_RESULTS];
};

/* ---- both ends ------------------------------------------------------------ */

static int read_full(int fd, uint8_t *buf, size_t len)
{
    size_t got = 0;
    ssize_t n;

    while (got < len) {
        if ((n = recv(fd, buf + got, len - got, 0)) < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            return got == 0 && n == 0 ? DEVID_ERR_NOT_FOUND : DEVID_ERR_IO;
        got += (size_t)n;
    }
    return 0;
}

static int write_full(int fd, const uint8_t *buf, size_t len)
{
    size_t put = 0;
    ssize_t n;

    while (put < len) {
        if ((n = send(fd, buf + put, len - put, MSG_NOSIGNAL)) < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            return DEVID_ERR_IO;
        put += (size_t)n;
    }
    return 0;
}

static int send_msg(int fd, uint8_t type, const uint8_t *body, size_t len)
{
    uint8_t head[SIGNREQ_HEAD_LEN];
    int r;

    if ((r = signreq_head_write(head, type, len)) != 0 ||
        (r = write_full(fd, head, sizeof(head))) != 0 ||
        (len > 0 && (r = write_full(fd, body, len)) != 0))
        return r;
    return 0;
}

/* ---- the signer process --------------------------------------------------- */

/* The serials signed since the signer started: an open-addressing set. */
struct serial_set {
    struct serial_slot {
        uint8_t len; /* 0: empty */
        uint8_t b[20];
    } * slots;
    size_t cap, n;
};

static uint64_t serial_hash(const uint8_t *b, size_t len)
{
    uint64_t h = 1469598103934665603ULL;
    size_t i;

    for (i = 0; i < len; i++)
        h = (h ^ b[i]) * 1099511628211ULL;
    return h;
}

static struct serial_slot *serial_find(const struct serial_set *set, const uint8_t *b, size_t len)
{
    size_t i = (size_t)serial_hash(b, len) & (set->cap - 1);

    while (set->slots[i].len != 0 &&
           (set->slots[i].len != len || memcmp(set->slots[i].b, b, len) != 0))
        i = (i + 1) & (set->cap - 1);
    return &set->slots[i];
}

static int serial_grow(struct serial_set *set)
{
    struct serial_set bigger = {NULL, set->cap == 0 ? 1024 : set->cap * 2, 0};
    size_t i;

    if ((bigger.slots = calloc(bigger.cap, sizeof(*bigger.slots))) == NULL)
        return DEVID_ERR_ALLOC;
    for (i = 0; i < set->cap; i++) {
        if (set->slots[i].len != 0)
            *serial_find(&bigger, set->slots[i].b, set->slots[i].len) = set->slots[i];
    }
    bigger.n = set->n;
    free(set->slots);
    *set = bigger;
    return 0;
}

/* serial_seen: whether serial |s| was signed before. */
static int serial_seen(const struct serial_set *set, const ASN1_INTEGER *s)
{
    return set->cap > 0 &&
           serial_find(set, ASN1_STRING_get0_data(s), (size_t)ASN1_STRING_length(s))->len != 0;
}

static int serial_add(struct serial_set *set, const ASN1_INTEGER *s)
{
    size_t len = (size_t)ASN1_STRING_length(s);
    struct serial_slot *slot;
    int r;

    if (len == 0 || len > sizeof(slot->b))
        return DEVID_ERR_INVALID_ARGUMENT;
    if ((set->n + 1) * 2 > set->cap && (r = serial_grow(set)) != 0)
        return r;
    slot = serial_find(set, ASN1_STRING_get0_data(s), len);
    if (slot->len == 0) {
        slot->len = (uint8_t)len;
        memcpy(slot->b, ASN1_STRING_get0_data(s), len);
        set->n++;
    }
    return 0;
}

struct signer_state {
    struct ca *ca;
    struct signcheck_rules rules;
    struct serial_set serials;
    int have_crl;
    uint64_t last_crl;
    /* The log key, and the last tree head signed with it. */
    EVP_PKEY *log_key;
    int have_head;
    struct tlog_head last_head;
};

/* An answer: the status and its body. */
struct answer {
    uint8_t status;
    uint8_t *der;
    size_t der_len;
    char why[SIGNREQ_MAX_WHY];
};

static void log_refusal(const char *what, const char *subject, const char *serial, const char *why)
{
    const struct log_field f[] = {
        LOG_WORD("result", "refused"),   LOG_WORD("what", what), LOG_TEXT("subject", subject),
        LOG_WORD("cert_serial", serial), LOG_TEXT("why", why),
    };

    log_event(LOG_WARNING, "sign", f, sizeof(f) / sizeof(f[0]));
}

static void answer_cert(struct signer_state *st, struct answer *a, const uint8_t *body, size_t len)
{
    char serial[64] = "", subject[512] = "";
    CERT_VIEW *x = NULL;

    a->status = SIGNREQ_REFUSED;
    /* Read without decoding the key (certview.h): the check and the
     * signature are over these fields, re-encoded. */
    if (certview_parse(&x, body, len) != 0) {
        snprintf(a->why, sizeof(a->why), "the request is not one DER certificate");
        goto refused;
    }
    if (serial_hex_of(serial, sizeof(serial), x->tbs->serial) != 0)
        snprintf(serial, sizeof(serial), "unreadable");
    X509_NAME_oneline(x->tbs->subject, subject, sizeof(subject));
    if (signcheck_cert(&st->rules, x, time(NULL), a->why, sizeof(a->why)) != 0)
        goto refused;
    if (serial_seen(&st->serials, x->tbs->serial)) {
        snprintf(a->why, sizeof(a->why), "serial %s was signed before", serial);
        goto refused;
    }
    a->status = SIGNREQ_FAILED;
    /* The answer is freed with OPENSSL_free, as every other one. */
    if (serial_add(&st->serials, x->tbs->serial) != 0 ||
        ca_sign_view(st->ca, x, &a->der, &a->der_len) != 0) {
        snprintf(a->why, sizeof(a->why), "the CA key could not sign");
        goto out;
    }
    a->status = SIGNREQ_SIGNED;
    goto out;
refused:
    log_refusal("certificate", subject, serial[0] != '\0' ? serial : "unreadable", a->why);
out:
    certview_free(x);
}

static void answer_crl(struct signer_state *st, struct answer *a, const uint8_t *body, size_t len)
{
    struct signreq_crl req;
    X509_CRL *crl = NULL;
    char number[32];
    int n;

    a->status = SIGNREQ_REFUSED;
    if (signreq_crl_decode(&req, body, len, a->why, sizeof(a->why)) != 0 ||
        signcheck_crl(&st->rules, &req, st->have_crl, st->last_crl, time(NULL), a->why,
                      sizeof(a->why)) != 0) {
        snprintf(number, sizeof(number), "%llu", (unsigned long long)req.number);
        log_refusal("crl", "", number, a->why);
        goto out;
    }
    a->status = SIGNREQ_FAILED;
    if (ca_sign_crl(st->ca, &crl, &req) != 0 || (n = i2d_X509_CRL(crl, &a->der)) <= 0) {
        snprintf(a->why, sizeof(a->why), "the CA key could not sign the CRL");
        goto out;
    }
    a->der_len = (size_t)n;
    st->have_crl = 1;
    st->last_crl = req.number;
    a->status = SIGNREQ_SIGNED;
out:
    X509_CRL_free(crl);
    signreq_crl_cleanup(&req);
}

/* sign_tbs signs the 66 bytes of a tree head with the log key. */
static int sign_tbs(EVP_PKEY *key, uint8_t *sig, size_t *sig_len, const uint8_t *tbs, size_t len)
{
    int id = EVP_PKEY_get_base_id(key);
    const char *md = id == EVP_PKEY_ED25519 || id == EVP_PKEY_ED448 ? NULL : "SHA256";
    EVP_MD_CTX *mctx = EVP_MD_CTX_new();
    int ok;

    ok = mctx != NULL && EVP_DigestSignInit_ex(mctx, NULL, md, NULL, NULL, key, NULL) == 1 &&
         EVP_DigestSign(mctx, sig, sig_len, tbs, len) == 1;
    EVP_MD_CTX_free(mctx);
    return ok ? 0 : DEVID_ERR_CRYPTO;
}

static void answer_tree_head(struct signer_state *st, struct answer *a, const uint8_t *body,
                             size_t len)
{
    static struct signreq_tree_head req;
    uint8_t tbs[TLOG_TBS_LEN], sig[TLOG_SIG_MAX];
    size_t sig_len = sizeof(sig), out_len = 0;
    char size[32];

    a->status = SIGNREQ_REFUSED;
    if (st->log_key == NULL) {
        snprintf(a->why, sizeof(a->why), "no log key is configured ([log] key)");
        return;
    }
    if (signreq_tree_head_decode(&req, body, len, a->why, sizeof(a->why)) != 0 ||
        signcheck_tree_head(&req, st->have_head ? &st->last_head : NULL, time(NULL), a->why,
                            sizeof(a->why)) != 0) {
        snprintf(size, sizeof(size), "%llu", (unsigned long long)req.head.size);
        log_refusal("tree_head", "", size, a->why);
        return;
    }
    a->status = SIGNREQ_FAILED;
    tlog_head_tbs(tbs, &req.head);
    if (sign_tbs(st->log_key, sig, &sig_len, tbs, sizeof(tbs)) != 0 ||
        (a->der = OPENSSL_malloc(TLOG_SIGNED_HEAD_MAX)) == NULL ||
        tlog_signed_head_encode(a->der, &out_len, &req.head, sig, sig_len) != 0) {
        snprintf(a->why, sizeof(a->why), "the log key could not sign the tree head");
        return;
    }
    a->der_len = out_len;
    st->have_head = 1;
    st->last_head = req.head;
    a->status = SIGNREQ_SIGNED;
}

/* The request table: nothing else is answered. */
static const struct {
    enum signreq_type type;
    void (*answer)(struct signer_state *st, struct answer *a, const uint8_t *body, size_t len);
} table[] = {
    {SIGNREQ_CERT, answer_cert},
    {SIGNREQ_CRL, answer_crl},
    {SIGNREQ_TREE_HEAD, answer_tree_head},
};

/* serve_requests answers requests until the socket closes (returns 0) or a
 * request breaks the framing (returns an exit status): a worker that does
 * that is not trusted with another answer. */
static int serve_requests(struct signer_state *st, int fd)
{
    uint8_t head[SIGNREQ_HEAD_LEN], type, *body = NULL;
    struct answer a;
    size_t len, i;
    char why[256];
    int r;

    for (;;) {
        if ((r = read_full(fd, head, sizeof(head))) == DEVID_ERR_NOT_FOUND)
            return 0;
        if (r != 0) {
            log_err("signer: reading a request failed: %s", strerror(errno));
            return EXIT_FAILURE;
        }
        if (signreq_head_parse(&type, &len, head, 0, why, sizeof(why)) != 0) {
            log_err("signer: refusing the serving process: %s; stopping", why);
            return EXIT_FAILURE;
        }
        if ((body = malloc(len > 0 ? len : 1)) == NULL || read_full(fd, body, len) != 0) {
            log_err("signer: a %s request of %zu bytes could not be read; stopping",
                    signreq_type_name(type), len);
            free(body);
            return EXIT_FAILURE;
        }
        memset(&a, 0, sizeof(a));
        for (i = 0; i < sizeof(table) / sizeof(table[0]) && table[i].type != type; i++)
            ;
        if (i < sizeof(table) / sizeof(table[0]))
            table[i].answer(st, &a, body, len);
        free(body);
        body = NULL;
        if (a.status == SIGNREQ_SIGNED)
            r = send_msg(fd, a.status, a.der, a.der_len);
        else
            r = send_msg(fd, a.status, (const uint8_t *)a.why, strlen(a.why));
        OPENSSL_free(a.der);
        if (r != 0) {
            log_err("signer: the serving process went away mid-answer");
            return EXIT_FAILURE;
        }
    }
}

/* The signer process: confine itself, load the key, say so, serve. */
static int signer_main(int fd, const struct signer_config *cfg)
{
    struct signer_state st;
    const char *why;
    int r;

    memset(&st, 0, sizeof(st));
    /* It ends when its socket closes; stop signals go to the serving
     * process, which then closes it. */
    signal(SIGTERM, SIG_IGN);
    signal(SIGINT, SIG_IGN);
    signal(SIGHUP, SIG_IGN);
    signal(SIGPIPE, SIG_IGN);
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    prctl(PR_SET_NAME, "devid-signer");
    /* No core dumps, and no ptrace by the same user: the key lives here. */
    prctl(PR_SET_DUMPABLE, 0);
    if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0)
        log_warn("signer: PR_SET_NO_NEW_PRIVS: %s", strerror(errno));
    if ((cfg->ca_provider != NULL && (r = ca_use_provider(cfg->ca_provider, cfg->ca_tcti)) != 0) ||
        (r = ca_new(&st.ca, cfg->ca_cert, cfg->ca_key)) != 0 ||
        (cfg->log_key != NULL && (r = ca_load_key(&st.log_key, cfg->log_key, "log key")) != 0)) {
        why = "the signer could not load the CA key or the log key";
        send_msg(fd, SIGNREQ_FAILED, (const uint8_t *)why, strlen(why));
        return r == DEVID_ERR_CONFIG ? EXIT_KEY : EXIT_FAILURE;
    }
    /* The keys are loaded: the signer needs root no longer. Changing the
     * user resets the dumpable flag, so it is cleared again. */
    if (cfg->run_as != NULL) {
        if (runas_become(cfg->run_as) != 0) {
            why = "the signer could not drop to the service user";
            send_msg(fd, SIGNREQ_FAILED, (const uint8_t *)why, strlen(why));
            r = EXIT_FAILURE;
            goto out;
        }
        prctl(PR_SET_DUMPABLE, 0);
    }
    st.rules.ca_cert = ca_get0_cert(st.ca);
    st.rules.max_validity_seconds = cfg->max_validity_seconds;
    st.rules.max_crl_next_update_seconds = cfg->max_crl_next_update_seconds;
    st.rules.policy_arc = cfg->policy_arc;
    log_info(
        "signer: pid %d holds the CA key%s, as uid %u; answering certificate, CRL and tree "
        "head requests",
        (int)getpid(), st.log_key != NULL ? " and the log key" : "", (unsigned)geteuid());
    if (send_msg(fd, SIGNREQ_SIGNED, NULL, 0) != 0)
        r = EXIT_FAILURE;
    else
        r = serve_requests(&st, fd);
out:
    ca_free(st.ca);
    EVP_PKEY_free(st.log_key);
    ca_release_providers();
    free(st.serials.slots);
    return r;
}

/* ---- the serving process's end -------------------------------------------- */

static void set_timeout(int fd)
{
    struct timeval tv = {CALL_TIMEOUT_SECONDS, 0};

    if (setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv)) != 0 ||
        setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv)) != 0)
        log_warn("signer socket timeout: %s", strerror(errno));
}

/* read_answer reads one answer: |*out| the body (malloc'd) and |*status|. */
static int read_answer(struct signer *s, uint8_t *status, uint8_t **out, size_t *out_len, char *why,
                       size_t why_len)
{
    uint8_t head[SIGNREQ_HEAD_LEN], *body = NULL;
    size_t len;
    int r;

    if ((r = read_full(s->fd, head, sizeof(head))) != 0) {
        snprintf(why, why_len, "the signer process %s",
                 r == DEVID_ERR_NOT_FOUND ? "is gone" : "did not answer");
        return DEVID_ERR_INTERNAL;
    }
    if (signreq_head_parse(status, &len, head, 1, why, why_len) != 0)
        return DEVID_ERR_INTERNAL;
    if ((body = malloc(len + 1)) == NULL)
        return DEVID_ERR_ALLOC;
    if (read_full(s->fd, body, len) != 0) {
        free(body);
        snprintf(why, why_len, "the signer process broke off its answer");
        return DEVID_ERR_INTERNAL;
    }
    body[len] = '\0';
    *out = body;
    *out_len = len;
    return 0;
}

/* Marks |s| broken and kills the signer: a signer out of step with its
 * socket answers nothing reliably any more. Under |s|->lock. */
static void break_signer(struct signer *s, const char *why)
{
    if (!s->broken)
        log_err("the signer process (pid %d): %s; stopping it", (int)s->pid, why);
    s->broken = 1;
    kill(s->pid, SIGKILL);
}

static int count(struct signer *s, enum signreq_type type, int r)
{
    enum signer_result res =
        r == 0 ? SIGNER_SIGNED : (r == DEVID_ERR_REFUSED ? SIGNER_REFUSED : SIGNER_FAILED);

    if (type >= 1 && type <= SIGNER_TYPES)
        atomic_fetch_add_explicit(&s->answers[type - 1][res], 1, memory_order_relaxed);
    return r;
}

void signer_answers(struct signer *s, uint64_t out[SIGNER_TYPES][SIGNER_RESULTS])
{
    int t, k;

    for (t = 0; t < SIGNER_TYPES; t++) {
        for (k = 0; k < SIGNER_RESULTS; k++)
            out[t][k] =
                s != NULL ? atomic_load_explicit(&s->answers[t][k], memory_order_relaxed) : 0;
    }
}

static int call(struct signer *s, uint8_t **out, size_t *out_len, enum signreq_type type,
                const uint8_t *body, size_t len, char *why, size_t why_len)
{
    uint8_t status = 0, *answer = NULL;
    size_t answer_len = 0;
    int r;

    *out = NULL;
    *out_len = 0;
    pthread_mutex_lock(&s->lock);
    if (s->broken) {
        snprintf(why, why_len, "the signer process is gone");
        r = DEVID_ERR_INTERNAL;
    } else if (send_msg(s->fd, (uint8_t)type, body, len) != 0) {
        snprintf(why, why_len, "the signer process is gone");
        r = DEVID_ERR_INTERNAL;
        break_signer(s, "it does not take requests");
    } else if ((r = read_answer(s, &status, &answer, &answer_len, why, why_len)) != 0) {
        break_signer(s, why);
    }
    pthread_mutex_unlock(&s->lock);
    if (r != 0)
        return r;
    if (status != SIGNREQ_SIGNED) {
        snprintf(why, why_len, "the signer %s: %s",
                 status == SIGNREQ_REFUSED ? "refused" : "failed", (const char *)answer);
        free(answer);
        return status == SIGNREQ_REFUSED ? DEVID_ERR_REFUSED : DEVID_ERR_CRYPTO;
    }
    *out = answer;
    *out_len = answer_len;
    return 0;
}

int signer_call(struct signer *s, uint8_t **out, size_t *out_len, enum signreq_type type,
                const uint8_t *body, size_t len, char *why, size_t why_len)
{
    return count(s, type, call(s, out, out_len, type, body, len, why, why_len));
}

int signer_start(struct signer **out, const struct signer_config *cfg)
{
    struct signer *s = NULL;
    uint8_t status = 0, *msg = NULL;
    size_t len = 0;
    char why[256];
    int sv[2] = {-1, -1}, r;

    *out = NULL;
    if ((s = calloc(1, sizeof(*s))) == NULL)
        return DEVID_ERR_ALLOC;
    s->fd = s->pidfd = -1;
    pthread_mutex_init(&s->lock, NULL);
    if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) != 0) {
        log_err("signer socketpair: %s", strerror(errno));
        free(s);
        return DEVID_ERR_INTERNAL;
    }
    fflush(NULL);
    if ((s->pid = fork()) < 0) {
        log_err("cannot fork the signer: %s", strerror(errno));
        close(sv[0]);
        close(sv[1]);
        free(s);
        return DEVID_ERR_INTERNAL;
    }
    if (s->pid == 0) {
        close(sv[0]);
        _exit(signer_main(sv[1], cfg));
    }
    close(sv[1]);
    s->fd = sv[0];
    if ((s->pidfd = pidfd_open(s->pid, 0)) < 0)
        log_warn("pidfd_open of the signer: %s; its death is noticed at the next request",
                 strerror(errno));
    r = read_answer(s, &status, &msg, &len, why, sizeof(why));
    if (r == 0 && status != SIGNREQ_SIGNED)
        r = DEVID_ERR_CONFIG;
    free(msg);
    if (r != 0) {
        signer_free(s);
        return r == DEVID_ERR_INTERNAL ? DEVID_ERR_CONFIG : r;
    }
    set_timeout(s->fd);
    *out = s;
    return 0;
}

int signer_watch_fd(const struct signer *s)
{
    return s->pidfd;
}

int signer_pid(const struct signer *s)
{
    return (int)s->pid;
}

void signer_free(struct signer *s)
{
    int status = 0;

    if (s == NULL)
        return;
    if (s->fd >= 0)
        close(s->fd);
    while (waitpid(s->pid, &status, 0) < 0 && errno == EINTR)
        ;
    if (WIFSIGNALED(status))
        log_err("the signer process (pid %d) was killed by signal %d", (int)s->pid,
                WTERMSIG(status));
    else if (WIFEXITED(status) && WEXITSTATUS(status) != 0)
        log_err("the signer process (pid %d) exited with status %d", (int)s->pid,
                WEXITSTATUS(status));
    if (s->pidfd >= 0)
        close(s->pidfd);
    pthread_mutex_destroy(&s->lock);
    free(s);
}

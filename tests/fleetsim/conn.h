/* The simulator's one wrapper around libcurl: one mutual-TLS connection per
 * enrollment, with a software IDevID as client certificate, protobuf POSTs on
 * it, and its RFC 9266 tls-exporter value. */
#ifndef DEVID_TESTS_FLEETSIM_CONN_H
#define DEVID_TESTS_FLEETSIM_CONN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <openssl/evp.h>
#include <openssl/x509.h>

#include "common/transcript.h"

/* Largest response body accepted. */
#define CONN_BODY_MAX (64 * 1024)
/* Longest transport failure name ("connect", "tls", "timeout", ...). */
#define CONN_WHAT_MAX 32

struct conn_config {
    const char *url;       /* base URL, https://host:port */
    const char *ca_bundle; /* PEM CAs trusted for the verifier */
    int tls_version;       /* 0: 1.2-1.3, 12, 13 */
    long timeout;          /* seconds, for each request and for connecting */
    const char *source;    /* libcurl CURLOPT_INTERFACE ("host!ADDR"), or NULL */
};

/* One HTTP answer, or why there was none. */
struct conn_reply {
    long status;   /* HTTP status; 0 when there was no answer */
    uint8_t *body; /* malloc'd, body_len bytes (NULL when empty) */
    size_t body_len;
    bool have_retry_after;
    unsigned long retry_after; /* seconds, when have_retry_after */
    bool dropped;              /* conn_post(drop=true) closed before reading */
    /* Transport failure class when conn_post failed: "connect",
     * "tls-handshake" (failed or cut short), "tls" (a certificate problem),
     * "timeout", "closed", "too-large", "conn-changed", "curl-<code>". */
    char what[CONN_WHAT_MAX];
    char detail[256]; /* libcurl's message */
};

struct conn;

/* conn_global_init initialises libcurl; call once before any thread starts.
 * Returns 0 or DEVID_ERR_INTERNAL. */
int conn_global_init(void);

/* conn_global_cleanup undoes conn_global_init. */
void conn_global_cleanup(void);

/*
 * conn_new sets |*out| to a new client that presents |cert| (with |chain| as
 * intermediate, may be NULL) and |key| on its own new TLS connection. |cfg|,
 * |cert|, |chain| and |key| are borrowed and must outlive |*out|. No network
 * I/O happens until conn_post. Returns 0 or a DEVID_ERR_* code.
 */
int conn_new(struct conn **out, const struct conn_config *cfg, X509 *cert, X509 *chain,
             EVP_PKEY *key);

/* conn_free closes the connection and frees |c|; conn_free(NULL) does nothing. */
void conn_free(struct conn *c);

/*
 * conn_post POSTs |req| as application/x-protobuf to url + |path| and fills
 * |rep| (which the caller cleans with conn_reply_cleanup). The first POST
 * opens the connection; later ones must reuse it (rep->what "conn-changed"
 * otherwise). With |drop|, the connection is closed as soon as the first byte
 * of the answer arrives, unread (rep->dropped). Returns 0 for any HTTP answer
 * or a drop, DEVID_ERR_TLS or DEVID_ERR_NETWORK with rep->what set.
 */
int conn_post(struct conn *c, struct conn_reply *rep, const char *path, const uint8_t *req,
              size_t req_len, bool drop);

/* conn_exporter copies the tls-exporter value read during the first POST.
 * Returns 0 or DEVID_ERR_TLS if it is unknown. */
int conn_exporter(const struct conn *c, uint8_t out[TRANSCRIPT_EXPORTER_LEN]);

/* conn_reply_cleanup frees what |rep| owns and zeroes it. */
void conn_reply_cleanup(struct conn_reply *rep);

#endif

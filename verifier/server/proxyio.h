/* The PROXY protocol v2 header on the device listener: a filter BIO under
 * TLS that reads it before the first byte of the TLS handshake, when a load
 * balancer in [server] proxy_from sent one, so that logs name the device's
 * own address; a connection from any other address that sends a PROXY
 * header is refused and logged. Private to verifier/server/. */
#ifndef DEVID_VERIFIER_SERVER_PROXYIO_H
#define DEVID_VERIFIER_SERVER_PROXYIO_H

#include <openssl/ssl.h>

#include "verifier/server/state.h"

/*
 * proxyio_attach puts the filter in front of |ssl|'s read BIO; call it once,
 * when the handshake starts. |fd| is the connection's socket. |peer|
 * (PROXY_ADDR_LEN bytes, borrowed: it must stay valid while |ssl| reads)
 * gets the device's address at once, and the forwarded one when an allowed
 * load balancer sends a header. Returns 0, or DEVID_ERR_ALLOC /
 * DEVID_ERR_INTERNAL (the connection should then be closed).
 */
int proxyio_attach(SSL *ssl, struct server *s, int fd, char *peer);

#endif

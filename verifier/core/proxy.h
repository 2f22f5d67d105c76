/* The PROXY protocol, version 2 (HAProxy's proxy-protocol.txt, section 2.2):
 * the header a TCP load balancer sends before the client's first byte, so
 * that the server learns the client's address; and the list of load
 * balancer addresses allowed to send one ([server] proxy_from). Pure:
 * parses bytes and text. */
#ifndef DEVID_VERIFIER_CORE_PROXY_H
#define DEVID_VERIFIER_CORE_PROXY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

/* The fixed part of a version 2 header: signature, version and command,
 * family and protocol, length. */
#define PROXY_V2_FIXED_LEN 16
/* The longest header accepted: the fixed part and 512 bytes of addresses
 * and TLVs (HAProxy's send-proxy-v2 sends 12 or 36). */
#define PROXY_V2_MAX_LEN (PROXY_V2_FIXED_LEN + 512)
/* Most networks in a proxy_from list. */
#define PROXY_ACL_MAX 32
/* Room for an address and port as proxy_addr_format writes it. */
#define PROXY_ADDR_LEN 64

/* What proxy_parse found at the start of a connection's bytes. */
enum proxy_found {
    /* They do not start a PROXY header (a TLS ClientHello, say). */
    PROXY_ABSENT = 0,
    /* They may start one: |*need| bytes in all decide. */
    PROXY_INCOMPLETE,
    /* A complete version 2 header, of out->len bytes. */
    PROXY_HEADER,
};

/* A parsed header. */
struct proxy_header {
    /* Bytes of the header, to drop before the client's own bytes. */
    size_t len;
    /* 0 for a LOCAL command (the balancer's own connection, such as a
     * health check) or an address family the verifier has no use for:
     * then the connection's own peer address stands. 1 when |src| and
     * |dst| hold the client's TCP address (AF_INET or AF_INET6) and the one
     * it connected to. */
    int proxied;
    struct sockaddr_storage src;
    struct sockaddr_storage dst;
};

/*
 * proxy_parse looks at the |len| bytes at |in|, the first a connection
 * received, and sets |*found| to what they start; for PROXY_INCOMPLETE
 * |*need| gets the byte count that decides, and for PROXY_HEADER |out| is
 * filled. A version 1 (text) header, another version, an unknown command,
 * a datagram family, addresses or TLVs that do not fit the length, or a
 * CRC32C TLV that does not match are refused with DEVID_ERR_BAD_REQUEST;
 * a header longer than PROXY_V2_MAX_LEN with DEVID_ERR_TOO_LARGE. |why|
 * says what was wrong. Returns 0 or that code.
 */
int proxy_parse(enum proxy_found *found, struct proxy_header *out, size_t *need, const uint8_t *in,
                size_t len, char *why, size_t why_len);

/* The load balancer addresses allowed to send a PROXY header. */
struct proxy_acl {
    size_t n;
    struct proxy_net {
        int family; /* AF_INET or AF_INET6 */
        uint8_t addr[16];
        unsigned prefix;
    } nets[PROXY_ACL_MAX];
};

/*
 * proxy_acl_parse fills |acl| from |text|: addresses or networks (IPv4 or
 * IPv6, optional "/prefix") separated by commas and/or spaces, as in
 * "127.0.0.1, 10.0.0.0/8, fd00::/8". Empty text is an empty list. Returns 0,
 * or DEVID_ERR_CONFIG with the offending entry in |why|.
 */
int proxy_acl_parse(struct proxy_acl *acl, const char *text, char *why, size_t why_len);

/* proxy_acl_allows returns true when |sa| (AF_INET, or AF_INET6 including
 * IPv4-mapped addresses) is in |acl|. */
bool proxy_acl_allows(const struct proxy_acl *acl, const struct sockaddr *sa);

/* proxy_addr_format writes |sa| as "1.2.3.4:5" or "[::1]:5" to |out|
 * ("unknown" for another family). Returns |out|. */
const char *proxy_addr_format(char *out, size_t len, const struct sockaddr *sa);

#endif

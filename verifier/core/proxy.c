#include "verifier/core/proxy.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>

#include "common/err.h"

static const uint8_t signature[12] = {0x0d, 0x0a, 0x0d, 0x0a, 0x00, 0x0d,
                                      0x0a, 0x51, 0x55, 0x49, 0x54, 0x0a};

/* Address families and protocols of byte 13, and TLV types. */
#define FAM_INET 0x1
#define FAM_INET6 0x2
#define PROTO_STREAM 0x1
#define PROTO_DGRAM 0x2
#define TLV_CRC32C 0x03

/* crc32c is CRC-32C (Castagnoli) of |len| bytes, with the 4 bytes at
 * |skip| (a TLV's value) counted as zeros. */
static uint32_t crc32c(const uint8_t *p, size_t len, size_t skip)
{
    uint32_t crc = 0xffffffffu;
    size_t i;
    int k;

    for (i = 0; i < len; i++) {
        crc ^= i >= skip && i < skip + 4 ? 0 : p[i];
        for (k = 0; k < 8; k++)
            crc = (crc >> 1) ^ (0x82f63b78u & (0u - (crc & 1u)));
    }
    return ~crc;
}

/* tlvs checks the TLVs in bytes [off, total) of header |h|. */
static int tlvs(const uint8_t *h, size_t off, size_t total, char *why, size_t why_len)
{
    size_t vlen;
    uint32_t want;

    while (off < total) {
        if (total - off < 3) {
            snprintf(why, why_len, "PROXY header: a TLV at byte %zu is cut short", off);
            return DEVID_ERR_BAD_REQUEST;
        }
        vlen = (size_t)h[off + 1] << 8 | h[off + 2];
        if (vlen > total - off - 3) {
            snprintf(why, why_len, "PROXY header: the TLV at byte %zu runs past the header", off);
            return DEVID_ERR_BAD_REQUEST;
        }
        if (h[off] == TLV_CRC32C) {
            want = vlen == 4 ? (uint32_t)h[off + 3] << 24 | (uint32_t)h[off + 4] << 16 |
                                   (uint32_t)h[off + 5] << 8 | h[off + 6]
                             : 0;
            if (vlen != 4 || crc32c(h, total, off + 3) != want) {
                snprintf(why, why_len, "PROXY header: its CRC32C does not match");
                return DEVID_ERR_BAD_REQUEST;
            }
        }
        off += 3 + vlen;
    }
    return 0;
}

/* addresses fills |out| from the address block of a PROXY command. */
static int addresses(struct proxy_header *out, const uint8_t *h, size_t total, char *why,
                     size_t why_len)
{
    struct sockaddr_in *s4 = (struct sockaddr_in *)&out->src, *d4 = (struct sockaddr_in *)&out->dst;
    struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)&out->src,
                        *d6 = (struct sockaddr_in6 *)&out->dst;
    unsigned fam = h[13] >> 4, proto = h[13] & 0xf;
    size_t block;
    const uint8_t *a = h + PROXY_V2_FIXED_LEN;

    if (proto == PROTO_DGRAM) {
        snprintf(why, why_len, "PROXY header: a datagram connection, not TCP");
        return DEVID_ERR_BAD_REQUEST;
    }
    if (fam == FAM_INET && proto == PROTO_STREAM)
        block = 12;
    else if (fam == FAM_INET6 && proto == PROTO_STREAM)
        block = 36;
    else
        return 0; /* unspecified, unix sockets: the connection's own address stands */
    if (total - PROXY_V2_FIXED_LEN < block) {
        snprintf(why, why_len, "PROXY header: %zu address bytes, want %zu",
                 total - PROXY_V2_FIXED_LEN, block);
        return DEVID_ERR_BAD_REQUEST;
    }
    if (fam == FAM_INET) {
        s4->sin_family = d4->sin_family = AF_INET;
        memcpy(&s4->sin_addr, a, 4);
        memcpy(&d4->sin_addr, a + 4, 4);
        memcpy(&s4->sin_port, a + 8, 2);
        memcpy(&d4->sin_port, a + 10, 2);
    } else {
        s6->sin6_family = d6->sin6_family = AF_INET6;
        memcpy(&s6->sin6_addr, a, 16);
        memcpy(&d6->sin6_addr, a + 16, 16);
        memcpy(&s6->sin6_port, a + 32, 2);
        memcpy(&d6->sin6_port, a + 34, 2);
    }
    out->proxied = 1;
    return tlvs(h, PROXY_V2_FIXED_LEN + block, total, why, why_len);
}

int proxy_parse(enum proxy_found *found, struct proxy_header *out, size_t *need, const uint8_t *in,
                size_t len, char *why, size_t why_len)
{
    size_t n = len < sizeof(signature) ? len : sizeof(signature), total;
    unsigned cmd;
    int r;

    *found = PROXY_ABSENT;
    *need = 0;
    memset(out, 0, sizeof(*out));
    if (len == 0 || memcmp(in, signature, n) != 0) {
        n = len < 6 ? len : 6;
        if (len > 0 && memcmp(in, "PROXY ", n) == 0) {
            if (len >= 6) {
                snprintf(why, why_len,
                         "PROXY protocol version 1 (text) is not accepted; have the load "
                         "balancer send version 2 (HAProxy: send-proxy-v2)");
                return DEVID_ERR_BAD_REQUEST;
            }
            *found = PROXY_INCOMPLETE;
            *need = 6;
        }
        if (len == 0) {
            *found = PROXY_INCOMPLETE;
            *need = 1;
        }
        return 0;
    }
    *found = PROXY_INCOMPLETE;
    if (len < PROXY_V2_FIXED_LEN) {
        *need = PROXY_V2_FIXED_LEN;
        return 0;
    }
    total = PROXY_V2_FIXED_LEN + ((size_t)in[14] << 8 | in[15]);
    if ((in[12] >> 4) != 2) {
        snprintf(why, why_len, "PROXY header: version %u, not 2", (unsigned)(in[12] >> 4));
        return DEVID_ERR_BAD_REQUEST;
    }
    if ((cmd = in[12] & 0xf) > 1) {
        snprintf(why, why_len, "PROXY header: unknown command %u", cmd);
        return DEVID_ERR_BAD_REQUEST;
    }
    if (total > PROXY_V2_MAX_LEN) {
        snprintf(why, why_len, "PROXY header of %zu bytes, more than %d", total, PROXY_V2_MAX_LEN);
        return DEVID_ERR_TOO_LARGE;
    }
    if (len < total) {
        *need = total;
        return 0;
    }
    if (cmd == 1 && (r = addresses(out, in, total, why, why_len)) != 0) {
        memset(out, 0, sizeof(*out));
        return r;
    }
    out->len = total;
    *found = PROXY_HEADER;
    return 0;
}

/* parse_net reads one "address[/prefix]" entry of |len| bytes. */
static int parse_net(struct proxy_net *net, const char *s, size_t len)
{
    char text[INET6_ADDRSTRLEN + 8];
    char *slash;
    unsigned long prefix = 0, max;
    size_t i;

    if (len == 0 || len >= sizeof(text))
        return -1;
    memcpy(text, s, len);
    text[len] = '\0';
    memset(net, 0, sizeof(*net));
    if ((slash = strchr(text, '/')) != NULL) {
        *slash++ = '\0';
        if (*slash == '\0' || strlen(slash) > 3)
            return -1;
        for (i = 0; slash[i] != '\0'; i++) {
            if (slash[i] < '0' || slash[i] > '9')
                return -1;
            prefix = prefix * 10 + (unsigned long)(slash[i] - '0');
        }
    }
    if (inet_pton(AF_INET, text, net->addr) == 1)
        net->family = AF_INET;
    else if (inet_pton(AF_INET6, text, net->addr) == 1)
        net->family = AF_INET6;
    else
        return -1;
    max = net->family == AF_INET ? 32 : 128;
    if (slash == NULL)
        prefix = max;
    if (prefix > max)
        return -1;
    net->prefix = (unsigned)prefix;
    return 0;
}

int proxy_acl_parse(struct proxy_acl *acl, const char *text, char *why, size_t why_len)
{
    const char *p = text, *start;

    memset(acl, 0, sizeof(*acl));
    while (*p != '\0') {
        while (*p == ',' || *p == ' ' || *p == '\t')
            p++;
        if (*p == '\0')
            break;
        start = p;
        while (*p != '\0' && *p != ',' && *p != ' ' && *p != '\t')
            p++;
        if (acl->n == PROXY_ACL_MAX) {
            snprintf(why, why_len, "more than %d addresses or networks", PROXY_ACL_MAX);
            return DEVID_ERR_CONFIG;
        }
        if (parse_net(&acl->nets[acl->n], start, (size_t)(p - start)) != 0) {
            snprintf(why, why_len,
                     "\"%.*s\" is not an IPv4 or IPv6 address or network (ADDRESS[/PREFIX])",
                     (int)(p - start > 64 ? 64 : p - start), start);
            memset(acl, 0, sizeof(*acl));
            return DEVID_ERR_CONFIG;
        }
        acl->n++;
    }
    return 0;
}

/* in_net tells whether address |a|, of |net|'s family, is in |net|. */
static bool in_net(const struct proxy_net *net, const uint8_t *a)
{
    unsigned full = net->prefix / 8, rest = net->prefix % 8;
    uint8_t mask = (uint8_t)(0xff << (8 - rest));

    if (memcmp(net->addr, a, full) != 0)
        return false;
    return rest == 0 || ((net->addr[full] ^ a[full]) & mask) == 0;
}

bool proxy_acl_allows(const struct proxy_acl *acl, const struct sockaddr *sa)
{
    static const uint8_t mapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
    const uint8_t *v4 = NULL, *v6 = NULL;
    size_t i;

    if (acl == NULL || sa == NULL)
        return false;
    if (sa->sa_family == AF_INET) {
        v4 = (const uint8_t *)&((const struct sockaddr_in *)(const void *)sa)->sin_addr;
    } else if (sa->sa_family == AF_INET6) {
        v6 = (const uint8_t *)&((const struct sockaddr_in6 *)(const void *)sa)->sin6_addr;
        if (memcmp(v6, mapped, sizeof(mapped)) == 0)
            v4 = v6 + 12;
    }
    for (i = 0; i < acl->n; i++) {
        if ((acl->nets[i].family == AF_INET && v4 != NULL && in_net(&acl->nets[i], v4)) ||
            (acl->nets[i].family == AF_INET6 && v6 != NULL && in_net(&acl->nets[i], v6)))
            return true;
    }
    return false;
}

const char *proxy_addr_format(char *out, size_t len, const struct sockaddr *sa)
{
    char host[INET6_ADDRSTRLEN];
    const struct sockaddr_in *s4 = (const struct sockaddr_in *)(const void *)sa;
    const struct sockaddr_in6 *s6 = (const struct sockaddr_in6 *)(const void *)sa;

    if (sa != NULL && sa->sa_family == AF_INET &&
        inet_ntop(AF_INET, &s4->sin_addr, host, sizeof(host)) != NULL)
        snprintf(out, len, "%s:%u", host, (unsigned)ntohs(s4->sin_port));
    else if (sa != NULL && sa->sa_family == AF_INET6 &&
             inet_ntop(AF_INET6, &s6->sin6_addr, host, sizeof(host)) != NULL)
        snprintf(out, len, "[%s]:%u", host, (unsigned)ntohs(s6->sin6_port));
    else
        snprintf(out, len, "unknown");
    return out;
}

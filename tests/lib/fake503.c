/* fake503: a stand-in for an overloaded verifier, for tests only.
 *
 * The real verifier answers 503 with Retry-After only under overload, which a
 * test cannot bring about on demand and on time. This server accepts TLS on
 * 127.0.0.1:PORT with CERT and KEY, reads one HTTP request per connection and
 * answers a fixed "503 Service Unavailable" with "Retry-After: SECONDS" and no
 * body, then closes. It prints one line per request ("request N at MS") with
 * a monotonic millisecond timestamp, so the test can measure the agent's
 * waits. It serves until killed.
 *
 *   cc -o fake503 fake503.c -lssl -lcrypto
 *   fake503 PORT CERT KEY SECONDS
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/ssl.h>

static long long now_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* serve reads headers and a Content-Length body, then answers 503. */
static void serve(SSL *ssl, const char *answer, int n)
{
    char buf[16384];
    size_t len = 0;
    long clen = 0;
    char *end, *cl;
    int r;

    for (;;) {
        if (len >= sizeof(buf) - 1)
            return;
        r = SSL_read(ssl, buf + len, (int)(sizeof(buf) - 1 - len));
        if (r <= 0)
            return;
        len += (size_t)r;
        buf[len] = '\0';
        if ((end = strstr(buf, "\r\n\r\n")) == NULL)
            continue;
        if ((cl = strcasestr(buf, "content-length:")) != NULL && cl < end) {
            char *num_end;

            errno = 0;
            clen = strtol(cl + 15, &num_end, 10);
            if (errno != 0 || *num_end != '\r' || clen < 0 || clen > (long)sizeof(buf))
                return;
        }
        if (len >= (size_t)(end + 4 - buf) + (size_t)clen)
            break;
    }
    printf("request %d at %lld\n", n, now_ms());
    fflush(stdout);
    SSL_write(ssl, answer, (int)strlen(answer));
}

int main(int argc, char *argv[])
{
    struct sockaddr_in addr;
    char answer[256];
    SSL_CTX *ctx;
    int fd, c, one = 1, n = 0;
    unsigned long port_ul;
    uint16_t port;
    char *end;

    if (argc != 5) {
        fprintf(stderr, "usage: fake503 PORT CERT KEY RETRY-AFTER-SECONDS\n");
        return 64;
    }
    errno = 0;
    port_ul = strtoul(argv[1], &end, 10);
    if (errno != 0 || *end != '\0' || end == argv[1] || port_ul == 0 || port_ul > 65535) {
        fprintf(stderr, "fake503: \"%s\" is not a port number\n", argv[1]);
        return 64;
    }
    port = (uint16_t)port_ul;
    signal(SIGPIPE, SIG_IGN);
    snprintf(answer, sizeof(answer),
             "HTTP/1.1 503 Service Unavailable\r\nRetry-After: %s\r\nContent-Length: 0\r\n"
             "Connection: close\r\n\r\n",
             argv[4]);
    if ((ctx = SSL_CTX_new(TLS_server_method())) == NULL ||
        SSL_CTX_use_certificate_chain_file(ctx, argv[2]) != 1 ||
        SSL_CTX_use_PrivateKey_file(ctx, argv[3], SSL_FILETYPE_PEM) != 1) {
        ERR_print_errors_fp(stderr);
        return 1;
    }
    memset(&addr, 0, sizeof(addr));
    addr.sin_family = AF_INET;
    addr.sin_port = htons(port);
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if ((fd = socket(AF_INET, SOCK_STREAM, 0)) < 0 ||
        setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) != 0 ||
        bind(fd, (struct sockaddr *)&addr, sizeof(addr)) != 0 || listen(fd, 16) != 0) {
        perror("fake503: listen");
        return 1;
    }
    for (;;) {
        SSL *ssl;

        if ((c = accept(fd, NULL, NULL)) < 0)
            continue;
        if ((ssl = SSL_new(ctx)) != NULL && SSL_set_fd(ssl, c) == 1 && SSL_accept(ssl) == 1)
            serve(ssl, answer, ++n);
        if (ssl != NULL) {
            SSL_shutdown(ssl);
            SSL_free(ssl);
        }
        close(c);
    }
}

/* sock.c: dn_sock_connect (sock.h), the same on every platform: the name
 * resolved, then each address tried in turn within the deadline, through
 * the platform's dn_sock_start and dn_sock_connect_addr (sock_unix.c,
 * sock_win.c). */
#include "sock.h"

#include <errno.h>
#include <stdio.h>

#if defined(_WIN32)
#include <winsock2.h>
#include <ws2tcpip.h>
#else
#include <netdb.h>
#include <netinet/in.h>
#include <sys/socket.h>
#endif

int dn_sock_connect(const char *host, uint16_t port, int timeout_ms, dn_sock *out)
{
    int rc = dn_sock_start();
    if (rc < 0)
        return rc;
    struct addrinfo hints = {.ai_family = AF_UNSPEC,
                             .ai_socktype = SOCK_STREAM,
                             .ai_protocol = IPPROTO_TCP,
                             .ai_flags = AI_NUMERICSERV};
    char service[8];
    snprintf(service, sizeof(service), "%u", (unsigned)port);
    struct addrinfo *res = NULL;
    int g = getaddrinfo(host, service, &hints, &res);
    if (g != 0)
        return g == EAI_MEMORY ? -ENOMEM : g == EAI_AGAIN ? -EAGAIN : -ENXIO;
    int64_t deadline = dn_now_ms() + timeout_ms;
    rc = -ECONNREFUSED;
    for (struct addrinfo *ai = res; ai; ai = ai->ai_next) {
        int64_t left = deadline - dn_now_ms();
        if (left <= 0) {
            rc = -ETIMEDOUT;
            break;
        }
        if ((rc = dn_sock_connect_addr(ai, (int)left, out)) == 0)
            break;
    }
    freeaddrinfo(res);
    return rc;
}

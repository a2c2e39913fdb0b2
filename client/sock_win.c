/* sock_win.c: sock.h over Winsock 2. WSAStartup runs once, on the first
 * connection; sockets are made non-inheritable (a `get --exec` child must
 * not hold the connection open) and non-blocking; waits are WSAPoll, but a
 * connect's is select(), which reports a refused connection in its
 * exception set where WSAPoll did not before Windows 10 2004. Winsock's
 * errors (WSAGetLastError) become negative errnos here. */
#include "sock.h"

#include <windows.h>
#include <winsock2.h>
#include <ws2tcpip.h>

#include <errno.h>

/* Longest piece handed to one WSABUF or recv() (their lengths are 32-bit). */
#define PIECE_MAX (1u << 30)

/* Winsock's WSAE* and getaddrinfo's EAI_* (the same numbers) as errno. */
static int wsa_errno(int e)
{
    switch (e) {
    case WSAEWOULDBLOCK:
    case WSAEINPROGRESS:
    case WSAEALREADY:
        return EAGAIN;
    case WSAEINTR:
        return EINTR;
    case WSAECONNREFUSED:
        return ECONNREFUSED;
    case WSAECONNRESET:
    case WSAENETRESET:
    case WSAESHUTDOWN:
        return ECONNRESET;
    case WSAECONNABORTED:
        return ECONNABORTED;
    case WSAETIMEDOUT:
        return ETIMEDOUT;
    case WSAEHOSTUNREACH:
    case WSAEHOSTDOWN:
        return EHOSTUNREACH;
    case WSAENETUNREACH:
    case WSAENETDOWN:
        return ENETUNREACH;
    case WSAEADDRNOTAVAIL:
        return EADDRNOTAVAIL;
    case WSAENOTCONN:
        return ENOTCONN;
    case WSAEMFILE:
        return EMFILE;
    case WSAENOBUFS:
        return ENOBUFS;
    case WSAEAFNOSUPPORT:
    case WSAEPFNOSUPPORT:
        return EAFNOSUPPORT;
    case WSAEACCES:
        return EACCES;
    case WSAEINVAL:
    case WSAEFAULT:
        return EINVAL;
    case WSA_NOT_ENOUGH_MEMORY:
        return ENOMEM;
    default:
        return EIO;
    }
}

int64_t dn_now_ms(void) { return (int64_t)GetTickCount64(); }

void dn_sleep_ms(int64_t ms)
{
    while (ms > 0) {
        DWORD step = ms > 0x7fffffff ? 0x7fffffff : (DWORD)ms;
        Sleep(step);
        ms -= step;
    }
}

/* The wall clock, the performance counter and the process id. */
uint64_t dn_sock_seed(void)
{
    FILETIME ft;
    LARGE_INTEGER pc;
    GetSystemTimeAsFileTime(&ft);
    QueryPerformanceCounter(&pc);
    return (((uint64_t)ft.dwHighDateTime << 32) | ft.dwLowDateTime) * 1000000007ull ^ (uint64_t)pc.QuadPart ^
           ((uint64_t)GetCurrentProcessId() << 32);
}

/* InitOnce callback: WSAStartup; a failure leaves the once unset, so the
 * next connection tries again. */
static BOOL CALLBACK wsa_start(PINIT_ONCE once, PVOID param, PVOID *ctx)
{
    (void)once;
    (void)ctx;
    WSADATA d;
    int *err = param;
    *err = WSAStartup(MAKEWORD(2, 2), &d);
    return *err == 0;
}

/* Winsock is started once per process and never cleaned up (exit does it). */
static int net_start(void)
{
    static INIT_ONCE once = INIT_ONCE_STATIC_INIT;
    int err = 0;
    if (!InitOnceExecuteOnce(&once, wsa_start, &err, NULL))
        return err ? -wsa_errno(err) : -ENETDOWN;
    return 0;
}

void dn_sock_close(dn_sock s) { closesocket((SOCKET)s); }

/* One WSAPoll: Windows has no signals to interrupt it. */
int dn_sock_wait(dn_sock s, int for_write, int ms)
{
    WSAPOLLFD p = {.fd = (SOCKET)s, .events = for_write ? POLLWRNORM : POLLRDNORM};
    int rc = WSAPoll(&p, 1, ms < 0 ? 0 : ms);
    if (rc > 0)
        return 0;
    return rc == 0 ? -ETIMEDOUT : -wsa_errno(WSAGetLastError());
}

/* Waits for a connect in progress on s; returns 0 or -errno. */
static int connect_wait(SOCKET s, int ms)
{
    fd_set w, x;
    FD_ZERO(&w);
    FD_ZERO(&x);
    FD_SET(s, &w);
    FD_SET(s, &x);
    struct timeval tv = {.tv_sec = ms / 1000, .tv_usec = (ms % 1000) * 1000};
    int rc = select(0, NULL, &w, &x, &tv);
    if (rc == 0)
        return -ETIMEDOUT;
    if (rc == SOCKET_ERROR)
        return -wsa_errno(WSAGetLastError());
    int err = 0, len = sizeof(err);
    if (getsockopt(s, SOL_SOCKET, SO_ERROR, (char *)&err, &len) == SOCKET_ERROR)
        err = WSAGetLastError();
    if (!err && FD_ISSET(s, &x))
        err = WSAECONNREFUSED;
    return err ? -wsa_errno(err) : 0;
}

/* Connects one resolved address within ms; 0 with *out, or -errno. */
static int connect_one(const struct addrinfo *ai, int ms, SOCKET *out)
{
    SOCKET s = WSASocketW(ai->ai_family, ai->ai_socktype, ai->ai_protocol, NULL, 0,
                          WSA_FLAG_OVERLAPPED | WSA_FLAG_NO_HANDLE_INHERIT);
    if (s == INVALID_SOCKET)
        return -wsa_errno(WSAGetLastError());
    u_long nonblocking = 1;
    int one = 1, rc = 0;
    if (ioctlsocket(s, FIONBIO, &nonblocking) == SOCKET_ERROR) {
        rc = -wsa_errno(WSAGetLastError());
        goto fail;
    }
    setsockopt(s, IPPROTO_TCP, TCP_NODELAY, (const char *)&one, sizeof(one));
    if (connect(s, ai->ai_addr, (int)ai->ai_addrlen) == SOCKET_ERROR) {
        int e = WSAGetLastError();
        rc = e == WSAEWOULDBLOCK ? connect_wait(s, ms) : -wsa_errno(e);
        if (rc < 0)
            goto fail;
    }
    *out = s;
    return 0;
fail:
    closesocket(s);
    return rc;
}

int dn_sock_start(void) { return net_start(); }

int dn_sock_connect_addr(const struct addrinfo *ai, int ms, dn_sock *out)
{
    SOCKET s = INVALID_SOCKET;
    int rc = connect_one(ai, ms, &s);
    if (rc < 0)
        return rc;
    *out = (dn_sock)s;
    return 0;
}

/* WSASend of the vector's first pieces (WSABUF lengths are 32-bit: a longer
 * piece goes in part, and nothing after it this time). */
int64_t dn_sock_send(dn_sock s, const dn_iov *iov, int iovcnt)
{
    WSABUF b[16];
    DWORD n = 0, sent = 0;
    for (int i = 0; i < iovcnt && n < 16; i++) {
        int cut = iov[i].iov_len > PIECE_MAX;
        b[n].buf = iov[i].iov_base;
        b[n++].len = cut ? PIECE_MAX : (ULONG)iov[i].iov_len;
        if (cut)
            break;
    }
    if (WSASend((SOCKET)s, b, n, &sent, 0, NULL, NULL) == SOCKET_ERROR)
        return -wsa_errno(WSAGetLastError());
    return (int64_t)sent;
}

int64_t dn_sock_recv(dn_sock s, void *buf, size_t n)
{
    int r = recv((SOCKET)s, buf, (int)(n > PIECE_MAX ? PIECE_MAX : n), 0);
    return r == SOCKET_ERROR ? -wsa_errno(WSAGetLastError()) : r;
}

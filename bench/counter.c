/*
 * The load generator's hot loop: send the benchmark messages and count the
 * lines that arrive, over many already logged-in sockets, with epoll.
 *
 * bench.py logs the clients in, then runs this program with the sockets
 * inherited and one line per socket on standard input: "FD EXPECTED SENDER
 * TIMED" (TIMED 0: its deliveries count but their latency is not recorded,
 * so that the cluster scenario can time only what crossed nodes).
 * Each sender writes MESSAGES lines of PREFIX + TEXT + "\r\n", where TEXT is
 * SIZE bytes ending in a 20-digit send time (CLOCK_MONOTONIC, ns) and '|'.
 * A received line counts when it ends in "|\r\n", so joins, pings and other
 * server lines are ignored.  With -r 0 the senders pipeline everything as
 * fast as the sockets take it; with -r RATE the messages go out at RATE per
 * second in all, and every delivery's latency is recorded.
 *
 * The result is one JSON object on standard output.  A Python version of the
 * same loop is in loadgen.py, for machines without a C compiler.
 *
 *   counter -m MESSAGES -s SIZE -r RATE -d DEADLINE_SECONDS [-p PREFIX]
 */
#define _GNU_SOURCE
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define TAIL 24
#define RECV_SIZE (256 * 1024)

struct conn {
    int fd;
    long expected;
    long count;
    int sender;
    int timed;
    int closed;
    char *out;          /* pipelined mode: all of this sender's lines */
    size_t out_len, out_off;
    char tail[TAIL];    /* the last bytes of the previous read */
};

static double now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec / 1e9;
}

static uint64_t now_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + ts.tv_nsec;
}

static double cpu_seconds(void) {
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return ru.ru_utime.tv_sec + ru.ru_utime.tv_usec / 1e6 + ru.ru_stime.tv_sec +
           ru.ru_stime.tv_usec / 1e6;
}

static int cmp_u64(const void *a, const void *b) {
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

/* PREFIX, SIZE-21 filler bytes, 20 digits of ts, '|', CRLF */
static size_t format_line(char *dst, const char *prefix, size_t plen, int size,
                          uint64_t ts, long seq) {
    memcpy(dst, prefix, plen);
    char *p = dst + plen;
    int filler = size - 21;
    int n = snprintf(p, filler + 1, "m%ld ", seq);
    if (n > filler) n = filler;
    memset(p + n, 'x', filler - n);
    p += filler;
    char digits[32];
    snprintf(digits, sizeof digits, "%020llu", (unsigned long long)ts);
    memcpy(p, digits, 20);
    p += 20;
    *p++ = '|';
    *p++ = '\r';
    *p++ = '\n';
    return p - dst;
}

int main(int argc, char **argv) {
    long messages = 0;
    int size = 64;
    double rate = 0, deadline = 60;
    const char *prefix = "";
    for (int i = 1; i + 1 < argc; i += 2) {
        if (!strcmp(argv[i], "-m")) messages = atol(argv[i + 1]);
        else if (!strcmp(argv[i], "-s")) size = atoi(argv[i + 1]);
        else if (!strcmp(argv[i], "-r")) rate = atof(argv[i + 1]);
        else if (!strcmp(argv[i], "-d")) deadline = atof(argv[i + 1]);
        else if (!strcmp(argv[i], "-p")) prefix = argv[i + 1];
        else { fprintf(stderr, "counter: unknown option %s\n", argv[i]); return 2; }
    }
    if (size < 32) { fprintf(stderr, "counter: size must be >= 32\n"); return 2; }
    size_t plen = strlen(prefix), line_max = plen + size + 2;

    size_t cap = 1024, n = 0;
    struct conn *conns = calloc(cap, sizeof *conns);
    int fd, sender, timed;
    long expected;
    while (scanf("%d %ld %d %d", &fd, &expected, &sender, &timed) == 4) {
        if (n == cap) conns = realloc(conns, (cap *= 2) * sizeof *conns);
        memset(&conns[n], 0, sizeof conns[n]);
        conns[n].fd = fd;
        conns[n].expected = expected;
        conns[n].sender = sender;
        conns[n].timed = timed;
        n++;
    }
    int *senders = calloc(n + 1, sizeof *senders), nsenders = 0;
    long total_expected = 0;
    for (size_t i = 0; i < n; i++) {
        total_expected += conns[i].expected;
        if (conns[i].sender) senders[nsenders++] = (int)i;
    }

    int ep = epoll_create1(0);
    for (size_t i = 0; i < n; i++) {
        struct epoll_event ev = {.events = EPOLLIN | EPOLLRDHUP, .data.u64 = i};
        if (rate == 0 && conns[i].sender) ev.events |= EPOLLOUT;
        if (epoll_ctl(ep, EPOLL_CTL_ADD, conns[i].fd, &ev) < 0) {
            perror("counter: epoll_ctl");
            return 2;
        }
    }
    if (rate == 0) {
        for (int s = 0; s < nsenders; s++) {
            struct conn *c = &conns[senders[s]];
            c->out = malloc(line_max * messages);
            for (long k = 0; k < messages; k++)
                c->out_len += format_line(c->out + c->out_len, prefix, plen, size, 0, k);
        }
    }

    size_t lat_cap = rate > 0 ? (size_t)total_expected + 1 : 1, lat_n = 0;
    uint64_t *lat = rate > 0 ? malloc(lat_cap * sizeof *lat) : NULL;
    char *buf = malloc(TAIL + RECV_SIZE);
    char *line = malloc(line_max);
    struct epoll_event events[512];

    long total = 0, extra = 0, sent = 0, total_messages = messages * nsenders;
    int closed = 0, timed_out = 0;
    double t0 = now(), cpu0 = cpu_seconds(), t_end = t0, hard = t0 + deadline;
    uint64_t t0_ns = now_ns();

    while (total < total_expected || (rate > 0 && sent < total_messages)) {
        double t = now();
        if (t > hard) { timed_out = 1; break; }
        int timeout = 100;
        if (rate > 0 && sent < total_messages) {
            /* paced: send every message that is due, round-robin over senders */
            uint64_t tn = now_ns();
            long due = (long)((tn - t0_ns) / 1e9 * rate) + 1;
            if (due > total_messages) due = total_messages;
            for (; sent < due; sent++) {
                struct conn *c = &conns[senders[sent % nsenders]];
                size_t len = format_line(line, prefix, plen, size, now_ns(), sent);
                ssize_t w = send(c->fd, line, len, MSG_NOSIGNAL);
                if (w != (ssize_t)len) {
                    fprintf(stderr, "counter: paced send blocked or failed\n");
                    timed_out = 1;
                    goto done;
                }
            }
            double next = (double)sent / rate;
            double wait = next - (now_ns() - t0_ns) / 1e9;
            timeout = wait <= 0 ? 0 : (int)(wait * 1000) + 1;
            if (timeout > 100) timeout = 100;
        }
        int k = epoll_wait(ep, events, 512, timeout);
        if (k < 0 && errno != EINTR) { perror("counter: epoll_wait"); return 2; }
        for (int e = 0; e < k; e++) {
            struct conn *c = &conns[events[e].data.u64];
            if (events[e].events & EPOLLOUT) {
                while (c->out_off < c->out_len) {
                    ssize_t w = send(c->fd, c->out + c->out_off,
                                     c->out_len - c->out_off, MSG_NOSIGNAL);
                    if (w < 0) break;
                    c->out_off += w;
                }
                if (c->out_off >= c->out_len) {
                    struct epoll_event ev = {.events = EPOLLIN | EPOLLRDHUP,
                                             .data.u64 = events[e].data.u64};
                    epoll_ctl(ep, EPOLL_CTL_MOD, c->fd, &ev);
                    sent += messages;
                }
            }
            if (events[e].events & (EPOLLIN | EPOLLRDHUP | EPOLLHUP | EPOLLERR)) {
                memcpy(buf, c->tail, TAIL);
                ssize_t r = recv(c->fd, buf + TAIL, RECV_SIZE, 0);
                if (r <= 0) {
                    if (r == 0 || (errno != EAGAIN && errno != EINTR)) {
                        epoll_ctl(ep, EPOLL_CTL_DEL, c->fd, NULL);
                        c->closed = 1;
                        closed++;
                    }
                    continue;
                }
                char *p = buf + TAIL, *end = buf + TAIL + r;
                long got = 0;
                uint64_t tr = lat ? now_ns() : 0;
                while ((p = memchr(p, '\n', end - p)) != NULL) {
                    if (p[-1] == '\r' && p[-2] == '|') {
                        got++;
                        if (lat && c->timed && lat_n < lat_cap) {
                            uint64_t ts = 0;
                            for (const char *d = p - 22; d < p - 2; d++)
                                ts = ts * 10 + (uint64_t)(*d - '0');
                            lat[lat_n++] = tr - ts;
                        }
                    }
                    p++;
                }
                memcpy(c->tail, end - TAIL, TAIL);
                long before = c->count;
                c->count += got;
                if (c->count > c->expected) {
                    long over = c->count - (before > c->expected ? before : c->expected);
                    extra += over;
                    got -= over;
                }
                total += got;
                if (total >= total_expected) t_end = now();
            }
        }
        if (closed == (int)n) break;
    }
done:;
    double t_done = now(), cpu = cpu_seconds() - cpu0;
    if (total < total_expected) t_end = t_done;
    long lost = 0, min_count = -1, max_count = 0;
    for (size_t i = 0; i < n; i++) {
        if (conns[i].count < conns[i].expected) lost += conns[i].expected - conns[i].count;
        if (min_count < 0 || conns[i].count < min_count) min_count = conns[i].count;
        if (conns[i].count > max_count) max_count = conns[i].count;
    }
    double p50 = -1, p99 = -1, pmax = -1;
    if (lat && lat_n) {
        qsort(lat, lat_n, sizeof *lat, cmp_u64);
        p50 = lat[lat_n / 2] / 1e6;
        p99 = lat[(size_t)(lat_n * 0.99)] / 1e6;
        pmax = lat[lat_n - 1] / 1e6;
    }
    printf("{\"clients\": %zu, \"senders\": %d, \"sent\": %ld, \"expected\": %ld, "
           "\"delivered\": %ld, \"lost\": %ld, \"extra\": %ld, \"closed\": %d, "
           "\"timed_out\": %s, \"window\": %.6f, \"cpu\": %.6f, "
           "\"min_count\": %ld, \"max_count\": %ld, \"latencies\": %zu, "
           "\"p50_ms\": %.4f, \"p99_ms\": %.4f, \"max_ms\": %.4f}\n",
           n, nsenders, sent, total_expected, total, lost, extra, closed,
           timed_out ? "true" : "false", t_end - t0, cpu, min_count, max_count,
           lat_n, p50, p99, pmax);
    return 0;
}

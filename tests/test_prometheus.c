/* Prometheus: the text format (families, HELP/TYPE, labels escaped and
 * UTF-8, the closed nodes' series keeping sums from going down), the HTTP
 * endpoint (200, 404, 405, bad and busy addresses, descriptors past 1024,
 * idle connections bounded per address and in total),
 * the exporter outliving its context's handle, metrics.prometheus_listen,
 * and '*' serving IPv4 and IPv6 (IPv4 alone on a host without IPv6). */
#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include "lz_test.h"
#include "liberzmq/prometheus.h"
#include "liberzmq/pushpull.h"
#include "serial/utf8.h"

// http_get_at sends "METHOD PATH" over HTTP/1.0 to host (an IPv4 or IPv6
// address):port and returns the whole response (status line, headers,
// body), or "" on failure.
static const char *http_get_at(const char *host, int port, const char *method, const char *path, char *buf,
                               size_t size) {
    buf[0] = '\0';
    struct sockaddr_storage to = {0};
    struct sockaddr_in *v4 = (struct sockaddr_in *)&to;
    struct sockaddr_in6 *v6 = (struct sockaddr_in6 *)&to;
    socklen_t to_len = sizeof *v4;
    if (inet_pton(AF_INET, host, &v4->sin_addr) == 1) {
        v4->sin_family = AF_INET;
        v4->sin_port = htons((uint16_t)port);
    } else {
        LZ_CHECK(inet_pton(AF_INET6, host, &v6->sin6_addr) == 1);
        v6->sin6_family = AF_INET6;
        v6->sin6_port = htons((uint16_t)port);
        to_len = sizeof *v6;
    }
    int fd = socket(to.ss_family, SOCK_STREAM, 0);
    struct timeval five = {5, 0};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &five, sizeof five);
    if (connect(fd, (struct sockaddr *)&to, to_len) == 0) {
        char request[256];
        int n = snprintf(request, sizeof request, "%s %s HTTP/1.0\r\nHost: localhost\r\n\r\n", method, path);
        size_t len = 0;
        if (write(fd, request, (size_t)n) == n)
            for (ssize_t got; len < size - 1 && (got = read(fd, buf + len, size - 1 - len)) > 0;) len += (size_t)got;
        buf[len] = '\0';
    }
    close(fd);
    return buf;
}

// http_get: http_get_at 127.0.0.1.
static const char *http_get(int port, const char *method, const char *path, char *buf, size_t size) {
    return http_get_at("127.0.0.1", port, method, path, buf, size);
}

// family_sum adds every series of family in text.
static double family_sum(const char *text, const char *family) {
    double sum = 0;
    char prefix[128];
    snprintf(prefix, sizeof prefix, "\n%s{", family);
    for (const char *at = strstr(text, prefix); at; at = strstr(at + 1, prefix)) {
        const char *space = strchr(at + 1, ' ');
        if (space) sum += strtod(space + 1, NULL);
    }
    return sum;
}

static void send_some(lz_push_t *push, int n) {
    for (int i = 0; i < n; i++) LZ_CHECK_INT(lz_push_send_bytes(push, "abc", 3), LZ_OK);
}

LZ_TEST(text_format_has_every_family_and_series) {
    lz_context_t *ctx = LZ_TEST_CONTEXT("zmq.linger=0");
    char ep[128];
    lz_pull_t *pull = lz_pull_new(ctx, lz_test_inproc_endpoint(ep, sizeof ep));
    lz_push_t *push = lz_push_new(ctx, ep);
    lz_node_set_name(lz_push_node(push), "orders \"eu\"\\1");
    send_some(push, 3);
    char buf[16];
    for (int i = 0; i < 3; i++) {
        size_t size = sizeof buf;
        LZ_CHECK_INT(lz_pull_recv_bytes(pull, buf, &size, 2000), LZ_OK);
    }
    char *text = lz_context_prometheus(ctx);
    LZ_CHECK(text != NULL);
    LZ_CHECK(strncmp(text, "# HELP liberzmq_messages_sent_total Messages handed to libzmq.\n"
                           "# TYPE liberzmq_messages_sent_total counter\n", 100) == 0);
    LZ_CHECK(strstr(text, "liberzmq_otlp_") == NULL); // no span exporter, no exporter counters
    static const char *const families[] = {
        "messages_sent", "messages_received", "bytes_sent", "bytes_received", "errors", "outbound_dropped",
        "inbound_dropped", "backpressure_events", "failed_bind_count", "request_timeouts", "retries",
        "socket_rebuilds", "late_replies", "handshake_failures",
        "task_retries", "dead_letters", "config_reloads", "config_reload_errors", "connections_cut"};
    for (size_t i = 0; i < sizeof families / sizeof families[0]; i++) {
        char line[128];
        snprintf(line, sizeof line, "# TYPE liberzmq_%s_total counter\n", families[i]);
        LZ_CHECK(strstr(text, line) != NULL);
    }
    LZ_CHECK(strstr(text, "# TYPE liberzmq_active_connections gauge\n") != NULL);
    // The name's quote and backslash escaped; each node its own id.
    LZ_CHECK(strstr(text, "liberzmq_messages_sent_total{node=\"orders \\\"eu\\\"\\\\1\",id=\"2\"} 3\n") != NULL);
    LZ_CHECK(strstr(text, "liberzmq_messages_received_total{node=\"pull\",id=\"1\"} 3\n") != NULL);
    LZ_CHECK(strstr(text, "liberzmq_bytes_sent_total{node=\"(closed)\",id=\"0\"} 0\n") != NULL);
    free(text);

    // A closed node's counts move to the "(closed)" series: sums never drop.
    lz_push_destroy(&push);
    text = lz_context_prometheus(ctx);
    LZ_CHECK(strstr(text, "orders") == NULL);
    LZ_CHECK(strstr(text, "liberzmq_messages_sent_total{node=\"(closed)\",id=\"0\"} 3\n") != NULL);
    lz_metrics_t m;
    lz_context_metrics(ctx, &m);
    LZ_CHECK(family_sum(text, "liberzmq_messages_sent_total") == (double)m.messages_sent);
    LZ_CHECK(family_sum(text, "liberzmq_bytes_received_total") == (double)m.bytes_received);
    free(text);
    LZ_CHECK(lz_context_prometheus(NULL) == NULL);
    lz_pull_destroy(&pull);
    lz_context_destroy(&ctx);
}

// Label values are UTF-8, as the format requires (a scraper may refuse
// the page otherwise): a name cut at 63 bytes keeps whole characters, and
// bytes that are not UTF-8 become U+FFFD.
LZ_TEST(label_values_are_utf8) {
    lz_context_t *ctx = LZ_TEST_CONTEXT("zmq.linger=0");
    char ep[128], name[80];
    lz_pull_t *pull = lz_pull_new(ctx, lz_test_inproc_endpoint(ep, sizeof ep));
    lz_push_t *push = lz_push_new(ctx, ep);
    memset(name, 'a', 62);
    strcpy(name + 62, "\xc3\xa9"); // "\u00e9" across the cut
    LZ_CHECK_INT(lz_node_set_name(lz_pull_node(pull), name), LZ_OK);
    name[62] = '\0';
    LZ_CHECK_STR(lz_node_name(lz_pull_node(pull)), name);
    lz_node_set_name(lz_push_node(push), "caf\xc3\xa9 \xff\xc3(\xe2\x9c\x93");
    char *text = lz_context_prometheus(ctx);
    LZ_CHECK(text && lz__utf8_valid(text, strlen(text)));
    char line[160];
    snprintf(line, sizeof line, "liberzmq_messages_sent_total{node=\"%s\",id=\"1\"} 0\n", name);
    LZ_CHECK(text && strstr(text, line) != NULL);
    LZ_CHECK(text && strstr(text, "liberzmq_messages_sent_total{node=\"caf\xc3\xa9 \xef\xbf\xbd\xef\xbf\xbd("
                                  "\xe2\x9c\x93\",id=\"2\"} 0\n") != NULL);
    free(text);
    lz_push_destroy(&push);
    lz_pull_destroy(&pull);
    lz_context_destroy(&ctx);
}

LZ_TEST(http_serves_metrics) {
    lz_context_t *ctx = LZ_TEST_CONTEXT("zmq.linger=0");
    lz_pull_t *pull = lz_pull_new(ctx, "tcp://127.0.0.1:*");
    lz_prometheus_t *exporter = lz_prometheus_new(ctx, "127.0.0.1:0");
    LZ_CHECK(exporter != NULL);
    int port = lz_prometheus_port(exporter);
    LZ_CHECK(port > 0);
    char buf[65536];
    http_get(port, "GET", "/metrics", buf, sizeof buf);
    LZ_CHECK(strncmp(buf, "HTTP/1.1 200", 12) == 0 || strncmp(buf, "HTTP/1.0 200", 12) == 0);
    LZ_CHECK(strstr(buf, "Content-Type: text/plain; version=0.0.4; charset=utf-8\r\n") != NULL);
    LZ_CHECK(strstr(buf, "\r\n\r\n# HELP liberzmq_messages_sent_total") != NULL);
    LZ_CHECK(strstr(buf, "liberzmq_active_connections{node=\"pull\",id=\"1\"} 0\n") != NULL);
    LZ_CHECK(strstr(http_get(port, "GET", "/", buf, sizeof buf), " 404 ") != NULL);
    LZ_CHECK(strstr(http_get(port, "POST", "/metrics", buf, sizeof buf), " 405 ") != NULL);

    // The same port again is busy; a bad address is the caller's mistake.
    char busy[64];
    snprintf(busy, sizeof busy, "127.0.0.1:%d", port);
    LZ_CHECK(lz_prometheus_new(ctx, busy) == NULL);
    LZ_CHECK_INT(lz_last_error_code(), LZ_ECONNECTION);
    static const char *const bad[] = {"", "127.0.0.1", "localhost:9100", "127.0.0.1:99999", "::1:9100", "1.2.3.4:x"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        LZ_CHECK(lz_prometheus_new(ctx, bad[i]) == NULL);
        LZ_CHECK_INT(lz_last_error_code(), LZ_EINVAL);
    }
    LZ_CHECK(lz_prometheus_new(NULL, "127.0.0.1:0") == NULL);
    LZ_CHECK(lz_prometheus_port(NULL) < 0);

    // The exporter holds the context: still served after the caller lets go.
    lz_pull_destroy(&pull);
    lz_context_destroy(&ctx);
    http_get(port, "GET", "/metrics", buf, sizeof buf);
    LZ_CHECK(strstr(buf, "liberzmq_messages_sent_total{node=\"(closed)\",id=\"0\"} 0\n") != NULL);
    lz_prometheus_destroy(&exporter);
    LZ_CHECK(exporter == NULL);
    lz_prometheus_destroy(&exporter); // NULL: no-op
    LZ_CHECK_STR(http_get(port, "GET", "/metrics", buf, sizeof buf), "");
}

// raise_fd_limit lifts the soft RLIMIT_NOFILE to at least want (keeping
// the old one in *saved); false, saying why, when the hard limit is lower.
static bool raise_fd_limit(rlim_t want, struct rlimit *saved) {
    getrlimit(RLIMIT_NOFILE, saved);
    if (saved->rlim_max != RLIM_INFINITY && saved->rlim_max < want) {
        fprintf(stderr, "  skipped: RLIMIT_NOFILE's hard limit (%llu) is below %llu\n",
                (unsigned long long)saved->rlim_max, (unsigned long long)want);
        return false;
    }
    struct rlimit raised = {saved->rlim_cur > want ? saved->rlim_cur : want, saved->rlim_max};
    return setrlimit(RLIMIT_NOFILE, &raised) == 0;
}

// A server with a thousand peers holds descriptors past 1024, which
// select() cannot watch: the exporter's listening and accepted sockets
// are such descriptors here, and it still serves.
LZ_TEST(http_serves_past_descriptor_1024) {
    enum { FLOOD = 1100 };
    struct rlimit saved;
    if (!raise_fd_limit(FLOOD + 100, &saved)) return;
    lz_context_t *ctx = LZ_TEST_CONTEXT("zmq.linger=0");
    lz_prometheus_t *early = lz_prometheus_new(ctx, "127.0.0.1:0"); // its accepted sockets come past 1024
    static int fds[FLOOD + 1]; // distinct descriptors, all but the last below FLOOD
    int count = 0, fd = -1;
    while (fd < FLOOD && (fd = dup(STDERR_FILENO)) >= 0) fds[count++] = fd;
    LZ_CHECK(fd >= FLOOD);
    lz_prometheus_t *late = lz_prometheus_new(ctx, "127.0.0.1:0"); // listening past 1024 too
    LZ_CHECK(early != NULL);
    LZ_CHECK(late != NULL);
    lz_prometheus_t *exporters[] = {early, late};
    for (int i = 0; i < 2; i++) {
        char buf[65536] = "";
        if (exporters[i]) http_get(lz_prometheus_port(exporters[i]), "GET", "/metrics", buf, sizeof buf);
        LZ_CHECK(strncmp(buf, "HTTP/1.1 200", 12) == 0);
        LZ_CHECK(strstr(buf, "\r\n\r\n# HELP liberzmq_messages_sent_total") != NULL);
    }
    lz_prometheus_destroy(&early);
    lz_prometheus_destroy(&late);
    while (count) close(fds[--count]);
    lz_context_destroy(&ctx);
    setrlimit(RLIMIT_NOFILE, &saved);
}

// open_descriptors counts the process's open descriptors.
static int open_descriptors(void) {
    DIR *dir = opendir("/proc/self/fd");
    int count = -1; // the directory's own
    if (!dir) return -1;
    while (readdir(dir)) count++;
    closedir(dir);
    return count - 2; // "." and ".."
}

// connection_from connects to 127.0.0.1:port from the loopback address
// source (another address of 127.0.0.0/8 is another client to the
// exporter) and writes request.
static int connection_from(const char *source, int port, const char *request) {
    struct sockaddr_in to = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    struct sockaddr_in from = {.sin_family = AF_INET};
    inet_pton(AF_INET, "127.0.0.1", &to.sin_addr);
    inet_pton(AF_INET, source, &from.sin_addr);
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    LZ_CHECK(fd >= 0 && bind(fd, (struct sockaddr *)&from, sizeof from) == 0);
    LZ_CHECK(connect(fd, (struct sockaddr *)&to, sizeof to) == 0);
    LZ_CHECK(write(fd, request, strlen(request)) == (ssize_t)strlen(request));
    return fd;
}

// idle_connection connects to port and starts a request it never ends.
static int idle_connection(int port) {
    return connection_from("127.0.0.1", port, "GET /metrics HTTP/1.1\r\nHost: localhost\r\n");
}

// closed_by_peer counts the connections in fds the server has closed.
static int closed_by_peer(const int *fds, int n) {
    int closed = 0;
    char byte;
    for (int i = 0; i < n; i++) {
        ssize_t got = recv(fds[i], &byte, 1, MSG_PEEK | MSG_DONTWAIT);
        if (got == 0 || (got < 0 && errno != EAGAIN && errno != EWOULDBLOCK)) closed++;
    }
    return closed;
}

// Idle connections from one address cannot take the process's descriptors
// (they left none for its messaging peers, and blocked scrapes): past the
// limit per address (8) the exporter closes them at once, within the wait
// here, which is shorter than its idle timeout; once they are gone, it
// serves again.
LZ_TEST(idle_connections_are_bounded_per_address) {
    enum { FLOOD = 40, PER_ADDRESS = 8 };
    lz_context_t *ctx = LZ_TEST_CONTEXT("zmq.linger=0");
    lz_prometheus_t *exporter = lz_prometheus_new(ctx, "127.0.0.1:0");
    LZ_CHECK(exporter != NULL);
    int port = lz_prometheus_port(exporter), before = open_descriptors(), fds[FLOOD];
    for (int i = 0; i < FLOOD; i++) fds[i] = idle_connection(port);
    LZ_TEST_WAIT_UNTIL(closed_by_peer(fds, FLOOD) >= FLOOD - PER_ADDRESS, 3000 * LZ_TEST_SLOWDOWN);
    LZ_CHECK(closed_by_peer(fds, FLOOD) >= FLOOD - PER_ADDRESS);
    int held = open_descriptors() - before - FLOOD; // the exporter's side of the connections
    LZ_CHECK(held <= PER_ADDRESS);
    if (held > PER_ADDRESS) fprintf(stderr, "  the exporter holds %d connections\n", held);
    for (int i = 0; i < FLOOD; i++) close(fds[i]);
    char buf[65536] = "";
    LZ_TEST_WAIT_UNTIL(*http_get(port, "GET", "/metrics", buf, sizeof buf), 3000);
    LZ_CHECK(strncmp(buf, "HTTP/1.1 200", 12) == 0);
    lz_prometheus_destroy(&exporter);
    lz_context_destroy(&ctx);
}

// answered waits up to timeout_ms for the server to answer on fd.
static bool answered(int fd, int timeout_ms) {
    struct pollfd ready = {fd, POLLIN, 0};
    return poll(&ready, 1, timeout_ms) == 1;
}

// Past the total limit (64), from addresses each within its own limit, a
// connection waits in the listen backlog, unserved, and is served once a
// held one goes. The wait for no answer is the one fixed wait here: an
// exporter without the limit answers a local scrape in a few milliseconds.
LZ_TEST(connections_past_the_total_wait_for_a_free_slot) {
    enum { ADDRESSES = 8, PER_ADDRESS = 8, TOTAL = ADDRESSES * PER_ADDRESS };
    lz_context_t *ctx = LZ_TEST_CONTEXT("zmq.linger=0");
    lz_prometheus_t *exporter = lz_prometheus_new(ctx, "127.0.0.1:0");
    LZ_CHECK(exporter != NULL);
    int port = lz_prometheus_port(exporter), before = open_descriptors(), fds[TOTAL];
    for (int i = 0; i < TOTAL; i++) {
        char source[16];
        snprintf(source, sizeof source, "127.0.0.%d", 2 + i / PER_ADDRESS);
        fds[i] = connection_from(source, port, "GET /metrics HTTP/1.1\r\nHost: localhost\r\n");
    }
    LZ_TEST_WAIT_UNTIL(open_descriptors() - before - TOTAL >= TOTAL, 3000 * LZ_TEST_SLOWDOWN);
    LZ_CHECK_INT(open_descriptors() - before - TOTAL, TOTAL); // every one held: none past a limit
    int scrape = connection_from("127.0.0.20", port, "GET /metrics HTTP/1.0\r\nHost: localhost\r\n\r\n");
    LZ_CHECK(!answered(scrape, 500));
    for (int i = 0; i < PER_ADDRESS; i++) close(fds[i]);
    LZ_CHECK(answered(scrape, 3000 * LZ_TEST_SLOWDOWN));
    char status[13] = "";
    LZ_CHECK(read(scrape, status, 12) == 12);
    LZ_CHECK_STR(status, "HTTP/1.1 200");
    close(scrape);
    for (int i = PER_ADDRESS; i < TOTAL; i++) close(fds[i]);
    lz_prometheus_destroy(&exporter);
    lz_context_destroy(&ctx);
}

LZ_TEST(context_serves_from_configuration) {
    // A port that was free a moment ago (the exporter's own pick).
    lz_context_t *probe = LZ_TEST_CONTEXT("zmq.linger=0");
    lz_prometheus_t *exporter = lz_prometheus_new(probe, "127.0.0.1:0");
    int port = lz_prometheus_port(exporter);
    lz_prometheus_destroy(&exporter);
    lz_context_destroy(&probe);

    lz_config_t *cfg = lz_config_new();
    LZ_CHECK_INT(lz_config_set(cfg, "metrics.prometheus_listen", "nowhere"), LZ_ECONFIG);
    char listen[64];
    snprintf(listen, sizeof listen, "127.0.0.1:%d", port);
    LZ_CHECK_INT(lz_config_set(cfg, "metrics.prometheus_listen", listen), LZ_OK);
    lz_context_t *ctx = lz_context_new(cfg);
    LZ_CHECK(ctx != NULL);
    // Two contexts cannot serve one port: the second fails to start.
    LZ_CHECK(lz_context_new(cfg) == NULL);
    LZ_CHECK_INT(lz_last_error_code(), LZ_ECONNECTION);
    lz_config_destroy(&cfg);
    lz_pull_t *pull = lz_pull_new(ctx, "tcp://127.0.0.1:*");
    lz_node_set_name(lz_pull_node(pull), "jobs");
    char buf[65536];
    http_get(port, "GET", "/metrics", buf, sizeof buf);
    LZ_CHECK(strstr(buf, "liberzmq_messages_received_total{node=\"jobs\",id=\"1\"} 0\n") != NULL);
    lz_pull_destroy(&pull);
    lz_context_destroy(&ctx);
    LZ_CHECK_STR(http_get(port, "GET", "/metrics", buf, sizeof buf), ""); // stopped with its context
}

// scraped: a GET /metrics at host:port answers 200 with the metrics.
static bool scraped(const char *host, int port) {
    static char buf[65536];
    http_get_at(host, port, "GET", "/metrics", buf, sizeof buf);
    bool ok = strncmp(buf, "HTTP/1.1 200", 12) == 0 && strstr(buf, "# HELP liberzmq_messages_sent_total") != NULL;
    if (!ok) fprintf(stderr, "  GET http://%s%s%s:%d/metrics: '%.60s'\n", strchr(host, ':') ? "[" : "", host,
                     strchr(host, ':') ? "]" : "", port, buf);
    return ok;
}

// has_ipv6_loopback: whether a socket can be bound to ::1 here.
static bool has_ipv6_loopback(void) {
    int fd = socket(AF_INET6, SOCK_STREAM, 0);
    struct sockaddr_in6 at = {.sin6_family = AF_INET6, .sin6_addr = IN6ADDR_LOOPBACK_INIT};
    bool has = fd >= 0 && bind(fd, (struct sockaddr *)&at, sizeof at) == 0;
    if (fd >= 0) close(fd);
    return has;
}

// '*' is every address: scrapers reach it over IPv4 and over IPv6.
LZ_TEST(every_address_is_ipv4_and_ipv6) {
    lz_context_t *ctx = LZ_TEST_CONTEXT("zmq.linger=0");
    lz_prometheus_t *exporter = lz_prometheus_new(ctx, "*:0");
    LZ_CHECK(exporter != NULL);
    int port = lz_prometheus_port(exporter);
    LZ_CHECK(scraped("127.0.0.1", port));
    if (has_ipv6_loopback())
        LZ_CHECK(scraped("::1", port));
    else
        fprintf(stderr, "  IPv6 half skipped: no socket can be bound to ::1 on this host\n");
    // The port is taken for IPv4 too: no second exporter gets it, on '*' or on 127.0.0.1.
    char busy[64];
    snprintf(busy, sizeof busy, "*:%d", port);
    LZ_CHECK(lz_prometheus_new(ctx, busy) == NULL);
    LZ_CHECK_INT(lz_last_error_code(), LZ_ECONNECTION);
    snprintf(busy, sizeof busy, "127.0.0.1:%d", port);
    LZ_CHECK(lz_prometheus_new(ctx, busy) == NULL);
    LZ_CHECK_INT(lz_last_error_code(), LZ_ECONNECTION);
    lz_prometheus_destroy(&exporter);
    lz_context_destroy(&ctx);
}

/* A host without IPv6: while ipv6_refused_at is SOCKET, making an IPv6
 * socket fails with EAFNOSUPPORT (a kernel without IPv6); while it is BIND,
 * binding one fails with EADDRNOTAVAIL. No setting of this host does that
 * on cue, so these definitions stand in for the C library's (the
 * program's own symbols come first) and pass every other call on. */
enum { REFUSED_NOWHERE, REFUSED_AT_SOCKET, REFUSED_AT_BIND };
static atomic_int ipv6_refused_at;
static int (*real_socket)(int domain, int type, int protocol);
static int (*real_bind)(int fd, __CONST_SOCKADDR_ARG address, socklen_t length);

static void find_real_socket(void) { lz_test_next_function(&real_socket, "socket"); }
static void find_real_bind(void) { lz_test_next_function(&real_bind, "bind"); }

int socket(int domain, int type, int protocol) {
    static pthread_once_t once = PTHREAD_ONCE_INIT;
    pthread_once(&once, find_real_socket);
    if (domain == AF_INET6 && atomic_load(&ipv6_refused_at) == REFUSED_AT_SOCKET) {
        errno = EAFNOSUPPORT;
        return -1;
    }
    return real_socket(domain, type, protocol);
}

// glibc declares the address a transparent union of pointers under
// _GNU_SOURCE, a plain pointer otherwise: its bytes are the pointer either way.
int bind(int fd, __CONST_SOCKADDR_ARG address, socklen_t length) {
    static pthread_once_t once = PTHREAD_ONCE_INIT;
    pthread_once(&once, find_real_bind);
    const struct sockaddr *to;
    memcpy(&to, &address, sizeof to);
    if (to->sa_family == AF_INET6 && atomic_load(&ipv6_refused_at) == REFUSED_AT_BIND) {
        errno = EADDRNOTAVAIL;
        return -1;
    }
    return real_bind(fd, address, length);
}

// Without IPv6, '*' is IPv4's every address.
LZ_TEST(every_address_is_ipv4_without_ipv6) {
    lz_context_t *ctx = LZ_TEST_CONTEXT("zmq.linger=0");
    for (int at = REFUSED_AT_SOCKET; at <= REFUSED_AT_BIND; at++) {
        atomic_store(&ipv6_refused_at, at);
        lz_prometheus_t *exporter = lz_prometheus_new(ctx, "*:0");
        atomic_store(&ipv6_refused_at, REFUSED_NOWHERE);
        LZ_CHECK(exporter != NULL);
        if (!exporter)
            fprintf(stderr, "  refused at %s: %s\n", at == REFUSED_AT_SOCKET ? "socket" : "bind", lz_last_error());
        if (exporter) LZ_CHECK(scraped("127.0.0.1", lz_prometheus_port(exporter)));
        lz_prometheus_destroy(&exporter);
    }
    lz_context_destroy(&ctx);
}

LZ_TEST_MAIN(LZ_CASE(text_format_has_every_family_and_series), LZ_CASE(label_values_are_utf8),
             LZ_CASE(http_serves_metrics), LZ_CASE(http_serves_past_descriptor_1024),
             LZ_CASE(idle_connections_are_bounded_per_address),
             LZ_CASE(connections_past_the_total_wait_for_a_free_slot),
             LZ_CASE(context_serves_from_configuration), LZ_CASE(every_address_is_ipv4_and_ipv6),
             LZ_CASE(every_address_is_ipv4_without_ipv6))

/* Benchmark program for liberzmq's forwarder loop (lz_proxy, proxy_loop.c)
 * against libzmq's zmq_proxy_steerable. Pub/sub only: a raw libzmq PUB
 * (XPUB_NODROP, lzb_raw_nodrop) connects to the forwarder's frontend and a
 * raw libzmq SUB to its backend; between them runs either lz_proxy
 * (--proxy liberzmq, contender "proxy-liberzmq") or zmq_proxy_steerable on
 * a thread of ours (--proxy raw, "proxy-raw"). The ends are the raw
 * contender's (lzb_raw_open_via) for both, so the ratio of the two isolates
 * the forwarding loop. Other arguments and the output are the harness's
 * (see harness.h); scripts/bench.sh runs the two interleaved. */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <zmq.h>

#include "contenders.h"
#include "liberzmq.h"

typedef enum forwarder { FORWARD_LIBERZMQ, FORWARD_RAW } forwarder_t;

// zmq_proxy_steerable on its own thread, steered through a PAIR pipe.
typedef struct raw_forwarder {
    void *xsub, *xpub;
    void *control, *control_peer; // ours, and the one the proxy reads
    pthread_t thread;
    int running;
} raw_forwarder_t;

typedef struct proxy_state {
    forwarder_t forwarder;
    // One libzmq context for the ends and the forwarder, whichever it is:
    // the same I/O thread count on both sides of the ratio, and inproc
    // works. With liberzmq it is lz's context's own (lz_context_zmq).
    lz_context_t *lz;
    void *zctx;
    lz_proxy_t *lz_proxy;
    raw_forwarder_t raw;
    void *ends;        // the raw contender's PUB and SUB (lzb_raw_open_via)
    char backend[256]; // where the subscriber connects, resolved after the bind
} proxy_state_t;

static const char *libzmq_version(void) { return lzb_raw_ops.version(); }

// backend_url: where the forwarder's backend binds. The frontend takes the
// harness's endpoint; tcp needs another free port (libzmq picks one and
// the bind resolves it), ipc and inproc a name next to the frontend's.
static void backend_url(const lzb_spec_t *spec, char *buf, size_t len) {
    if (strcmp(spec->transport, "tcp") == 0)
        snprintf(buf, len, "tcp://127.0.0.1:*");
    else
        snprintf(buf, len, "%s-backend", spec->endpoint);
}

// ---- liberzmq: lz_proxy, a forwarder of liberzmq nodes ----

static int liberzmq_start(proxy_state_t *s, const char *front, const char *back) {
    s->lz_proxy = lz_proxy_new(s->lz, LZ_PROXY_FORWARDER, front, back, NULL);
    if (!s->lz_proxy || lz_proxy_start(s->lz_proxy) != LZ_OK) {
        fprintf(stderr, "proxy-liberzmq: %s\n", lz_last_error());
        return -1;
    }
    snprintf(s->backend, sizeof s->backend, "%s", lz_node_endpoint(lz_proxy_backend(s->lz_proxy)));
    return 0;
}

// ---- raw: zmq_proxy_steerable with what a libzmq user would set ----

// raw_bound makes a forwarder socket: no linger, the same XPUB_NODROP as
// lz_proxy's XPUB node has (a full subscriber holds the loop up instead of
// losing messages), bound to url.
static void *raw_bound(void *ctx, int type, const char *url) {
    void *sock = zmq_socket(ctx, type);
    int linger = 0;
    if (!sock) return NULL;
    int rc = zmq_setsockopt(sock, ZMQ_LINGER, &linger, sizeof linger);
    if (rc == 0 && type == ZMQ_XPUB) rc = lzb_raw_nodrop(sock);
    if (rc == 0) rc = zmq_bind(sock, url);
    if (rc == 0) return sock;
    zmq_close(sock);
    return NULL;
}

static void *raw_forward(void *arg) {
    raw_forwarder_t *f = arg;
    zmq_proxy_steerable(f->xsub, f->xpub, NULL, f->control_peer);
    return NULL;
}

// raw_pipe makes the control PAIR pipe, under a name no other open shares.
static int raw_pipe(proxy_state_t *s) {
    char url[64];
    snprintf(url, sizeof url, "inproc://bench-proxy-control-%p", (void *)s);
    s->raw.control = raw_bound(s->zctx, ZMQ_PAIR, url);
    s->raw.control_peer = zmq_socket(s->zctx, ZMQ_PAIR);
    return s->raw.control && s->raw.control_peer && zmq_connect(s->raw.control_peer, url) == 0 ? 0 : -1;
}

static int raw_start(proxy_state_t *s, const char *front, const char *back) {
    raw_forwarder_t *f = &s->raw;
    size_t len = sizeof s->backend;
    f->xsub = raw_bound(s->zctx, ZMQ_XSUB, front);
    f->xpub = raw_bound(s->zctx, ZMQ_XPUB, back);
    if (!f->xsub || !f->xpub || raw_pipe(s) != 0 || zmq_getsockopt(f->xpub, ZMQ_LAST_ENDPOINT, s->backend, &len) != 0) {
        fprintf(stderr, "proxy-raw: %s\n", zmq_strerror(zmq_errno()));
        return -1;
    }
    // The sockets move to the proxy's thread; pthread_create is the
    // memory barrier libzmq asks of a socket changing threads.
    f->running = pthread_create(&f->thread, NULL, raw_forward, f) == 0;
    if (!f->running) fprintf(stderr, "proxy-raw: cannot start the proxy's thread\n");
    return f->running ? 0 : -1;
}

static void raw_stop(raw_forwarder_t *f) {
    if (f->running) {
        zmq_send(f->control, "TERMINATE", 9, 0);
        pthread_join(f->thread, NULL);
    }
    void *socks[] = {f->xsub, f->xpub, f->control, f->control_peer};
    for (size_t i = 0; i < sizeof socks / sizeof socks[0]; i++)
        if (socks[i]) zmq_close(socks[i]);
}

// ---- the contenders: forwarder + raw ends ----

static void proxy_close(void *arg) {
    proxy_state_t *s = arg;
    // The ends first, receiver before sender (as every contender: the
    // harness has drained the queues, see drain in harness.c), then the
    // forwarder, then the context they all live in.
    if (s->ends) lzb_raw_ops.close(s->ends);
    lz_proxy_destroy(&s->lz_proxy);
    raw_stop(&s->raw);
    // The harness removes the frontend's ipc file; libzmq leaves the backend's.
    if (strncmp(s->backend, "ipc://", 6) == 0) unlink(s->backend + 6);
    if (s->lz)
        lz_context_destroy(&s->lz);
    else if (s->zctx)
        zmq_ctx_term(s->zctx);
    free(s);
}

static int context_open(proxy_state_t *s) {
    if (s->forwarder == FORWARD_RAW) {
        s->zctx = zmq_ctx_new();
    } else if ((s->lz = lzb_liberzmq_context())) {
        s->zctx = lz_context_zmq(s->lz);
    }
    return s->zctx ? 0 : -1;
}

// proxy_open makes the forwarder with the receiving end (in a process of
// its own under --processes 2, the sender only connects to the frontend).
static void *proxy_open(const lzb_spec_t *spec, forwarder_t forwarder) {
    proxy_state_t *s = calloc(1, sizeof *s);
    if (!s) return NULL;
    s->forwarder = forwarder;
    int ok = spec->pattern == LZB_PUBSUB && context_open(s) == 0;
    if (ok && lzb_makes(spec, LZB_RECEIVING_END)) {
        char back[sizeof spec->endpoint + 16];
        backend_url(spec, back, sizeof back);
        ok = (forwarder == FORWARD_RAW ? raw_start(s, spec->endpoint, back)
                                       : liberzmq_start(s, spec->endpoint, back)) == 0;
    }
    if (ok) ok = (s->ends = lzb_raw_open_via(spec, s->zctx, s->backend)) != NULL;
    if (ok) return s;
    if (spec->pattern != LZB_PUBSUB) fprintf(stderr, "bench_proxy: pubsub only\n");
    proxy_close(s);
    return NULL;
}

static void *open_liberzmq(const lzb_spec_t *spec) { return proxy_open(spec, FORWARD_LIBERZMQ); }
static void *open_raw(const lzb_spec_t *spec) { return proxy_open(spec, FORWARD_RAW); }

static long proxy_send(void *arg, long n) { return lzb_raw_ops.send(((proxy_state_t *)arg)->ends, n); }
static long proxy_recv(void *arg, long n) { return lzb_raw_ops.recv(((proxy_state_t *)arg)->ends, n); }

// The two contenders differ only in name, version and forwarder.
#define FORWARDER_OPS(label, version_fn, open_fn)                                                                      \
    {                                                                                                                  \
        .name = label, .version = version_fn, .open = open_fn, .send = proxy_send, .recv = proxy_recv,                 \
        .close = proxy_close                                                                                           \
    }
static const lzb_ops_t forwarders[] = {
    [FORWARD_LIBERZMQ] = FORWARDER_OPS("proxy-liberzmq", lz_version, open_liberzmq),
    [FORWARD_RAW] = FORWARDER_OPS("proxy-raw", libzmq_version, open_raw),
};

static int usage(const char *prog, const char *why) {
    fprintf(stderr, "%s: %s\n%s takes pubsub, --proxy liberzmq|raw and the harness's options:\n", prog, why, prog);
    lzb_usage(prog);
    return 2;
}

// take_proxy takes --proxy and its value out of argv into *which, the other
// arguments into args (*n of them); NULL, or why the arguments are refused.
static const char *take_proxy(int argc, char **argv, char **args, int *n, const char **which) {
    *which = NULL;
    *n = 0;
    for (int i = 0; i < argc; i++) {
        if (strcmp(argv[i], "--proxy") != 0) {
            args[(*n)++] = argv[i];
            continue;
        }
        if (*which) return "option --proxy given twice";
        if (i + 1 >= argc) return "option --proxy needs a value: liberzmq or raw";
        *which = argv[++i];
        if (strcmp(*which, "liberzmq") != 0 && strcmp(*which, "raw") != 0) {
            static char bad[128];
            snprintf(bad, sizeof bad, "bad value '%.60s' for --proxy: liberzmq or raw", *which);
            return bad;
        }
    }
    if (!*which) return "--proxy liberzmq|raw is required";
    if (*n < 2 || strcmp(args[1], "pubsub") != 0) return "the forwarder is measured with pubsub only";
    return NULL;
}

// main picks the contender by --proxy and hands the rest to lzb_main.
int main(int argc, char **argv) {
    char **args = calloc((size_t)argc + 1, sizeof *args);
    if (!args) return 1;
    const char *which;
    int n;
    const char *why = take_proxy(argc, argv, args, &n, &which);
    int rc = why ? usage(argv[0], why)
                 : lzb_main(n, args, &forwarders[strcmp(which, "raw") == 0 ? FORWARD_RAW : FORWARD_LIBERZMQ]);
    free(args);
    return rc;
}

/* The raw libzmq contender: the baseline every ratio is taken against.
 * It does what a careful libzmq user does: one frame per push (topic +
 * payload for pub/sub), zmq_msg_t reused on receive, REQ/REP echo. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zmq.h>

#include "contenders.h"

typedef struct raw_state {
    void *ctx;
    int own_ctx;   // 0: the caller's context (lzb_raw_open_via), left to it
    void *tx, *rx; // sender and receiver; for reqrep the REQ and REP
    lzb_pattern_t pattern;
    size_t size;
    char *buf;        // the payload, sent again and again
    zmq_msg_t rx_msg; // receiver/server side
    zmq_msg_t tx_msg; // client side replies
} raw_state_t;

static const char *raw_version(void) {
    static char v[32];
    int major, minor, patch;
    zmq_version(&major, &minor, &patch);
    snprintf(v, sizeof v, "%d.%d.%d", major, minor, patch);
    return v;
}

static void raw_close(void *arg) {
    raw_state_t *s = arg;
    // Receiver first, like every contender; the harness has drained the
    // queues by now (see drain in harness.c).
    if (s->rx) zmq_close(s->rx);
    if (s->tx) zmq_close(s->tx);
    zmq_msg_close(&s->rx_msg);
    zmq_msg_close(&s->tx_msg);
    if (s->ctx && s->own_ctx) zmq_ctx_term(s->ctx);
    free(s->buf);
    free(s);
}

// Options both ends share: no linger at close, and timeouts so no driver
// waits forever on a peer that has stopped; a REQ socket waits as long as
// every contender's request does.
static void *raw_socket(void *ctx, int type) {
    void *sock = zmq_socket(ctx, type);
    int linger = 0, timeout = type == ZMQ_REQ ? LZB_REQUEST_TIMEOUT_MS : LZB_IO_TIMEOUT_MS;
    if (sock) {
        zmq_setsockopt(sock, ZMQ_LINGER, &linger, sizeof linger);
        zmq_setsockopt(sock, ZMQ_SNDTIMEO, &timeout, sizeof timeout);
        zmq_setsockopt(sock, ZMQ_RCVTIMEO, &timeout, sizeof timeout);
    }
    return sock;
}

int lzb_raw_nodrop(void *pub) {
    int on = 1;
    return zmq_setsockopt(pub, ZMQ_XPUB_NODROP, &on, sizeof on);
}

// raw_open_end makes one end at url: the sender connects, the receiver binds
// (as liberzmq's pull, pub and server do) unless rx_connects (a device binds
// between them, see lzb_raw_open_via).
static void *raw_open_end(raw_state_t *s, const lzb_spec_t *spec, int sending, const char *url, int rx_connects) {
    static const int types[][2] = {
        [LZB_PUSHPULL] = {ZMQ_PUSH, ZMQ_PULL},
        [LZB_PUBSUB] = {ZMQ_PUB, ZMQ_SUB},
        [LZB_REQREP] = {ZMQ_REQ, ZMQ_REP},
    };
    void *sock = raw_socket(s->ctx, types[spec->pattern][sending ? 0 : 1]);
    if (!sock) return NULL;
    int rc = 0;
    if (spec->pattern == LZB_PUBSUB)
        rc = sending ? lzb_raw_nodrop(sock) : zmq_setsockopt(sock, ZMQ_SUBSCRIBE, LZB_TOPIC, strlen(LZB_TOPIC));
    if (rc == 0) rc = sending || rx_connects ? zmq_connect(sock, url) : zmq_bind(sock, url);
    if (rc == 0) return sock;
    zmq_close(sock);
    return NULL;
}

// The receiver binds spec->endpoint, or connects to rx_url when given.
void *lzb_raw_open_via(const lzb_spec_t *spec, void *ctx, const char *rx_url) {
    raw_state_t *s = calloc(1, sizeof *s);
    if (!s) return NULL;
    s->pattern = spec->pattern;
    s->size = spec->size;
    s->buf = malloc(spec->size);
    zmq_msg_init(&s->rx_msg);
    zmq_msg_init(&s->tx_msg);
    s->own_ctx = !ctx;
    if (!s->buf) goto fail; // before zmq_ctx_new, which would change errno
    s->ctx = ctx ? ctx : zmq_ctx_new();
    if (!s->ctx) goto fail;
    memset(s->buf, 'x', spec->size);
    // The receiving end first, so a sender in the same process finds it bound.
    if (lzb_makes(spec, LZB_RECEIVING_END) &&
        !(s->rx = raw_open_end(s, spec, 0, rx_url ? rx_url : spec->endpoint, rx_url != NULL)))
        goto fail;
    if (lzb_makes(spec, LZB_SENDING_END) && !(s->tx = raw_open_end(s, spec, 1, spec->endpoint, 0))) goto fail;
    return s;
fail:;
    int err = zmq_errno(); // why open failed, for the caller too
    fprintf(stderr, "raw: %s\n", zmq_strerror(err));
    raw_close(s);
    errno = err;
    return NULL;
}

static void *raw_open(const lzb_spec_t *spec) { return lzb_raw_open_via(spec, NULL, NULL); }

static long raw_send(void *arg, long n) {
    raw_state_t *s = arg;
    for (long i = 0; i < n; i++) {
        if (s->pattern == LZB_PUBSUB && zmq_send(s->tx, LZB_TOPIC, strlen(LZB_TOPIC), ZMQ_SNDMORE) < 0) return i;
        if (zmq_send(s->tx, s->buf, s->size, 0) < 0) return i;
    }
    return n;
}

// raw_recv reads whole messages, whatever their frame count.
static long raw_recv(void *arg, long n) {
    raw_state_t *s = arg;
    for (long i = 0; i < n; i++) {
        do {
            if (zmq_msg_recv(&s->rx_msg, s->rx, 0) < 0) return i;
        } while (zmq_msg_more(&s->rx_msg));
    }
    return n;
}

static void raw_serve(void *arg, const atomic_int *stop) {
    raw_state_t *s = arg;
    while (!atomic_load(stop))
        if (zmq_msg_recv(&s->rx_msg, s->rx, 0) >= 0) zmq_msg_send(&s->rx_msg, s->rx, 0);
}

static int raw_request(void *arg) {
    raw_state_t *s = arg;
    if (zmq_send(s->tx, s->buf, s->size, 0) < 0) return -1;
    return zmq_msg_recv(&s->tx_msg, s->tx, 0) < 0 ? -1 : 0;
}

const lzb_ops_t lzb_raw_ops = {
    .name = "raw",
    .version = raw_version,
    .open = raw_open,
    .send = raw_send,
    .recv = raw_recv,
    .serve = raw_serve,
    .request = raw_request,
    .close = raw_close,
};

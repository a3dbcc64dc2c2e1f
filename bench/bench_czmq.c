/* Benchmark program for CZMQ, the high-level C binding: zsock sockets and
 * zframe messages (its cheapest message type), as a CZMQ user writes them.
 * Arguments and output are the harness's (see harness.h). */
#include <czmq.h>
#include <stdio.h>
#include <string.h>

#include "harness.h"

typedef struct czmq_state {
    zsock_t *tx, *rx; // sender and receiver; for reqrep the REQ and REP
    lzb_pattern_t pattern;
    size_t size;
    char *buf;
} czmq_state_t;

static const char *czmq_version(void) {
    static char v[32];
    int major, minor, patch;
    zsys_version(&major, &minor, &patch);
    snprintf(v, sizeof v, "%d.%d.%d", major, minor, patch);
    return v;
}

static void czmq_close(void *arg) {
    czmq_state_t *s = arg;
    zsock_destroy(&s->rx); // receiver first, see drain in harness.c
    zsock_destroy(&s->tx);
    free(s->buf);
    free(s);
}

// A REQ socket waits as long as every contender's request does.
static zsock_t *czmq_socket(int type) {
    zsock_t *sock = zsock_new(type);
    int timeout = type == ZMQ_REQ ? LZB_REQUEST_TIMEOUT_MS : LZB_IO_TIMEOUT_MS;
    if (sock) {
        zsock_set_linger(sock, 0);
        zsock_set_sndtimeo(sock, timeout);
        zsock_set_rcvtimeo(sock, timeout);
    }
    return sock;
}

// czmq_open_end makes one end: the sender connects, the receiver binds.
static zsock_t *czmq_open_end(const lzb_spec_t *spec, int sending) {
    static const int types[][2] = {
        [LZB_PUSHPULL] = {ZMQ_PUSH, ZMQ_PULL},
        [LZB_PUBSUB] = {ZMQ_PUB, ZMQ_SUB},
        [LZB_REQREP] = {ZMQ_REQ, ZMQ_REP},
    };
    zsock_t *sock = czmq_socket(types[spec->pattern][sending ? 0 : 1]);
    if (!sock) return NULL;
    if (spec->pattern == LZB_PUBSUB) {
        if (sending)
            zsock_set_xpub_nodrop(sock, 1); // flow control, as for every contender
        else
            zsock_set_subscribe(sock, LZB_TOPIC);
    }
    int rc = sending ? zsock_connect(sock, "%s", spec->endpoint) : zsock_bind(sock, "%s", spec->endpoint);
    if (rc < 0) zsock_destroy(&sock);
    return sock;
}

static void *czmq_open(const lzb_spec_t *spec) {
    czmq_state_t *s = calloc(1, sizeof *s);
    if (!s) return NULL;
    s->pattern = spec->pattern;
    s->size = spec->size;
    s->buf = malloc(spec->size);
    if (!s->buf) goto fail;
    memset(s->buf, 'x', spec->size);
    if (lzb_makes(spec, LZB_RECEIVING_END) && !(s->rx = czmq_open_end(spec, 0))) goto fail;
    if (lzb_makes(spec, LZB_SENDING_END) && !(s->tx = czmq_open_end(spec, 1))) goto fail;
    return s;
fail:
    czmq_close(s);
    return NULL;
}

static int send_frame(zsock_t *sock, const void *data, size_t size, int flags) {
    zframe_t *f = zframe_new(data, size);
    return f ? zframe_send(&f, sock, flags) : -1;
}

static long czmq_send(void *arg, long n) {
    czmq_state_t *s = arg;
    for (long i = 0; i < n; i++) {
        if (s->pattern == LZB_PUBSUB && send_frame(s->tx, LZB_TOPIC, strlen(LZB_TOPIC), ZFRAME_MORE) != 0) return i;
        if (send_frame(s->tx, s->buf, s->size, 0) != 0) return i;
    }
    return n;
}

// recv_message reads every frame of one message; 0 or -1 on timeout.
static int recv_message(zsock_t *sock) {
    int more;
    do {
        zframe_t *f = zframe_recv(sock);
        if (!f) return -1;
        more = zframe_more(f);
        zframe_destroy(&f);
    } while (more);
    return 0;
}

static long czmq_recv(void *arg, long n) {
    czmq_state_t *s = arg;
    for (long i = 0; i < n; i++)
        if (recv_message(s->rx) != 0) return i;
    return n;
}

static void czmq_serve(void *arg, const atomic_int *stop) {
    czmq_state_t *s = arg;
    while (!atomic_load(stop)) {
        zframe_t *f = zframe_recv(s->rx);
        if (f) zframe_send(&f, s->rx, 0);
    }
}

static int czmq_request(void *arg) {
    czmq_state_t *s = arg;
    if (send_frame(s->tx, s->buf, s->size, 0) != 0) return -1;
    return recv_message(s->tx);
}

static const lzb_ops_t czmq_ops = {
    .name = "czmq",
    .version = czmq_version,
    .open = czmq_open,
    .send = czmq_send,
    .recv = czmq_recv,
    .serve = czmq_serve,
    .request = czmq_request,
    .close = czmq_close,
};

int main(int argc, char **argv) {
    zsys_handler_set(NULL); // keep the default signal handling
    return lzb_main(argc, argv, &czmq_ops);
}

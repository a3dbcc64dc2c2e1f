/* Benchmark program for nng (nanomsg-next-gen): push0/pull0, pub0/sub0
 * (topic as a prefix of the one message: nng has no multipart), req0/rep0.
 * Arguments and output are the harness's (see harness.h). */
#include <nng/nng.h>
#include <nng/protocol/pipeline0/pull.h>
#include <nng/protocol/pipeline0/push.h>
#include <nng/protocol/pubsub0/pub.h>
#include <nng/protocol/pubsub0/sub.h>
#include <nng/protocol/reqrep0/rep.h>
#include <nng/protocol/reqrep0/req.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "harness.h"

// Queue depth in messages, like libzmq's default high water mark of 1000:
// without it nng hands over one message at a time.
#define NNG_BENCH_BUFFER 1000

typedef struct nng_state {
    nng_socket tx, rx;
    int has_tx, has_rx; // which are open, for close
    char *msg;          // the message: topic prefix (pub/sub) then payload
    size_t len;
} nng_state_t;

static const char *nngb_version(void) { return nng_version(); }

static void nngb_close(void *arg) {
    nng_state_t *s = arg;
    if (s->has_rx) nng_close(s->rx); // receiver first, as for the others
    if (s->has_tx) nng_close(s->tx);
    free(s->msg);
    free(s);
}

// open_socket opens the socket of one end of pattern: the sender (push,
// pub, req) or the receiver.
static int open_socket(nng_socket *sock, lzb_pattern_t pattern, int sending) {
    switch (pattern) {
    case LZB_PUBSUB:
        return sending ? nng_pub0_open(sock) : nng_sub0_open(sock);
    case LZB_REQREP:
        return sending ? nng_req0_open(sock) : nng_rep0_open(sock);
    default:
        return sending ? nng_push0_open(sock) : nng_pull0_open(sock);
    }
}

// set_options: timeouts (a requester, sending, waits as long as every
// contender's request does) and queue depths.
static int set_options(nng_socket sock, lzb_pattern_t pattern, int sending) {
    nng_duration timeout = pattern == LZB_REQREP && sending ? LZB_REQUEST_TIMEOUT_MS : LZB_IO_TIMEOUT_MS;
    int rc = nng_socket_set_ms(sock, NNG_OPT_SENDTIMEO, timeout);
    if (rc == 0) rc = nng_socket_set_ms(sock, NNG_OPT_RECVTIMEO, timeout);
    if (rc == 0 && pattern != LZB_REQREP) {
        // Not every socket has both queues (pull cannot send): ignore ENOTSUP.
        nng_socket_set_int(sock, NNG_OPT_SENDBUF, NNG_BENCH_BUFFER);
        nng_socket_set_int(sock, NNG_OPT_RECVBUF, NNG_BENCH_BUFFER);
    }
    return rc;
}

static int open_receiver(nng_state_t *s, const lzb_spec_t *spec) {
    int rc = open_socket(&s->rx, spec->pattern, 0);
    s->has_rx = rc == 0;
    if (rc == 0 && spec->pattern == LZB_PUBSUB)
        rc = nng_socket_set(s->rx, NNG_OPT_SUB_SUBSCRIBE, LZB_TOPIC, strlen(LZB_TOPIC));
    if (rc == 0) rc = set_options(s->rx, spec->pattern, 0);
    return rc == 0 ? nng_listen(s->rx, spec->endpoint, NULL, 0) : rc;
}

// A sender alone (its receiver in another process, maybe not listening yet)
// dials in the background, as libzmq connects.
static int open_sender(nng_state_t *s, const lzb_spec_t *spec) {
    int rc = open_socket(&s->tx, spec->pattern, 1);
    s->has_tx = rc == 0;
    if (rc == 0) rc = set_options(s->tx, spec->pattern, 1);
    int flags = spec->ends == LZB_SENDING_END ? NNG_FLAG_NONBLOCK : 0;
    return rc == 0 ? nng_dial(s->tx, spec->endpoint, NULL, flags) : rc;
}

static void *nngb_open(const lzb_spec_t *spec) {
    nng_state_t *s = calloc(1, sizeof *s);
    if (!s) return NULL;
    size_t topic = spec->pattern == LZB_PUBSUB ? strlen(LZB_TOPIC) : 0;
    s->len = topic + spec->size;
    s->msg = malloc(s->len);
    int rc = s->msg ? 0 : NNG_ENOMEM;
    if (rc == 0) {
        memcpy(s->msg, LZB_TOPIC, topic);
        memset(s->msg + topic, 'x', spec->size);
    }
    if (rc == 0 && lzb_makes(spec, LZB_RECEIVING_END)) rc = open_receiver(s, spec);
    if (rc == 0 && lzb_makes(spec, LZB_SENDING_END)) rc = open_sender(s, spec);
    if (rc == 0) return s;
    fprintf(stderr, "nng: %s\n", nng_strerror(rc));
    nngb_close(s);
    return NULL;
}

static long nngb_send(void *arg, long n) {
    nng_state_t *s = arg;
    for (long i = 0; i < n; i++)
        if (nng_send(s->tx, s->msg, s->len, 0) != 0) return i;
    return n;
}

static int recv_one(nng_socket sock) {
    void *p;
    size_t size;
    if (nng_recv(sock, &p, &size, NNG_FLAG_ALLOC) != 0) return -1;
    nng_free(p, size);
    return 0;
}

static long nngb_recv(void *arg, long n) {
    nng_state_t *s = arg;
    for (long i = 0; i < n; i++)
        if (recv_one(s->rx) != 0) return i;
    return n;
}

static void nngb_serve(void *arg, const atomic_int *stop) {
    nng_state_t *s = arg;
    while (!atomic_load(stop)) {
        void *p;
        size_t size;
        if (nng_recv(s->rx, &p, &size, NNG_FLAG_ALLOC) == 0 && nng_send(s->rx, p, size, NNG_FLAG_ALLOC) != 0)
            nng_free(p, size);
    }
}

static int nngb_request(void *arg) {
    nng_state_t *s = arg;
    if (nng_send(s->tx, s->msg, s->len, 0) != 0) return -1;
    return recv_one(s->tx);
}

static const lzb_ops_t nng_ops = {
    .name = "nng",
    .version = nngb_version,
    .open = nngb_open,
    .send = nngb_send,
    .recv = nngb_recv,
    .serve = nngb_serve,
    .request = nngb_request,
    .close = nngb_close,
};

int main(int argc, char **argv) { return lzb_main(argc, argv, &nng_ops); }

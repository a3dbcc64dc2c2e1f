/* The liberzmq contenders, through the public API only: raw bytes
 * (lz_push_send_bytes and lz_pull_recv_bytes, lz_pub_publish_bytes and
 * lz_sub_recv_bytes; from 4 KiB on lz_pull_recv and lz_sub_recv with the
 * raw codec, which do not copy the frame) and JSON values (the seeds'
 * message as an lz_value_t, the default json codec). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "contenders.h"
#include "liberzmq.h"

typedef struct lzc_state {
    lz_context_t *ctx;
    lz_push_t *push;
    lz_pull_t *pull;
    lz_pub_t *pub;
    lz_sub_t *sub;
    lz_server_t *server;
    lz_client_t *client;
    lzb_pattern_t pattern;
    int json; // send lz_value_t through the json codec
    size_t size;
    char *buf;           // raw payload, sent (read by the sending thread)
    char *rbuf;          // where raw payloads are received: the receiving thread's own
    lz_value_t *request; // reqrep request data
    long seq;
    size_t frame; // the last JSON message's payload frame, in bytes
} lzc_state_t;

static const char *lzc_version(void) { return lz_version(); }

// The seeds' message, built per message as an application would.
static lz_value_t *seed_value(long seq) {
    lz_value_t *v = lz_value_object();
    if (v &&
        (lz_value_object_set_string(v, "symbol", LZB_SEED_SYMBOL) != 0 ||
         lz_value_object_set_double(v, "price", LZB_SEED_PRICE) != 0 || lz_value_object_set_int(v, "seq", seq) != 0))
        lz_value_destroy(&v);
    return v;
}

// The benchmark's settings, the same as raw libzmq's sockets get: no linger,
// default high water mark, short timeouts so the drivers can stop.
lz_context_t *lzb_liberzmq_context(void) {
    lz_config_t *cfg = lz_config_new();
    if (!cfg) return NULL;
    lz_context_t *ctx = NULL;
    if (lz_config_set_int(cfg, "zmq.linger", 0) == 0 && lz_config_set_int(cfg, "zmq.high_water_mark", 1000) == 0 &&
        lz_config_set_int(cfg, "zmq.send_timeout", LZB_IO_TIMEOUT_MS) == 0 &&
        lz_config_set_int(cfg, "zmq.receive_timeout", LZB_IO_TIMEOUT_MS) == 0 &&
        // Like for like with raw REP, which answers on its one thread: the
        // server runs handlers inline (the concurrency-1 rule of reqrep.h).
        // Push/pull and pub/sub receive through lz_*_recv, unaffected.
        lz_config_set_int(cfg, "zmq.handler_max_concurrency", 1) == 0 &&
        // What tracing costs (docs/tracing.md): LZ_BENCH_TRACING=1 turns it on.
        lz_config_set_bool(cfg, "tracing.enabled", getenv("LZ_BENCH_TRACING") != NULL) == 0 &&
        // What a socket the ZAP handler guards costs (docs/security.md):
        // LZ_BENCH_GUARD=1 adds an access rule no peer matches (TEST-NET-1).
        lz_config_set(cfg, "security.deny_addresses", getenv("LZ_BENCH_GUARD") ? "192.0.2.1" : "") == 0)
        ctx = lz_context_new(cfg);
    lz_config_destroy(&cfg);
    return ctx;
}

static void lzc_close(void *arg) {
    lzc_state_t *s = arg;
    if (s->server) lz_server_stop(s->server);
    lz_client_destroy(&s->client);
    lz_server_destroy(&s->server);
    // Receivers first, as for every contender (see drain in harness.c).
    lz_pull_destroy(&s->pull);
    lz_push_destroy(&s->push);
    lz_sub_destroy(&s->sub);
    lz_pub_destroy(&s->pub);
    lz_value_destroy(&s->request);
    lz_context_destroy(&s->ctx);
    free(s->buf);
    free(s->rbuf);
    free(s);
}

// The echo action: the reply is the request's data.
static int echo(const lz_message_t *request, lz_value_t **reply, void *arg) {
    *reply = lz_value_copy(lz_message_value(request));
    return *reply ? 0 : LZ_ENOMEM;
}

static int open_pushpull(lzc_state_t *s, const lzb_spec_t *spec, const char *bind, const char *connect) {
    if (lzb_makes(spec, LZB_RECEIVING_END) && !(s->pull = lz_pull_new(s->ctx, bind))) return -1;
    if (s->pull && !s->json && lz_node_set_serializer(lz_pull_node(s->pull), "raw") != 0) return -1;
    if (lzb_makes(spec, LZB_SENDING_END) && !(s->push = lz_push_new(s->ctx, connect))) return -1;
    return 0;
}

// The publisher binds and the subscriber connects, as liberzmq's defaults
// have them.
static int open_pubsub(lzc_state_t *s, const lzb_spec_t *spec, const char *bind, const char *connect) {
    if (lzb_makes(spec, LZB_SENDING_END)) {
        // Flow control instead of drops, as for every contender (lzb_raw_nodrop).
        if (!(s->pub = lz_pub_new(s->ctx, bind)) || lzb_raw_nodrop(lz_node_zmq_socket(lz_pub_node(s->pub))) != 0)
            return -1;
    }
    if (lzb_makes(spec, LZB_RECEIVING_END)) {
        if (!(s->sub = lz_sub_new(s->ctx, connect)) || lz_sub_subscribe(s->sub, LZB_TOPIC) != 0) return -1;
        if (!s->json && lz_node_set_serializer(lz_sub_node(s->sub), "raw") != 0) return -1;
    }
    return 0;
}

static int open_reqrep(lzc_state_t *s, const char *bind, const char *connect) {
    s->request = s->json ? seed_value(0) : lz_value_stringn(s->buf, s->size);
    s->server = lz_server_new(s->ctx, bind);
    if (!s->request || !s->server || lz_server_on(s->server, "echo", echo, NULL) != 0 ||
        lz_server_start(s->server) != 0)
        return -1;
    s->client = lz_client_new(s->ctx, connect);
    return s->client ? 0 : -1;
}

static void *lzc_open_codec(const lzb_spec_t *spec, int json) {
    char bind[300], connect[300];
    lzc_state_t *s = calloc(1, sizeof *s);
    if (!s) return NULL;
    s->pattern = spec->pattern;
    s->json = json;
    s->size = spec->size;
    s->buf = malloc(spec->size);
    s->rbuf = malloc(spec->size);
    // Why open failed is the thread's last error, as for liberzmq's own failures.
    if (!s->buf || !s->rbuf) lz_set_error(LZ_ENOMEM, "out of memory");
    else s->ctx = lzb_liberzmq_context();
    int rc = -1;
    if (s->ctx) {
        memset(s->buf, 'x', spec->size);
        snprintf(bind, sizeof bind, "@%s", spec->endpoint);
        snprintf(connect, sizeof connect, ">%s", spec->endpoint);
        rc = spec->pattern == LZB_PUBSUB   ? open_pubsub(s, spec, bind, connect)
             : spec->pattern == LZB_REQREP ? open_reqrep(s, bind, connect)
                                           : open_pushpull(s, spec, bind, connect);
    }
    if (rc == 0) return s;
    fprintf(stderr, "liberzmq: %s\n", lz_last_error());
    lzc_close(s);
    return NULL;
}

static void *lzc_open_raw(const lzb_spec_t *spec) { return lzc_open_codec(spec, 0); }
static void *lzc_open_json(const lzb_spec_t *spec) { return lzc_open_codec(spec, 1); }

// send_json sends one seeds' message, built fresh with the next seq.
static int send_json(lzc_state_t *s) {
    lz_value_t *v = seed_value(s->seq++);
    if (!v) return -1;
    int rc = s->pattern == LZB_PUBSUB ? lz_pub_publish(s->pub, LZB_TOPIC, v) : lz_push_send(s->push, "tick", v, 0);
    lz_value_destroy(&v);
    return rc;
}

static int send_raw(lzc_state_t *s) {
    return s->pattern == LZB_PUBSUB ? lz_pub_publish_bytes(s->pub, LZB_TOPIC, s->buf, s->size)
                                    : lz_push_send_bytes(s->push, s->buf, s->size);
}

static long lzc_send(void *arg, long n) {
    lzc_state_t *s = arg;
    for (long i = 0; i < n; i++)
        if ((s->json ? send_json(s) : send_raw(s)) != 0) return i;
    return n;
}

// recv_raw takes one message's bytes into the contender's receive buffer,
// as raw libzmq's receive takes them into its reused zmq_msg_t. Not s->buf:
// in one process the sender reads that on another thread meanwhile.
static int recv_raw(lzc_state_t *s) {
    char topic[64];
    size_t topic_size = sizeof topic, size = s->size;
    return s->pattern == LZB_PUBSUB ? lz_sub_recv_bytes(s->sub, topic, &topic_size, s->rbuf, &size, LZB_IO_TIMEOUT_MS)
                                    : lz_pull_recv_bytes(s->pull, s->rbuf, &size, LZB_IO_TIMEOUT_MS);
}

// recv_message takes one owned message (decoded by the node's codec, or
// the raw frame as libzmq received it) and frees it.
static int recv_message(lzc_state_t *s) {
    lz_message_t *m = s->pattern == LZB_PUBSUB ? lz_sub_recv(s->sub, LZB_IO_TIMEOUT_MS)
                                               : lz_pull_recv(s->pull, LZB_IO_TIMEOUT_MS);
    if (!m) return -1;
    lz_message_payload(m, &s->frame);
    lz_message_destroy(&m);
    return LZ_OK;
}

// From this size on, raw frames are taken as messages, which keep the frame
// libzmq received (the raw codec borrows it) where lz_*_recv_bytes copies
// it out: 14% fewer instructions per receive at 4 KiB, 20% more at 256 B
// (callgrind, inproc). Raw libzmq's contender never copies either.
#define LZC_ZERO_COPY_FROM 4096

// lzc_recv takes small raw frames into the contender's buffer, and large
// ones and JSON messages as owned messages.
static long lzc_recv(void *arg, long n) {
    lzc_state_t *s = arg;
    int (*recv_one)(lzc_state_t *) = s->json || s->size >= LZC_ZERO_COPY_FROM ? recv_message : recv_raw;
    for (long i = 0; i < n; i++)
        if (recv_one(s) != LZ_OK) return i;
    return n;
}

static size_t lzc_frame_bytes(void *arg) {
    lzc_state_t *s = arg;
    return s->json ? s->frame : 0;
}

// lzc_request: a round trip; LZ_ENOMEM too when the server (in this
// process) answered that it ran out of memory.
static int lzc_request(void *arg) {
    lzc_state_t *s = arg;
    lz_value_t *reply = NULL;
    int rc = lz_client_request(s->client, "echo", s->request, &reply, LZB_REQUEST_TIMEOUT_MS);
    if (rc == LZ_EREMOTE && strcmp(lz_value_find_string(reply, "code", ""), lz_error_name(LZ_ENOMEM)) == 0)
        rc = lz_set_error(LZ_ENOMEM, "the server: %s", lz_value_find_string(reply, "message", "out of memory"));
    lz_value_destroy(&reply);
    return rc;
}

const lzb_ops_t lzb_liberzmq_ops = {
    .name = "liberzmq",
    .version = lzc_version,
    .open = lzc_open_raw,
    .send = lzc_send,
    .recv = lzc_recv,
    .serve = NULL, // lz_server_start runs the server on its own threads
    .request = lzc_request,
    .close = lzc_close,
};

const lzb_ops_t lzb_liberzmq_json_ops = {
    .name = "liberzmq-json",
    .version = lzc_version,
    .open = lzc_open_json,
    .send = lzc_send,
    .recv = lzc_recv,
    .serve = NULL,
    .request = lzc_request,
    .close = lzc_close,
    .frame_bytes = lzc_frame_bytes,
};

/* Recycled send buffers (src/core/sendbuf.c): every frame size arrives
 * byte for byte on each transport, a buffer is only reused once libzmq has
 * given it back (concurrent senders whose frames each carry their own
 * pattern would show a reuse in flight), the number kept stays bounded, a
 * received frame outlives its sender's socket and context, a frame shared
 * by several subscribers reaches each whole, and a send that fails gives
 * its buffer back. */
#include <pthread.h>
#include <zmq.h>

#include "core/sendbuf.h"
#include "lz_test.h"

// Each frame's bytes follow from its seed, so a frame overwritten by
// another one (a buffer reused too early) does not pass for itself.
static void fill(unsigned char *buf, size_t size, unsigned seed) {
    for (size_t i = 0; i < size; i++) buf[i] = (unsigned char)(seed * 131u + i * 7u + (i >> 9));
}

static bool matches(const unsigned char *buf, size_t size, unsigned seed) {
    for (size_t i = 0; i < size; i++)
        if (buf[i] != (unsigned char)(seed * 131u + i * 7u + (i >> 9))) return false;
    return true;
}

// A raw PUSH/PULL pair on endpoint (bound by the puller).
typedef struct {
    void *ctx, *push, *pull;
} pair_t;

static bool pair_open(pair_t *p, const char *endpoint, int hwm) {
    int linger = 0, timeout = 5000;
    p->ctx = zmq_ctx_new();
    p->pull = zmq_socket(p->ctx, ZMQ_PULL);
    p->push = zmq_socket(p->ctx, ZMQ_PUSH);
    zmq_setsockopt(p->push, ZMQ_LINGER, &linger, sizeof linger);
    zmq_setsockopt(p->pull, ZMQ_LINGER, &linger, sizeof linger);
    zmq_setsockopt(p->push, ZMQ_SNDHWM, &hwm, sizeof hwm);
    zmq_setsockopt(p->pull, ZMQ_RCVHWM, &hwm, sizeof hwm);
    zmq_setsockopt(p->pull, ZMQ_RCVTIMEO, &timeout, sizeof timeout);
    zmq_setsockopt(p->push, ZMQ_SNDTIMEO, &timeout, sizeof timeout);
    char bound[256];
    size_t len = sizeof bound;
    bool ok = zmq_bind(p->pull, endpoint) == 0 &&
              zmq_getsockopt(p->pull, ZMQ_LAST_ENDPOINT, bound, &len) == 0 &&
              zmq_connect(p->push, bound) == 0;
    LZ_CHECK(ok);
    return ok;
}

static void pair_close(pair_t *p) {
    zmq_close(p->pull);
    zmq_close(p->push);
    zmq_ctx_term(p->ctx);
}

// expect_frame receives one frame and checks its size and bytes.
static bool expect_frame(void *socket, size_t size, unsigned seed) {
    zmq_msg_t msg;
    zmq_msg_init(&msg);
    int n = zmq_msg_recv(&msg, socket, 0);
    bool ok = n >= 0 && zmq_msg_size(&msg) == size && matches(zmq_msg_data(&msg), size, seed);
    zmq_msg_close(&msg);
    return ok;
}

static const size_t sizes[] = {0, 1, 4095, 4096, 4097, 8191, 8192, 65535, 65536, 65537,
                               LZ_SENDBUF_MAX - 1, LZ_SENDBUF_MAX, LZ_SENDBUF_MAX + 1};
#define SIZE_COUNT (sizeof sizes / sizeof sizes[0])

// Every size, below, on and past each edge, sent twice (the second time
// from a recycled buffer) arrives whole.
static void every_size_arrives(const char *endpoint) {
    pair_t p;
    if (!pair_open(&p, endpoint, 1000)) return;
    unsigned char *buf = malloc(LZ_SENDBUF_MAX + 1);
    for (int round = 0; round < 2; round++) {
        for (size_t i = 0; i < SIZE_COUNT; i++) {
            unsigned seed = (unsigned)(round * 100 + i);
            fill(buf, sizes[i], seed);
            LZ_CHECK_INT(lz__sendbuf_send(p.push, buf, sizes[i], 0), (long long)sizes[i]);
            memset(buf, 0, sizes[i]); // the frame is a copy: the caller's buffer is free again
        }
        for (size_t i = 0; i < SIZE_COUNT; i++) LZ_CHECK(expect_frame(p.pull, sizes[i], (unsigned)(round * 100 + i)));
    }
    free(buf);
    pair_close(&p);
}

LZ_TEST(test_every_size_arrives_over_inproc) {
    char ep[128];
    every_size_arrives(lz_test_inproc_endpoint(ep, sizeof ep));
}

LZ_TEST(test_every_size_arrives_over_ipc) {
    char ep[128];
    every_size_arrives(lz_test_ipc_endpoint(ep, sizeof ep));
}

LZ_TEST(test_every_size_arrives_over_tcp) { every_size_arrives("tcp://127.0.0.1:*"); }

// Multipart: a pooled frame with SNDMORE and a plain last one stay one message.
LZ_TEST(test_multipart_keeps_its_frames_together) {
    char ep[128];
    pair_t p;
    if (!pair_open(&p, lz_test_inproc_endpoint(ep, sizeof ep), 1000)) return;
    unsigned char big[8192], small[16];
    fill(big, sizeof big, 1);
    fill(small, sizeof small, 2);
    LZ_CHECK_INT(lz__sendbuf_send(p.push, big, sizeof big, ZMQ_SNDMORE), sizeof big);
    LZ_CHECK_INT(lz__sendbuf_send(p.push, small, sizeof small, 0), sizeof small);
    zmq_msg_t msg;
    zmq_msg_init(&msg);
    LZ_CHECK_INT(zmq_msg_recv(&msg, p.pull, 0), sizeof big);
    LZ_CHECK(zmq_msg_more(&msg));
    LZ_CHECK(matches(zmq_msg_data(&msg), sizeof big, 1));
    LZ_CHECK_INT(zmq_msg_recv(&msg, p.pull, 0), sizeof small);
    LZ_CHECK(!zmq_msg_more(&msg));
    LZ_CHECK(matches(zmq_msg_data(&msg), sizeof small, 2));
    zmq_msg_close(&msg);
    pair_close(&p);
}

// Four threads send 64 KiB and 5 KiB frames with their own patterns through
// their own inproc pairs, so buffers go back and are taken again on every
// thread at once; a buffer reused while its frame was still queued would
// arrive with another frame's bytes.
#define SENDERS 4
#define FRAMES_EACH 400

typedef struct {
    int id;
    int bad;
} sender_t;

static void *send_and_check(void *arg) {
    sender_t *s = arg;
    char ep[128];
    snprintf(ep, sizeof ep, "inproc://sendbuf-%d-%d", (int)getpid(), s->id);
    pair_t p;
    if (!pair_open(&p, ep, 50)) {
        s->bad = -1;
        return NULL;
    }
    static const size_t size_of[2] = {65536, 5000};
    unsigned char *buf = malloc(65536);
    unsigned sent = 0, received = 0;
    while (received < FRAMES_EACH) {
        // Keep up to 40 frames queued: the receiver's gives race the sender's takes.
        while (sent < FRAMES_EACH && sent - received < 40) {
            unsigned seed = (unsigned)s->id * 10000u + sent;
            fill(buf, size_of[sent % 2], seed);
            if (lz__sendbuf_send(p.push, buf, size_of[sent % 2], 0) < 0) s->bad++;
            sent++;
        }
        unsigned seed = (unsigned)s->id * 10000u + received;
        if (!expect_frame(p.pull, size_of[received % 2], seed)) s->bad++;
        received++;
    }
    free(buf);
    pair_close(&p);
    return NULL;
}

LZ_TEST(test_concurrent_senders_never_share_a_buffer_in_flight) {
    pthread_t threads[SENDERS];
    sender_t senders[SENDERS];
    for (int i = 0; i < SENDERS; i++) {
        senders[i] = (sender_t){.id = i};
        pthread_create(&threads[i], NULL, send_and_check, &senders[i]);
    }
    for (int i = 0; i < SENDERS; i++) {
        pthread_join(threads[i], NULL);
        LZ_CHECK_INT(senders[i].bad, 0);
    }
}

// More frames of each shelf's size than it keeps, queued at once, come back
// together; the shelf then keeps LZ_SENDBUF_KEEP bytes' worth, frees the rest.
LZ_TEST(test_kept_buffers_stay_bounded) {
    char ep[128];
    pair_t p;
    if (!pair_open(&p, lz_test_inproc_endpoint(ep, sizeof ep), 1000)) return;
    unsigned char *buf = malloc(LZ_SENDBUF_MAX);
    for (size_t size = LZ_SENDBUF_MIN; size <= LZ_SENDBUF_MAX; size *= 2) {
        int frames = (int)(LZ_SENDBUF_KEEP / size) + 8;
        for (int i = 0; i < frames; i++) {
            fill(buf, size, (unsigned)i);
            LZ_CHECK_INT(lz__sendbuf_send(p.push, buf, size, 0), (long long)size);
        }
        for (int i = 0; i < frames; i++) LZ_CHECK(expect_frame(p.pull, size, (unsigned)i));
        size_t most = LZ_SENDBUF_KEEP / size;
        LZ_CHECK_INT(lz__sendbuf_kept(size), most);
        if (size > LZ_SENDBUF_MIN) LZ_CHECK_INT(lz__sendbuf_kept(size / 2 + 1), most); // one shelf per power of two
    }
    LZ_CHECK_INT(lz__sendbuf_kept(LZ_SENDBUF_MIN - 1), 0);
    LZ_CHECK_INT(lz__sendbuf_kept(LZ_SENDBUF_MAX + 1), 0);
    free(buf);
    pair_close(&p);
}

// A frame received over inproc holds the sender's buffer itself: it stays
// readable after the sending socket, the receiving one and both contexts
// are gone, and destroying it then gives the buffer back.
LZ_TEST(test_received_frame_outlives_its_sender) {
    char ep[128];
    lz_context_t *ctx = lz_test_pattern_context(0);
    lz_pull_t *pull = lz_pull_new(ctx, lz_test_inproc_endpoint(ep, sizeof ep));
    lz_push_t *push = lz_push_new(ctx, ep);
    LZ_CHECK(pull && push);
    LZ_CHECK_INT(lz_node_set_serializer(lz_pull_node(pull), "raw"), LZ_OK);
    unsigned char *buf = malloc(65536);
    fill(buf, 65536, 7);
    LZ_CHECK_INT(lz_push_send_bytes(push, buf, 65536), LZ_OK);
    free(buf);
    lz_message_t *msg = lz_pull_recv(pull, 5000);
    LZ_CHECK(msg != NULL);
    lz_push_destroy(&push);
    lz_pull_destroy(&pull);
    lz_context_destroy(&ctx);
    size_t size = 0;
    const void *data = msg ? lz_message_payload(msg, &size) : NULL;
    LZ_CHECK_INT(size, 65536);
    LZ_CHECK(data && matches(data, 65536, 7));
    lz_message_destroy(&msg);
}

// A published frame is one buffer shared by every subscriber's queue
// (libzmq counts references to it): each of three subscribers gets every
// frame whole, and the buffer goes back once, after the last one is done.
#define SUBSCRIBERS 3
#define PUBLISHED 200

LZ_TEST(test_every_subscriber_gets_the_shared_frame_whole) {
    char ep[128];
    lz_context_t *ctx = lz_test_pattern_context(0);
    lz_pub_t *pub = lz_pub_new(ctx, lz_test_inproc_endpoint(ep, sizeof ep));
    lz_sub_t *subs[SUBSCRIBERS] = {0};
    for (int i = 0; i < SUBSCRIBERS; i++) {
        subs[i] = lz_sub_new(ctx, ep);
        LZ_CHECK(subs[i] && lz_sub_subscribe(subs[i], "big") == LZ_OK);
        if (subs[i]) LZ_CHECK_INT(lz_node_set_serializer(lz_sub_node(subs[i]), "raw"), LZ_OK);
    }
    // A subscription reaches the publisher on its next send: warm up until
    // every subscriber has a message, then empty their queues.
    for (int i = 0; i < SUBSCRIBERS; i++) {
        lz_message_t *msg = NULL;
        for (int tries = 0; subs[i] && !msg && tries < 500; tries++) {
            lz_pub_publish_bytes(pub, "big", "w", 1);
            msg = lz_sub_recv(subs[i], 10);
        }
        LZ_CHECK(msg != NULL);
        lz_message_destroy(&msg);
    }
    for (int i = 0; i < SUBSCRIBERS; i++)
        for (lz_message_t *msg; subs[i] && (msg = lz_sub_recv(subs[i], 0));) lz_message_destroy(&msg);
    unsigned char *buf = malloc(65536);
    int wrong = 0;
    for (unsigned n = 0; n < PUBLISHED; n++) {
        fill(buf, 65536, n);
        LZ_CHECK_INT(lz_pub_publish_bytes(pub, "big", buf, 65536), LZ_OK);
        for (int i = 0; i < SUBSCRIBERS; i++) {
            lz_message_t *msg = subs[i] ? lz_sub_recv(subs[i], 5000) : NULL;
            size_t size = 0;
            const void *data = msg ? lz_message_payload(msg, &size) : NULL;
            if (!data || size != 65536 || !matches(data, 65536, n)) wrong++;
            lz_message_destroy(&msg);
        }
    }
    LZ_CHECK_INT(wrong, 0);
    LZ_CHECK(lz__sendbuf_kept(65536) >= 1); // back once all three let go
    free(buf);
    for (int i = 0; i < SUBSCRIBERS; i++) lz_sub_destroy(&subs[i]);
    lz_pub_destroy(&pub);
    lz_context_destroy(&ctx);
}

// A send that cannot go (no peer, ZMQ_DONTWAIT) reports EAGAIN and puts its
// buffer back on the shelf, where the next send finds it.
LZ_TEST(test_failed_send_gives_its_buffer_back) {
    void *ctx = zmq_ctx_new();
    void *push = zmq_socket(ctx, ZMQ_PUSH);
    unsigned char buf[6000] = {0};
    LZ_CHECK_INT(lz__sendbuf_send(push, buf, sizeof buf, ZMQ_DONTWAIT), -1);
    size_t kept = lz__sendbuf_kept(sizeof buf);
    LZ_CHECK(kept >= 1); // the first failure's buffer, at least
    for (int i = 0; i < 3; i++) {
        LZ_CHECK_INT(lz__sendbuf_send(push, buf, sizeof buf, ZMQ_DONTWAIT), -1);
        LZ_CHECK_INT(zmq_errno(), EAGAIN);
        LZ_CHECK_INT(lz__sendbuf_kept(sizeof buf), kept); // taken and given back
    }
    zmq_close(push);
    zmq_ctx_term(ctx);
}

LZ_TEST_MAIN(LZ_CASE(test_every_size_arrives_over_inproc), LZ_CASE(test_every_size_arrives_over_ipc),
             LZ_CASE(test_every_size_arrives_over_tcp), LZ_CASE(test_multipart_keeps_its_frames_together),
             LZ_CASE(test_concurrent_senders_never_share_a_buffer_in_flight),
             LZ_CASE(test_kept_buffers_stay_bounded), LZ_CASE(test_received_frame_outlives_its_sender),
             LZ_CASE(test_every_subscriber_gets_the_shared_frame_whole),
             LZ_CASE(test_failed_send_gives_its_buffer_back))

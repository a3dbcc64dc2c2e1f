/* Recycled send buffers (src/core/sendbuf.c): every frame size arrives
 * byte for byte on each transport, a buffer is only reused once libzmq has
 * given it back (concurrent senders whose frames each carry their own
 * pattern would show a reuse in flight), the number kept stays bounded, a
 * received frame outlives its sender's socket and context, a frame shared
 * by several subscribers reaches each whole, a send that fails gives its
 * buffer back, and a message whose frame cannot be made sends nothing. */
#include <pthread.h>
#include <zmq.h>

#include "core/node.h"
#include "core/sendbuf.h"
#include "lz_test.h"

// Under ThreadSanitizer (LZ_TEST_TSAN) the byte loops below are not
// watched. A received frame was written on another thread and handed over
// through libzmq, which TSan cannot see (tests/tsan.supp), so each byte
// read would be a suppressed report costing microseconds: a 1 MiB frame
// took seconds, the four lanes below minutes. What these checks are for, a
// frame's bytes, they still check.
#ifdef LZ_TEST_TSAN
void AnnotateIgnoreReadsBegin(const char *file, int line);
void AnnotateIgnoreReadsEnd(const char *file, int line);
void AnnotateIgnoreWritesBegin(const char *file, int line);
void AnnotateIgnoreWritesEnd(const char *file, int line);
#define UNWATCHED_BEGIN() (AnnotateIgnoreReadsBegin(__FILE__, __LINE__), AnnotateIgnoreWritesBegin(__FILE__, __LINE__))
#define UNWATCHED_END() (AnnotateIgnoreWritesEnd(__FILE__, __LINE__), AnnotateIgnoreReadsEnd(__FILE__, __LINE__))
#else
#define UNWATCHED_BEGIN() ((void)0)
#define UNWATCHED_END() ((void)0)
#endif

// Each frame's bytes follow from its seed, so a frame overwritten by
// another one (a buffer reused too early) does not pass for itself.
static unsigned char pattern_byte(unsigned seed, size_t i) { return (unsigned char)(seed * 131u + i * 7u + (i >> 9)); }

static void fill(unsigned char *buf, size_t size, unsigned seed) {
    UNWATCHED_BEGIN();
    for (size_t i = 0; i < size; i++) buf[i] = pattern_byte(seed, i);
    UNWATCHED_END();
}

static bool matches(const unsigned char *buf, size_t size, unsigned seed) {
    size_t i = 0;
    UNWATCHED_BEGIN();
    while (i < size && buf[i] == pattern_byte(seed, i)) i++;
    UNWATCHED_END();
    return i == size;
}

// shelf_bytes: the size of the buffers that hold frames of size bytes (a
// power of two, one shelf each).
static size_t shelf_bytes(size_t size) {
    size_t shelf = 1;
    while (shelf < size) shelf *= 2;
    return shelf;
}

// A raw PUSH/PULL pair on endpoint (bound by the puller).
typedef struct {
    void *ctx, *push, *pull;
} pair_t;

static bool pair_open(pair_t *p, const char *endpoint, int hwm) {
    int timeout = 5000;
    p->ctx = zmq_ctx_new();
    p->pull = lz_test_plain_socket(p->ctx, ZMQ_PULL, timeout, NULL);
    p->push = lz_test_plain_socket(p->ctx, ZMQ_PUSH, -1, NULL);
    zmq_setsockopt(p->push, ZMQ_SNDHWM, &hwm, sizeof hwm);
    zmq_setsockopt(p->pull, ZMQ_RCVHWM, &hwm, sizeof hwm);
    zmq_setsockopt(p->push, ZMQ_SNDTIMEO, &timeout, sizeof timeout);
    char bound[256];
    size_t len = sizeof bound;
    bool ok = zmq_bind(p->pull, endpoint) == 0 && zmq_getsockopt(p->pull, ZMQ_LAST_ENDPOINT, bound, &len) == 0 &&
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

// clang-format off
static const size_t sizes[] = {0, 1, 80, 81, 82, 127, 128, 129, 170, 4095, 4096, 4097, 8191, 8192,
                               65535, 65536, 65537, LZ_SENDBUF_MAX - 1, LZ_SENDBUF_MAX, LZ_SENDBUF_MAX + 1};
// clang-format on
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
            memset(buf, 0,
                   sizes[i]); // the frame is a copy: the caller's buffer is free again
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

// Four lanes, each a sending and a receiving thread on their own inproc
// pair, with frames of four sizes carrying their own patterns: buffers are
// taken on the senders and given back on the receivers, all at once, so
// the shelves' pushes race their emptying; a buffer reused while its frame
// was still queued would arrive with another frame's bytes.
#define LANES 4
#define FRAMES_EACH 2000

typedef struct {
    pair_t pair;
    int id;
    int bad_sends, bad_frames;
} lane_t;

static const size_t lane_sizes[4] = {65536, 5000, 170, 100};

static unsigned lane_seed(const lane_t *lane, unsigned n) { return (unsigned)lane->id * 100000u + n; }

static void *lane_send(void *arg) {
    lane_t *lane = arg;
    unsigned char *buf = malloc(65536);
    for (unsigned n = 0; n < FRAMES_EACH; n++) {
        size_t size = lane_sizes[n % 4];
        fill(buf, size, lane_seed(lane, n));
        if (lz__sendbuf_send(lane->pair.push, buf, size, 0) != (int)size) lane->bad_sends++;
    }
    free(buf);
    return NULL;
}

static void *lane_receive(void *arg) {
    lane_t *lane = arg;
    for (unsigned n = 0; n < FRAMES_EACH; n++)
        if (!expect_frame(lane->pair.pull, lane_sizes[n % 4], lane_seed(lane, n))) lane->bad_frames++;
    return NULL;
}

LZ_TEST(test_buffers_given_back_on_other_threads_are_never_shared_in_flight) {
    lane_t lanes[LANES];
    pthread_t senders[LANES], receivers[LANES];
    for (int i = 0; i < LANES; i++) {
        char ep[128];
        lanes[i] = (lane_t){.id = i};
        if (!pair_open(&lanes[i].pair, lz_test_inproc_endpoint(ep, sizeof ep), 50)) return;
    }
    for (int i = 0; i < LANES; i++) {
        pthread_create(&receivers[i], NULL, lane_receive, &lanes[i]);
        pthread_create(&senders[i], NULL, lane_send, &lanes[i]);
    }
    for (int i = 0; i < LANES; i++) {
        pthread_join(senders[i], NULL);
        pthread_join(receivers[i], NULL);
        LZ_CHECK_INT(lanes[i].bad_sends, 0);
        LZ_CHECK_INT(lanes[i].bad_frames, 0);
        pair_close(&lanes[i].pair);
    }
    // The threads are gone, their hands back on the shelves: still within bounds.
    for (int i = 0; i < 4; i++) {
        LZ_CHECK(lz__sendbuf_kept(lane_sizes[i]) <= LZ_SENDBUF_KEEP / shelf_bytes(lane_sizes[i]));
        LZ_CHECK(lz__sendbuf_kept(lane_sizes[i]) > 0);
    }
}

// More frames of each shelf's size than it keeps, queued at once, come back
// together; the shelf then keeps LZ_SENDBUF_KEEP bytes' worth, frees the rest.
LZ_TEST(test_kept_buffers_stay_bounded) {
    char ep[128];
    pair_t p;
    if (!pair_open(&p, lz_test_inproc_endpoint(ep, sizeof ep), 0)) return; // no high water mark: all queued
    unsigned char *buf = malloc(LZ_SENDBUF_MAX);
    size_t first = shelf_bytes(LZ_SENDBUF_MIN);
    for (size_t size = first; size <= LZ_SENDBUF_MAX; size *= 2) {
        int frames = (int)(LZ_SENDBUF_KEEP / size) + 8;
        for (int i = 0; i < frames; i++) {
            fill(buf, size, (unsigned)i);
            LZ_CHECK_INT(lz__sendbuf_send(p.push, buf, size, 0), (long long)size);
        }
        for (int i = 0; i < frames; i++) LZ_CHECK(expect_frame(p.pull, size, (unsigned)i));
        size_t most = LZ_SENDBUF_KEEP / size;
        LZ_CHECK_INT(lz__sendbuf_kept(size), most);
        // One shelf per power of two: the smallest frames it serves count the same.
        LZ_CHECK_INT(lz__sendbuf_kept(size == first ? LZ_SENDBUF_MIN : size / 2 + 1), most);
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
// buffer back on the shelf, where the next send finds it. First in the list:
// its shelf must be short of full, or a buffer given back is let go.
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

/* Fault injection: while the calling thread's frames_to_refuse is above 0,
 * making a frame of copied bytes fails with ENOMEM (as malloc failing
 * would) and counts it down. No input runs a sender out of memory on cue,
 * so these definitions stand in for libzmq's (the program's own symbol
 * comes first) and pass every other call through to the real ones. */
static _Thread_local int frames_to_refuse;
static int (*real_msg_init_data)(zmq_msg_t *msg, void *data, size_t size, zmq_free_fn *ffn, void *hint);
static int (*real_msg_init_size)(zmq_msg_t *msg, size_t size);

static void find_real_msg_inits(void) {
    lz_test_next_function(&real_msg_init_data, "zmq_msg_init_data");
    lz_test_next_function(&real_msg_init_size, "zmq_msg_init_size");
}

static bool refuse_frame(void) {
    static pthread_once_t once = PTHREAD_ONCE_INIT;
    pthread_once(&once, find_real_msg_inits);
    if (frames_to_refuse <= 0) return false;
    frames_to_refuse--;
    errno = ENOMEM;
    return true;
}

int zmq_msg_init_data(zmq_msg_t *msg, void *data, size_t size, zmq_free_fn *ffn, void *hint) {
    return refuse_frame() ? -1 : real_msg_init_data(msg, data, size, ffn, hint);
}

int zmq_msg_init_size(zmq_msg_t *msg, size_t size) { return refuse_frame() ? -1 : real_msg_init_size(msg, size); }

// recv_message_text reads one whole message from a plain socket as
// "[frame][frame]", each frame cut to 16 bytes; "" when none comes.
static void recv_message_text(void *socket, char *out, size_t size) {
    out[0] = '\0';
    for (int more = 1; more;) {
        char frame[17];
        int n = zmq_recv(socket, frame, 16, 0);
        if (n < 0) break;
        frame[n < 16 ? n : 16] = '\0';
        snprintf(out + strlen(out), size - strlen(out), "[%s]", frame);
        size_t more_size = sizeof more;
        zmq_getsockopt(socket, ZMQ_RCVMORE, &more, &more_size);
    }
}

// joined_sub connects a plain SUB to pub (on ep), subscribed to all, and
// waits until the publisher knows it; NULL if it never does.
static void *joined_sub(lz_context_t *ctx, lz_pub_t *pub, const char *ep) {
    void *sub = lz_test_plain_socket(lz_context_zmq(ctx), ZMQ_SUB, 20, ep);
    zmq_setsockopt(sub, ZMQ_SUBSCRIBE, "", 0);
    char got[64] = "";
    for (int64_t deadline = lz_test_now_ms() + 5000; !*got && lz_test_now_ms() < deadline;) {
        lz_pub_publish_bytes(pub, "join", "", 0);
        recv_message_text(sub, got, sizeof got);
    }
    LZ_CHECK_STR(got, "[join][]");
    for (recv_message_text(sub, got, sizeof got); *got;) recv_message_text(sub, got, sizeof got); // the other joins
    int timeout = 5000;
    zmq_setsockopt(sub, ZMQ_RCVTIMEO, &timeout, sizeof timeout);
    return sub;
}

// send_parts sends [topic, payload] as a server sends a reply: the topic
// as a part moved into libzmq, the payload copied, refusing refuse frames.
static int send_parts(lz_pub_t *pub, const char *topic, const void *payload, size_t size, int refuse) {
    zmq_msg_t part;
    zmq_msg_init_size(&part, strlen(topic));
    memcpy(zmq_msg_data(&part), topic, strlen(topic));
    frames_to_refuse = refuse;
    lz_node_t *node = lz_pub_node(pub);
    lz__node_lock(node);
    int rc = lz__node_send_parts_locked(node, &part, 1, payload, size);
    lz__node_unlock(node);
    zmq_msg_close(&part);
    return rc;
}

// A message whose frame after the first cannot be made (out of memory)
// fails and sends nothing. Before, the first frame had gone out with
// ZMQ_SNDMORE and waited for the rest, so the next message arrived as
// [first][second][hello]. Frames made from a recycled buffer (3000 B) and
// by libzmq (50 B), sent as frames (a publish) and after parts (a reply).
LZ_TEST(test_unmade_frame_sends_nothing) {
    lz_context_t *ctx = LZ_TEST_CONTEXT("zmq.linger=0", "logging.level=critical");
    char ep[64];
    lz_pub_t *pub = ctx ? lz_pub_new(ctx, lz_test_inproc_endpoint(ep, sizeof ep)) : NULL;
    void *sub = pub ? joined_sub(ctx, pub, ep) : NULL;
    static unsigned char payload[3000];
    const size_t payload_sizes[] = {sizeof payload, 50};
    for (int parts = 0; sub && parts < 2; parts++) {
        for (size_t i = 0; i < sizeof payload_sizes / sizeof payload_sizes[0]; i++) {
            uint64_t dropped = lz_test_metrics(lz_pub_node(pub)).outbound_dropped;
            int rc = parts ? send_parts(pub, "first", payload, payload_sizes[i], 1)
                           : (frames_to_refuse = 1, lz_pub_publish_bytes(pub, "first", payload, payload_sizes[i]));
            LZ_CHECK_INT(rc, LZ_ENOMEM);
            LZ_CHECK_INT(frames_to_refuse, 0);
            frames_to_refuse = 0;
            LZ_CHECK_INT(lz_test_metrics(lz_pub_node(pub)).outbound_dropped, dropped + 1);
            LZ_CHECK_INT(lz_pub_publish_bytes(pub, "second", "hello", 5), LZ_OK);
            char got[128];
            recv_message_text(sub, got, sizeof got);
            LZ_CHECK_STR(got, "[second][hello]");
        }
    }
    if (sub) zmq_close(sub);
    lz_pub_destroy(&pub);
    lz_context_destroy(&ctx);
}

LZ_TEST_MAIN(LZ_CASE(test_failed_send_gives_its_buffer_back), LZ_CASE(test_every_size_arrives_over_inproc),
             LZ_CASE(test_every_size_arrives_over_ipc), LZ_CASE(test_every_size_arrives_over_tcp),
             LZ_CASE(test_multipart_keeps_its_frames_together),
             LZ_CASE(test_buffers_given_back_on_other_threads_are_never_shared_in_flight),
             LZ_CASE(test_kept_buffers_stay_bounded), LZ_CASE(test_received_frame_outlives_its_sender),
             LZ_CASE(test_every_subscriber_gets_the_shared_frame_whole), LZ_CASE(test_unmade_frame_sends_nothing))

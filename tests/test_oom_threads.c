/* Out-of-memory sweeps of the library's own threads (lz_oom.h's
 * lz_oom_arm_threads): a subscriber's or puller's receiver and workers, a
 * puller's retry timer, a server's I/O thread and workers, a client's or
 * dealer's I/O thread, a router served by a thread of the program's, the
 * lock service's timer and a proxy's thread. The test's own thread sends
 * (it is exempt); the nth allocation any other thread makes fails, which
 * thread that is being the scheduler's choice. Whichever it is: nothing
 * crashes, hangs or leaks; every message sent is handled or counted in
 * its receiver's metrics, every request gets its reply or an error in
 * time, and once the failures stop the node works (a marker goes through).
 * Replies that a thread of the program's sends (a router's lz_router_send,
 * a deferred reply's lz_server_reply_send and _error) are swept on that
 * thread (lz_oom_arm), warm and fresh: failed_replies_from_the_caller_lose_nothing. */
#include "core/sendbuf.h"
#include "lz_test.h"

#include "lz_oom.h" // after lz_test.h, whose headers declare what it defines

#define MESSAGES 6          // sent in each run, then the marker
#define MARK MESSAGES       // the marker's sequence number
#define WAIT_MS 3000        // for what must come
#define TIMEOUT_MS 400      // a request's
#define SLACK_MS 400        // past a request's timeout, for its answer to come
#define SWEEP_BUDGET_MS 800 // per scenario and pass (warm, cold): the runs that fit (sweep)
#define SWEEP_LIMIT 2000    // allocations of one call failed in turn, at most

// libzmq aborts on a failed allocation by design, and libstdc++'s operator
// new is how our C++ serializers allocate: neither fails here.
static const char *const spared[] = {"libzmq.so", "libstdc++.so", "libpgm", NULL};

/* ---- messages ------------------------------------------------------------ */

// Message seq is TEXT_BASE + seq bytes of 'm': long enough that its
// frames need allocations of their own, and read back by the handlers,
// which run armed, without allocating.
#define TEXT_BASE 1200
#define TEXT_SIZE (TEXT_BASE + MARK + 1)
static void message_text(int seq, char *out) {
    memset(out, 'm', TEXT_BASE + (size_t)seq);
    out[TEXT_BASE + seq] = '\0';
}

// value_seq: the sequence number of a message's value, or -1 when it is
// not one whole.
static int value_seq(const lz_value_t *value) {
    size_t size;
    const char *bytes = lz_value_get_bytes(value, &size);
    if (!bytes || size < TEXT_BASE || size >= TEXT_SIZE) return -1;
    for (size_t i = 0; i < size; i++)
        if (bytes[i] != 'm') return -1;
    return (int)(size - TEXT_BASE);
}

/* ---- a run: one scenario's nodes and what they saw ------------------------ */

// What came of one request.
typedef struct answer {
    atomic_int calls;
    int seq;
    int status;
    bool matches;     // the reply (or an error reply's message) was its request's echo
    int64_t deadline; // when its timeout ends
    int64_t came;     // when its answer came
} answer_t;

typedef struct run run_t;
typedef struct scenario {
    const char *name;
    const char *settings[4];   // the context's, beside the common ones
    void (*open)(run_t *r);    // makes and starts the nodes, unarmed
    void (*traffic)(run_t *r); // armed (the test's thread is exempt)
    bool (*settled)(run_t *r); // everything sent is answered or accounted for
    void (*verify)(run_t *r);  // once the failures stopped: the answers, then a marker
} scenario_t;

struct run {
    const scenario_t *sc;
    lz_context_t *ctx;
    char url[128], url2[128];
    lz_pub_t *pub, *letters;
    lz_sub_t *sub, *letters_sub;
    lz_push_t *push;
    lz_pull_t *pull;
    lz_server_t *server;
    lz_lock_service_t *locks;
    lz_client_t *client;
    lz_dealer_t *dealer;
    lz_router_t *router;
    lz_proxy_t *proxy;
    lz_lock_t *holder, *waiter;
    pthread_t router_thread;
    bool router_running;
    atomic_bool stopping;
    lz_node_t *counted; // the receiving node, whose metrics account for what was not handled
    lz_metrics_t before;
    atomic_int handled[MARK + 1];  // a handler's successful runs per message
    atomic_int attempts[MARK + 1]; // a handler's runs per message
    atomic_int failures;           // runs a handler failed on purpose
    atomic_int letters_seen[MARK + 1];
    answer_t answers[MARK + 1];
    int waiter_rc;
    int64_t waiter_late; // how long after its wait (and a request's timeout) the waiter's acquire returned
    bool cold;           // armed before open: its nodes' threads may fail from their start
    bool failed;         // an allocation failed in this run
    char what[96];       // the scenario, and which allocation was to fail: for the failures' messages
};

// discard_record takes the log's records: warnings and errors are
// written, so that their formatting runs where allocations fail, and
// not shown.
static void discard_record(lz_log_level_t level, const char *component, const char *message, void *arg) {
    (void)level, (void)component, (void)message, (void)arg;
}

// context_for: a context of the common settings and own's (up to four, NULL-terminated when fewer).
static lz_context_t *context_for(const char *const *own) {
    const char *settings[9] = {"zmq.linger=0", "logging.level=warning", "zmq.failed_socket_cooldown=50",
                               "zmq.request_retries=1"};
    size_t n = 4;
    for (size_t i = 0; i < 4 && own[i]; i++) settings[n++] = own[i];
    settings[n] = NULL;
    return lz_test_context_from(settings);
}

static void close_run(run_t *r) {
    atomic_store(&r->stopping, true);
    if (r->router_running) pthread_join(r->router_thread, NULL);
    lz_lock_destroy(&r->waiter);
    lz_lock_destroy(&r->holder);
    lz_client_destroy(&r->client);
    lz_dealer_destroy(&r->dealer);
    lz_router_destroy(&r->router);
    lz_sub_destroy(&r->sub);
    lz_sub_destroy(&r->letters_sub);
    lz_pull_destroy(&r->pull);
    lz_push_destroy(&r->push);
    lz_pub_destroy(&r->pub);
    lz_pub_destroy(&r->letters);
    lz_proxy_destroy(&r->proxy);
    lz_server_stop(r->server); // before its lock service goes
    lz_lock_service_destroy(&r->locks);
    lz_server_destroy(&r->server);
    lz_context_destroy(&r->ctx);
}

/* ---- message flows: a subscriber, a puller, through a proxy ---------------- */

// The handlers run on the library's threads, armed: they allocate nothing.

static int note_handled(const lz_message_t *msg, void *arg) {
    run_t *r = arg;
    int seq = value_seq(lz_message_value(msg));
    if (seq < 0) return 0;
    atomic_fetch_add(&r->attempts[seq], 1);
    atomic_fetch_add(&r->handled[seq], 1);
    return 0;
}

// fail_first fails each message's first run: its retry succeeds.
static int fail_first(const lz_message_t *msg, void *arg) {
    run_t *r = arg;
    int seq = value_seq(lz_message_value(msg));
    if (seq < 0) return 0;
    if (atomic_fetch_add(&r->attempts[seq], 1) == 0) {
        atomic_fetch_add(&r->failures, 1);
        return LZ_EREMOTE;
    }
    atomic_fetch_add(&r->handled[seq], 1);
    return 0;
}

// fail_always: every message ends as a dead letter.
static int fail_always(const lz_message_t *msg, void *arg) {
    run_t *r = arg;
    int seq = value_seq(lz_message_value(msg));
    if (seq >= 0) atomic_fetch_add(&r->attempts[seq], 1);
    atomic_fetch_add(&r->failures, 1);
    return LZ_EREMOTE;
}

static void note_letter(const lz_value_t *letter, const lz_message_t *task, void *arg) {
    (void)letter;
    run_t *r = arg;
    int seq = value_seq(lz_message_value(task));
    if (seq >= 0) atomic_fetch_add(&r->letters_seen[seq], 1);
}

// A published dead letter, read back by a subscriber of the letters.
static int note_published_letter(const lz_message_t *msg, void *arg) {
    run_t *r = arg;
    const lz_value_t *original = lz_value_get(lz_message_value(msg), "original_task");
    int seq = value_seq(lz_value_get(original, "data"));
    if (seq >= 0) atomic_fetch_add(&r->letters_seen[seq], 1);
    return 0;
}

// unaccounted: how many messages sent were neither handled nor
// dead-lettered (lost) beyond what the receiving node counted for them
// (extra: drops, failures and dead letters not of the handlers' making
// nor seen). At most 0 when nothing was lost silently.
static int unaccounted(run_t *r, int *lost, long *extra) {
    lz_metrics_t now = lz_test_metrics(r->counted);
    int letters = 0;
    *lost = 0;
    for (int i = 0; i < MESSAGES; i++) {
        letters += atomic_load(&r->letters_seen[i]);
        if (!atomic_load(&r->handled[i]) && !atomic_load(&r->letters_seen[i])) ++*lost;
    }
    *extra = (long)(now.inbound_dropped - r->before.inbound_dropped) + (long)(now.errors - r->before.errors) -
             atomic_load(&r->failures) + (long)(now.dead_letters - r->before.dead_letters) - letters;
    return *lost - (int)(*extra > 0 ? *extra : 0);
}

// flow_settled: every message handled or accounted for; while no
// allocation has failed, every one handled or lettered (a letter counted
// may still be on its way to its subscriber: a slow build shows it).
static bool flow_settled(run_t *r) {
    int lost;
    long extra;
    return unaccounted(r, &lost, &extra) <= 0 && (lost == 0 || lz_oom_threads_hit());
}

// check_accounted: every message was handled once, dead-lettered, or
// counted; with no allocation failed, every one was handled or lettered.
static void check_accounted(run_t *r) {
    int lost;
    long extra;
    int left = unaccounted(r, &lost, &extra);
    if (left > 0 || (!r->failed && lost))
        fprintf(stderr, "%s: %d message(s) lost, %ld counted\n", r->what, lost, extra);
    LZ_CHECK(left <= 0);
    LZ_CHECK(r->failed || lost == 0);
    for (int i = 0; i < MESSAGES; i++) LZ_CHECK(atomic_load(&r->handled[i]) <= 1);
}

static void send_value(run_t *r, int seq, int (*send)(run_t *r, const lz_value_t *value)) {
    char text[TEXT_SIZE];
    message_text(seq, text);
    lz_value_t *value = lz_value_string(text);
    LZ_CHECK(value != NULL);
    LZ_CHECK_INT(send(r, value), LZ_OK);
    lz_value_destroy(&value);
}

static int published(run_t *r, const lz_value_t *value) { return lz_pub_publish(r->pub, "t.x", value); }
static int pushed(run_t *r, const lz_value_t *value) { return lz_push_send(r->push, "job", value, 0); }
static void publish(run_t *r, int seq) { send_value(r, seq, published); }
static void push(run_t *r, int seq) { send_value(r, seq, pushed); }

static void publish_all(run_t *r) {
    for (int i = 0; i < MESSAGES; i++) publish(r, i);
}
static void push_all(run_t *r) {
    for (int i = 0; i < MESSAGES; i++) push(r, i);
}

// marker_through sends the marker until *seen (its handler's count) has
// grown, and says whether it has; again every little while when
// send_again: a subscription takes effect a moment later, and a run armed
// from its start may lose one.
static bool marker_through(run_t *r, atomic_int *seen, void (*send)(run_t *r, int seq), bool send_again) {
    int before = atomic_load(seen);
    int64_t end = lz_test_now_ms() + WAIT_MS, next = 0;
    while (atomic_load(seen) <= before && lz_test_now_ms() < end) {
        if (next == 0 || (send_again && lz_test_now_ms() >= next)) {
            send(r, MARK);
            next = lz_test_now_ms() + 25;
        }
        lz_test_sleep_ms(1);
    }
    return atomic_load(seen) > before;
}

static bool marker_handled(run_t *r, void (*send)(run_t *r, int seq), bool send_again) {
    return marker_through(r, &r->handled[MARK], send, send_again);
}

// check_through: the marker sent once the failures stopped went through.
static void check_through(run_t *r, bool through) {
    if (!through) fprintf(stderr, "%s: the marker sent after it did not go through\n", r->what);
    LZ_CHECK(through);
}

static void verify_published(run_t *r) {
    check_accounted(r);
    check_through(r, marker_handled(r, publish, false));
}

static void verify_pushed(run_t *r) {
    check_accounted(r);
    check_through(r, marker_handled(r, push, false));
}

static void open_sub(run_t *r) {
    lz_test_inproc_endpoint(r->url, sizeof r->url);
    LZ_CHECK((r->pub = lz_pub_new(r->ctx, r->url)) != NULL);
    LZ_CHECK((r->sub = lz_sub_new(r->ctx, r->url)) != NULL);
    LZ_CHECK_INT(lz_sub_on(r->sub, "t.", note_handled, r), LZ_OK);
    LZ_CHECK_INT(lz_sub_start(r->sub), LZ_OK);
    r->counted = lz_sub_node(r->sub);
    LZ_CHECK(marker_handled(r, publish, true)); // the subscription has taken effect
}

static void open_pull(run_t *r, lz_handler_fn handler, int retries) {
    lz_test_inproc_endpoint(r->url, sizeof r->url);
    LZ_CHECK((r->pull = lz_pull_new(r->ctx, r->url)) != NULL);
    LZ_CHECK((r->push = lz_push_new(r->ctx, r->url)) != NULL);
    LZ_CHECK_INT(lz_pull_on(r->pull, "job", handler, r), LZ_OK);
    LZ_CHECK_INT(lz_pull_set_retry(r->pull, retries, 0), LZ_OK);
    r->counted = lz_pull_node(r->pull);
}

static void open_pull_inline(run_t *r) {
    open_pull(r, note_handled, 0);
    LZ_CHECK_INT(lz_pull_start(r->pull, 1), LZ_OK);
    LZ_CHECK(marker_handled(r, push, true));
}

static void open_pull_retries(run_t *r) {
    open_pull(r, fail_first, 2);
    LZ_CHECK_INT(lz_pull_on_dead_letter(r->pull, note_letter, r), LZ_OK);
    LZ_CHECK_INT(lz_pull_start(r->pull, 2), LZ_OK);
    LZ_CHECK(marker_handled(r, push, true));
}

// The dead letters are published, and read back by a subscriber.
static void open_pull_letters(run_t *r) {
    open_pull(r, fail_always, 1);
    lz_test_inproc_endpoint(r->url2, sizeof r->url2);
    LZ_CHECK((r->letters = lz_pub_new(r->ctx, r->url2)) != NULL);
    LZ_CHECK((r->letters_sub = lz_sub_new(r->ctx, r->url2)) != NULL);
    LZ_CHECK_INT(lz_sub_on(r->letters_sub, "letters", note_published_letter, r), LZ_OK);
    LZ_CHECK_INT(lz_sub_start(r->letters_sub), LZ_OK);
    LZ_CHECK_INT(lz_pull_set_dead_letter(r->pull, r->letters, "letters"), LZ_OK);
    LZ_CHECK_INT(lz_pull_start(r->pull, 1), LZ_OK);
    // The letters' subscription takes effect a moment later: a letter
    // published before is lost.
    LZ_CHECK(marker_through(r, &r->letters_seen[MARK], push, true));
}

// Here each task ends as a dead letter, the marker's too.
static void verify_letters(run_t *r) {
    check_accounted(r);
    check_through(r, marker_through(r, &r->letters_seen[MARK], push, false));
}

// A forwarding proxy between the publisher and the subscriber.
static void open_proxy(run_t *r) {
    char front[100], back[100];
    lz_test_inproc_endpoint(front, sizeof front);
    lz_test_inproc_endpoint(back, sizeof back);
    LZ_CHECK((r->proxy = lz_proxy_new(r->ctx, LZ_PROXY_FORWARDER, front, back, NULL)) != NULL);
    LZ_CHECK_INT(lz_proxy_start(r->proxy), LZ_OK);
    snprintf(r->url, sizeof r->url, ">%s", front);
    LZ_CHECK((r->pub = lz_pub_new(r->ctx, r->url)) != NULL);
    LZ_CHECK((r->sub = lz_sub_new(r->ctx, back)) != NULL);
    LZ_CHECK_INT(lz_sub_on(r->sub, "t.", note_handled, r), LZ_OK);
    LZ_CHECK_INT(lz_sub_start(r->sub), LZ_OK);
    r->counted = lz_sub_node(r->sub);
    LZ_CHECK(marker_handled(r, publish, true));
}

/* ---- requests: a server and its clients, a dealer and a router ------------- */

static int echo(const lz_message_t *request, lz_value_t **reply, void *arg) {
    (void)arg;
    *reply = lz_value_copy(lz_message_value(request));
    return *reply ? LZ_OK : LZ_ENOMEM;
}

// on_answer notes an asynchronous request's outcome: whether the reply,
// or an error reply's message, is message a->seq. It runs on the client's
// I/O thread, armed: it allocates nothing.
static void on_answer(int status, const lz_value_t *reply, void *arg) {
    answer_t *a = arg;
    a->came = lz_test_now_ms();
    a->status = status;
    a->matches = value_seq(status == LZ_OK ? reply : lz_value_get(reply, "message")) == a->seq;
    atomic_fetch_add(&a->calls, 1);
}

static answer_t *answer_for(run_t *r, int seq) {
    answer_t *a = &r->answers[seq];
    a->seq = seq;
    a->deadline = lz_test_now_ms() + TIMEOUT_MS;
    return a;
}

// The server answers each third request with its echo, a refusal from
// its handler or a refusal of an action it does not know: its error
// replies are made on its threads too.
static const char *const actions[] = {"echo", "refuse", "unknown"};
#define REFUSED(seq) ((seq) % 3 != 0)

static int refuse(const lz_message_t *request, lz_value_t **reply, void *arg) {
    (void)request, (void)arg;
    return LZ_EVALIDATION;
}

static int asked(run_t *r, const lz_value_t *value) {
    int seq = value_seq(value);
    answer_t *a = answer_for(r, seq);
    return lz_client_request_async(r->client, actions[seq % 3], value, TIMEOUT_MS, on_answer, a);
}
static int dealt(run_t *r, const lz_value_t *value) {
    answer_t *a = answer_for(r, value_seq(value));
    return lz_dealer_send(r->dealer, value, TIMEOUT_MS, on_answer, a, NULL);
}

static void ask_all(run_t *r) {
    for (int i = 0; i < MESSAGES; i++) send_value(r, i, asked);
}
static void deal_all(run_t *r) {
    for (int i = 0; i < MESSAGES; i++) send_value(r, i, dealt);
}

static bool answers_settled(run_t *r) {
    for (int i = 0; i < MESSAGES; i++)
        if (!atomic_load(&r->answers[i].calls)) return false;
    return true;
}

// check_answers: each request had one answer, in time: the one expected
// (its echo, or the server's refusal), or, when an allocation failed, an
// error reply, a timeout or want of memory.
static void check_answers(run_t *r) {
    for (int i = 0; i < MESSAGES; i++) {
        const answer_t *a = &r->answers[i];
        int calls = atomic_load(&a->calls), status = a->status;
        int expected = r->client && REFUSED(i) ? LZ_EREMOTE : LZ_OK;
        bool ok = calls == 1 && a->came <= a->deadline + SLACK_MS &&
                  (status == LZ_OK
                       ? a->matches && expected == LZ_OK
                       : status == expected ||
                             (r->failed && (status == LZ_EREMOTE || status == LZ_ETIMEOUT || status == LZ_ENOMEM)));
        if (!ok)
            fprintf(stderr, "%s: request %d: %d answer(s), %s%s, %lld ms after its timeout\n", r->what, i, calls,
                    lz_error_name(status), status == LZ_OK && !a->matches ? " (wrong reply)" : "",
                    (long long)(a->came - a->deadline));
        LZ_CHECK(ok);
    }
}

// The marker's request is answered.
static void verify_requests(run_t *r) {
    check_answers(r);
    char text[TEXT_SIZE];
    message_text(MARK, text);
    lz_value_t *value = lz_value_string(text), *reply = NULL;
    int rc = r->client ? lz_client_request(r->client, "echo", value, &reply, WAIT_MS)
                       : lz_dealer_request(r->dealer, value, &reply, WAIT_MS);
    if (rc != LZ_OK) fprintf(stderr, "%s: the marker's request: %s\n", r->what, lz_last_error());
    LZ_CHECK_INT(rc, LZ_OK);
    LZ_CHECK(rc != LZ_OK || value_seq(reply) == MARK);
    lz_value_destroy(&value);
    lz_value_destroy(&reply);
}

// open_server starts a server at r->url and a client of it, behind an
// endpoint where nobody answers when nobody_first.
static void open_server(run_t *r, bool nobody_first) {
    char endpoints[2 * sizeof r->url + 2];
    lz_test_ipc_endpoint(endpoints, sizeof r->url);
    lz_test_ipc_endpoint(r->url, sizeof r->url);
    if (nobody_first) strcat(strcat(endpoints, ","), r->url);
    LZ_CHECK((r->server = lz_server_new(r->ctx, r->url)) != NULL);
    LZ_CHECK_INT(lz_server_on(r->server, "echo", echo, NULL), LZ_OK);
    LZ_CHECK_INT(lz_server_on(r->server, "refuse", refuse, NULL), LZ_OK);
    LZ_CHECK_INT(lz_server_start(r->server), LZ_OK);
    r->counted = lz_server_node(r->server);
    LZ_CHECK((r->client = lz_client_new(r->ctx, nobody_first ? endpoints : r->url)) != NULL);
    if (nobody_first) LZ_CHECK_INT(lz_client_set_strategy(r->client, LZ_STRATEGY_FAILOVER), LZ_OK);
    if (nobody_first) return; // its requests wait out a first attempt: not warmed, for time
    ask_all(r);               // warmed: the first requests connect
    LZ_TEST_WAIT_UNTIL(answers_settled(r), WAIT_MS);
    r->failed = r->cold; // armed already: an allocation may have failed
    check_answers(r);
    memset(r->answers, 0, sizeof r->answers);
}

static void open_client(run_t *r) { open_server(r, false); }

// A client of two endpoints, the first with no server: each request's
// first attempt goes unanswered, its retry goes to the second.
static void open_failover(run_t *r) { open_server(r, true); }

// echo_one answers the router's next request, if one comes within 20 ms,
// with its own value.
static void echo_one(lz_router_t *router) {
    lz_router_request_t *request = lz_router_recv(router, 20);
    if (request) lz_router_reply(router, request, lz_router_request_value(request));
    lz_router_request_destroy(&request);
}

// The router answers the dealer from a thread of the program's: exempt,
// as its receives and replies are swept on the calling thread
// (test_oom_patterns).
static void *echo_router(void *arg) {
    run_t *r = arg;
    lz_oom_exempt_thread(true);
    while (!atomic_load(&r->stopping)) echo_one(r->router);
    return NULL;
}

static void open_dealer(run_t *r) {
    lz_test_ipc_endpoint(r->url, sizeof r->url);
    LZ_CHECK((r->router = lz_router_new(r->ctx, r->url)) != NULL);
    LZ_CHECK_INT(pthread_create(&r->router_thread, NULL, echo_router, r), 0);
    r->router_running = true;
    r->counted = lz_router_node(r->router);
    LZ_CHECK((r->dealer = lz_dealer_new(r->ctx, r->url, NULL)) != NULL);
    deal_all(r);
    LZ_TEST_WAIT_UNTIL(answers_settled(r), WAIT_MS);
    r->failed = r->cold; // armed already: an allocation may have failed
    check_answers(r);
    memset(r->answers, 0, sizeof r->answers);
}

/* ---- locks: a waiter handed the lock by the service's timer --------------- */

#define LEASE_MS 60
#define LOCK_WAIT_MS 1000

static void open_locks(run_t *r) {
    lz_test_ipc_endpoint(r->url, sizeof r->url);
    LZ_CHECK((r->server = lz_server_new(r->ctx, r->url)) != NULL);
    LZ_CHECK((r->locks = lz_lock_service_attach(r->server, 0)) != NULL);
    LZ_CHECK_INT(lz_server_start(r->server), LZ_OK);
    r->counted = lz_server_node(r->server);
    LZ_CHECK((r->holder = lz_lock_new(r->ctx, r->url, "file", LEASE_MS)) != NULL);
    LZ_CHECK((r->waiter = lz_lock_new(r->ctx, r->url, "file", LEASE_MS)) != NULL);
    int rc = lz_lock_try_acquire(r->holder); // and lets its lease run out
    LZ_CHECK(rc == LZ_OK || r->cold);
}

// The waiter parks until the holder's lease ends, when the timer hands it the lock.
static void wait_for_lock(run_t *r) {
    int64_t end = lz_test_now_ms() + LOCK_WAIT_MS + TIMEOUT_MS;
    r->waiter_rc = lz_lock_acquire(r->waiter, LOCK_WAIT_MS);
    r->waiter_late = lz_test_now_ms() - end;
}

static bool always_settled(run_t *r) {
    (void)r;
    return true;
}

// The waiter got the lock, or an error in time; then the lock is free
// again for a newcomer.
static void verify_locks(run_t *r) {
    int rc = r->waiter_rc;
    bool ok = r->waiter_late <= SLACK_MS &&
              (rc == LZ_OK || (r->failed && (rc == LZ_ETIMEOUT || rc == LZ_EREMOTE || rc == LZ_ENOMEM)));
    if (!ok)
        fprintf(stderr, "%s: the waiter's acquire: %s, %lld ms late\n", r->what, lz_error_name(rc),
                (long long)r->waiter_late);
    LZ_CHECK(ok);
    // A lease handed over in the queue is counted from when its grant
    // arrived (lock.h): one that took long to come (valgrind, a loaded
    // machine) may be over at the service, whose release is LZ_ESTATE.
    if (lz_lock_held(r->waiter)) {
        int released = lz_lock_release(r->waiter);
        LZ_CHECK(released == LZ_OK || released == LZ_ESTATE);
    }
    lz_lock_t *newcomer = lz_lock_new(r->ctx, r->url, "file", LEASE_MS);
    LZ_CHECK(newcomer != NULL);
    LZ_CHECK_INT(lz_lock_acquire(newcomer, WAIT_MS), LZ_OK);
    lz_lock_destroy(&newcomer);
}

// A client of the lock service's own, not a lock object: it holds a lock
// only when a grant says so, and gives it back after a request it cannot
// tell the outcome of. An error reply tells it that it holds nothing.
static int raw_lock_call(run_t *r, const char *action, const char *name, int wait_ms, bool *granted) {
    lz_value_t *data = lz_value_object(), *reply = NULL;
    LZ_CHECK(data && lz_value_object_set_string(data, "lock_name", name) == LZ_OK &&
             lz_value_object_set_string(data, "lock_id", "raw") == LZ_OK &&
             lz_value_object_set_int(data, "timeout", 30) == LZ_OK &&
             lz_value_object_set_int(data, "wait_ms", wait_ms) == LZ_OK);
    int rc = lz_client_request(r->client, action, data, &reply, wait_ms + TIMEOUT_MS);
    *granted = rc == LZ_OK && lz_value_get_bool(lz_value_get(reply, "acquired"));
    lz_value_destroy(&data);
    lz_value_destroy(&reply);
    return rc;
}

static void open_raw_locks(run_t *r) {
    open_locks(r);
    lz_lock_destroy(&r->waiter);
    LZ_CHECK((r->client = lz_client_new(r->ctx, r->url)) != NULL);
    LZ_CHECK_INT(lz_client_set_retries(r->client, 0), LZ_OK);
}

// The plain client waits for the lock the holder lets go (handed over by
// the service's timer), then asks for a free one (granted by the handler).
static const char *const raw_locks[] = {"file", "free"};

static void raw_acquire(run_t *r) {
    for (int i = 0; i < 2; i++) {
        int wait = i == 0 ? LOCK_WAIT_MS : 0;
        int64_t end = lz_test_now_ms() + wait + TIMEOUT_MS;
        answer_t *a = &r->answers[i];
        bool granted;
        a->status = raw_lock_call(r, "acquire_lock", raw_locks[i], wait, &granted);
        a->matches = granted;
        a->came = lz_test_now_ms();
        a->deadline = end;
    }
}

// Each acquire was granted, or refused or failed in time, and the client
// holds a lock only when granted: after an error reply the service has
// nobody holding it (a grant whose reply could not be made is taken back).
static void verify_raw_locks(run_t *r) {
    for (int i = 0; i < 2; i++) {
        const answer_t *a = &r->answers[i];
        int rc = a->status;
        bool ok =
            a->came <= a->deadline + SLACK_MS &&
            (a->matches || (r->failed && (rc == LZ_OK || rc == LZ_ETIMEOUT || rc == LZ_EREMOTE || rc == LZ_ENOMEM)));
        if (!ok)
            fprintf(stderr, "%s: acquire of '%s': %s%s, %lld ms after its time\n", r->what, raw_locks[i],
                    lz_error_name(rc), a->matches ? " (granted)" : "", (long long)(a->came - a->deadline));
        LZ_CHECK(ok);
        bool released;
        if (a->matches || rc == LZ_ETIMEOUT || rc == LZ_ENOMEM) // it may hold the lock: it gives it back
            LZ_CHECK_INT(raw_lock_call(r, "release_lock", raw_locks[i], 0, &released), LZ_OK);
    }
    LZ_TEST_WAIT_UNTIL(lz_lock_service_count(r->locks) == 0, LEASE_MS + SLACK_MS);
    if (lz_lock_service_count(r->locks))
        fprintf(stderr, "%s: a lock is still held after %s and %s\n", r->what, lz_error_name(r->answers[0].status),
                lz_error_name(r->answers[1].status));
    LZ_CHECK_INT(lz_lock_service_count(r->locks), 0);
}

/* ---- the scenarios --------------------------------------------------------- */

// One scenario a line:
// clang-format off
static const scenario_t scenarios[] = {
    {"subscriber", {"zmq.handler_max_concurrency=1"}, open_sub, publish_all, flow_settled, verify_published},
    {"subscriber pooled", {"zmq.handler_max_concurrency=3"}, open_sub, publish_all, flow_settled, verify_published},
    {"subscriber traced", {"zmq.handler_max_concurrency=2", "tracing.enabled=true"},
     open_sub, publish_all, flow_settled, verify_published},
    {"puller", {"zmq.handler_max_concurrency=1"}, open_pull_inline, push_all, flow_settled, verify_pushed},
    {"puller retries", {"zmq.handler_max_concurrency=2"}, open_pull_retries, push_all, flow_settled, verify_pushed},
    {"puller dead letters", {"zmq.handler_max_concurrency=1"},
     open_pull_letters, push_all, flow_settled, verify_letters},
    {"proxy", {"zmq.handler_max_concurrency=1"}, open_proxy, publish_all, flow_settled, verify_published},
    {"server", {"zmq.handler_max_concurrency=1"}, open_client, ask_all, answers_settled, verify_requests},
    {"server pooled", {"zmq.handler_max_concurrency=3", "tracing.enabled=true"},
     open_client, ask_all, answers_settled, verify_requests},
    {"client failover", {"zmq.handler_max_concurrency=2", "zmq.request_retries=2"},
     open_failover, ask_all, answers_settled, verify_requests},
    {"dealer and router", {"zmq.handler_max_concurrency=1"}, open_dealer, deal_all, answers_settled, verify_requests},
    {"lock handover", {"zmq.handler_max_concurrency=2", "zmq.request_retries=0"},
     open_locks, wait_for_lock, always_settled, verify_locks},
    {"lock handover to a plain client", {"zmq.handler_max_concurrency=2"},
     open_raw_locks, raw_acquire, always_settled, verify_raw_locks},
};
// clang-format on
#define SCENARIO_COUNT (sizeof scenarios / sizeof scenarios[0])

/* ---- sweeping ---------------------------------------------------------------- */

// A run on a thread of its own (exempt, as the arming thread is), whose
// caches go with it: what the library's threads allocate and the test
// frees (replies, letters) would otherwise fill this thread's.
typedef struct drive {
    const scenario_t *sc;
    bool cold;     // armed before the nodes start: their threads' first allocations too
    run_t r;
    int64_t armed; // when
} drive_t;

// say_run, for LZ_OOM_VERBOSE, says what a run saw.
static void say_run(run_t *r, int64_t armed) {
    lz_metrics_t m = lz_test_metrics(r->counted);
    printf("%s: %lld ms; dropped %llu, errors %llu, dead letters %llu, failures %d\n", r->what,
           (long long)(lz_test_now_ms() - armed), (unsigned long long)(m.inbound_dropped - r->before.inbound_dropped),
           (unsigned long long)(m.errors - r->before.errors),
           (unsigned long long)(m.dead_letters - r->before.dead_letters), atomic_load(&r->failures));
    for (int i = 0; i <= MARK; i++)
        printf("  %d: handled %d, runs %d, letters %d, answers %d (%s)\n", i, atomic_load(&r->handled[i]),
               atomic_load(&r->attempts[i]), atomic_load(&r->letters_seen[i]), atomic_load(&r->answers[i].calls),
               lz_error_name(r->answers[i].status));
}

static void open_nodes(run_t *r) {
    r->sc->open(r);
    r->before = lz_test_metrics(r->counted);
    atomic_store(&r->failures, 0); // counted with r->before
}

static void setup_drive(void *arg) {
    drive_t *d = arg;
    run_t *r = &d->r;
    memset(r, 0, sizeof *r);
    r->sc = d->sc;
    r->cold = d->cold;
    r->ctx = context_for(d->sc->settings);
    snprintf(r->what, sizeof r->what, "%s%s, opening", d->sc->name, d->cold ? " (cold)" : "");
    LZ_CHECK_INT(lz_logger_to_callback(lz_context_logger(r->ctx), discard_record, NULL), LZ_OK);
    if (!d->cold) open_nodes(r);
}

static int run_drive(void *arg) {
    drive_t *d = arg;
    d->armed = lz_test_now_ms();
    if (d->cold) open_nodes(&d->r);
    d->sc->traffic(&d->r);
    LZ_TEST_WAIT_UNTIL(d->sc->settled(&d->r), WAIT_MS);
    return LZ_OK;
}

static void judge_drive(void *arg, const lz_oom_run_t *run) {
    drive_t *d = arg;
    run_t *r = &d->r;
    r->failed = run->failed;
    snprintf(r->what, sizeof r->what, "%s%s, allocation %ld of other threads %s", d->sc->name, d->cold ? " (cold)" : "",
             run->n, r->failed ? "failed" : "not failing");
    if (getenv("LZ_OOM_VERBOSE")) say_run(r, d->armed);
    d->sc->verify(r);
    close_run(r);
}

// sweep runs sc failing none, to count its threads' allocations (not
// checked for leaks: the program's caches fill, its keys are made), then
// with each of them failing in turn, and again while the time allowed
// lasts (which thread makes the nth allocation varies from run to run),
// up to REPEATS times (lz_oom_sweep_t's sampling; LZ_OOM_FULL=1 runs each
// once, whatever the time). Each run, armed before its nodes start when
// cold, must leak nothing, once libzmq's reaper has freed what a closed
// socket held. LZ_OOM_N=n runs the nth alone; LZ_OOM_VERBOSE=1 says what
// each run saw.
#define REPEATS 3
static void sweep(const scenario_t *sc, bool cold) {
    drive_t d = {.sc = sc, .cold = cold};
    char name[64];
    snprintf(name, sizeof name, "%s%s", sc->name, cold ? " cold" : "");
    lz_oom_sweep(&(lz_oom_sweep_t){.name = name, .setup = setup_drive, .run = run_drive, .judge = judge_drive,
                                   .arg = &d, .fresh = true, .spared = spared, .threads = true, .warm_runs = 1,
                                   .budget_ms = SWEEP_BUDGET_MS, .repeats = REPEATS, .live = lz_oom_live_unkept,
                                   .settle_ms = WAIT_MS, .leak_per_run = true});
}

LZ_TEST(failing_threads_lose_nothing) {
    const char *only = getenv("LZ_OOM_SCENARIO");
    for (size_t i = 0; i < SCENARIO_COUNT; i++) {
        if (only && strcmp(only, scenarios[i].name) != 0) continue;
        sweep(&scenarios[i], false);
        sweep(&scenarios[i], true);
    }
}

/* ---- replies sent from the caller's thread ---------------------------------- */

// A router's send to a dealer named by its identity (lz_router_send: the
// encode and send of lz_router_reply, whose sweep is test_oom_patterns'),
// and a deferred reply answered from a thread of the program's
// (lz_server_reply_send, lz_server_reply_error): the request comes
// unarmed, then that thread's allocations fail in turn (lz_oom_arm), on
// this thread (its caches warm) and on a fresh one (every cache to make).
// A reply that failed says LZ_ENOMEM and sent nothing wrong: the router's
// may be sent again, and the dealer gets it once; a deferred one is
// finished all the same, its client getting an error reply or a timeout,
// and the server counting why. One that succeeded reached its client whole
// (an error reply with its message).
//
// The requests are small and the replies long (message_text), so that the
// reply's encoding grows a buffer of its own: each deferred request comes
// while another one (held) has taken the server's spare job, with its
// grown buffer. A fresh thread's send finds no recycled buffer of its size
// either: this thread takes the shelf's (sendbuf.h) before the run.

typedef struct caller caller_t;
typedef struct reply_kind {
    const char *name;
    const char *settings[4]; // NULL-terminated when fewer
    void (*open)(caller_t *c);
    void (*ask)(caller_t *c);   // a request waiting for the answer, unarmed
    int (*answer)(caller_t *c); // armed
    void (*done)(caller_t *c);  // after the run's checks, unarmed
    int expected;               // the client's status for the answer (its reply or message: the echo)
    bool again;                 // an answer that failed may be made again
} reply_kind_t;

typedef _Atomic(lz_server_reply_t *) parked_t; // a request deferred, for the test to answer

#define HELD_MAX 64

struct caller {
    const reply_kind_t *kind;
    run_t nodes; // the context, a router and a dealer or a server and a client; counted: the router or server
    lz_router_request_t *request;
    parked_t parked, held; // held: keeps the spare job busy (see above)
    lz_value_t *value;     // the answer's, made unarmed
    answer_t answer, held_answer;
    bool fresh;               // each answer on a thread of its own
    lz_metrics_t before;      // the counted node's before the answer
    zmq_msg_t kept[HELD_MAX]; // the recycled buffers this thread holds while a fresh one answers
    size_t kept_count;
};

static void caller_close(caller_t *c) {
    lz_router_request_destroy(&c->request);
    lz_value_destroy(&c->value);
    close_run(&c->nodes);
}

// prepare_answer makes the next answer's value and returns its request's.
static lz_value_t *prepare_answer(caller_t *c) {
    char text[TEXT_SIZE];
    int seq = (c->answer.seq + 1) % MESSAGES;
    message_text(seq, text);
    lz_value_destroy(&c->value);
    LZ_CHECK((c->value = lz_value_string(text)) != NULL);
    c->answer = (answer_t){.seq = seq, .deadline = lz_test_now_ms() + TIMEOUT_MS};
    return lz_value_int(seq);
}

static void open_routed(caller_t *c) {
    lz_test_ipc_endpoint(c->nodes.url, sizeof c->nodes.url);
    LZ_CHECK((c->nodes.router = lz_router_new(c->nodes.ctx, c->nodes.url)) != NULL);
    LZ_CHECK((c->nodes.dealer = lz_dealer_new(c->nodes.ctx, c->nodes.url, "caller")) != NULL);
    c->nodes.counted = lz_router_node(c->nodes.router);
}

static void ask_router(caller_t *c) {
    lz_value_t *request = prepare_answer(c);
    LZ_CHECK_INT(lz_dealer_send(c->nodes.dealer, request, TIMEOUT_MS, on_answer, &c->answer, NULL), LZ_OK);
    lz_value_destroy(&request);
    lz_router_request_destroy(&c->request);
    LZ_CHECK((c->request = lz_router_recv(c->nodes.router, WAIT_MS)) != NULL);
}

static int router_send(caller_t *c) {
    size_t size;
    const void *identity = lz_router_request_identity(c->request, &size);
    return lz_router_send(c->nodes.router, identity, size, lz_router_request_id(c->request), c->value);
}

static void router_done(caller_t *c) { lz_router_request_destroy(&c->request); }

// park defers its request into the slot it was registered with.
static int park(const lz_message_t *request, lz_value_t **reply, void *slot) {
    (void)reply;
    lz_server_reply_t *handle = lz_server_defer(request);
    if (!handle) return lz_last_error_code();
    atomic_store((parked_t *)slot, handle);
    return LZ_SERVER_DEFERRED;
}

static void open_parking(caller_t *c) {
    lz_test_ipc_endpoint(c->nodes.url, sizeof c->nodes.url);
    LZ_CHECK((c->nodes.server = lz_server_new(c->nodes.ctx, c->nodes.url)) != NULL);
    LZ_CHECK_INT(lz_server_on(c->nodes.server, "park", park, &c->parked), LZ_OK);
    LZ_CHECK_INT(lz_server_on(c->nodes.server, "hold", park, &c->held), LZ_OK);
    LZ_CHECK_INT(lz_server_start(c->nodes.server), LZ_OK);
    c->nodes.counted = lz_server_node(c->nodes.server);
    LZ_CHECK((c->nodes.client = lz_client_new(c->nodes.ctx, c->nodes.url)) != NULL);
}

// ask_parked asks action of c's client and waits until the server parked it in slot.
static void ask_parked(caller_t *c, const char *action, const lz_value_t *request, int timeout_ms, answer_t *answer,
                       parked_t *slot) {
    LZ_CHECK_INT(lz_client_request_async(c->nodes.client, action, request, timeout_ms, on_answer, answer), LZ_OK);
    LZ_TEST_WAIT_UNTIL(atomic_load(slot), WAIT_MS);
    LZ_CHECK(atomic_load(slot) != NULL);
}

static void ask_server(caller_t *c) {
    lz_value_t *request = prepare_answer(c);
    c->held_answer = (answer_t){.seq = -1};
    ask_parked(c, "hold", NULL, WAIT_MS, &c->held_answer, &c->held);
    ask_parked(c, "park", request, TIMEOUT_MS, &c->answer, &c->parked);
    lz_value_destroy(&request);
}

static int deferred_send(caller_t *c) {
    lz_server_reply_t *handle = atomic_exchange(&c->parked, NULL);
    return lz_server_reply_send(&handle, c->value);
}

static int deferred_error(caller_t *c) {
    lz_server_reply_t *handle = atomic_exchange(&c->parked, NULL);
    return lz_server_reply_error(&handle, LZ_EVALIDATION, lz_value_get_string(c->value, NULL));
}

// The held request is answered null, which its client gets.
static void release_held(caller_t *c) {
    lz_server_reply_t *handle = atomic_exchange(&c->held, NULL);
    LZ_CHECK_INT(lz_server_reply_send(&handle, NULL), LZ_OK);
    LZ_TEST_WAIT_UNTIL(atomic_load(&c->held_answer.calls), WAIT_MS);
    LZ_CHECK_INT(c->held_answer.status, LZ_OK);
}

// clang-format off
static const reply_kind_t reply_kinds[] = {
    {"router send", {NULL}, open_routed, ask_router, router_send, router_done, LZ_OK, true},
    {"deferred reply", {"zmq.handler_max_concurrency=1", "zmq.request_retries=0", NULL},
     open_parking, ask_server, deferred_send, release_held, LZ_OK, false},
    {"deferred reply traced", {"zmq.handler_max_concurrency=1", "zmq.request_retries=0", "tracing.enabled=true"},
     open_parking, ask_server, deferred_send, release_held, LZ_OK, false},
    {"deferred error", {"zmq.handler_max_concurrency=1", "zmq.request_retries=0", NULL},
     open_parking, ask_server, deferred_error, release_held, LZ_EREMOTE, false},
};
// clang-format on

// ask_answer has the request come, unarmed; an answer on a fresh thread
// is made while this one holds every recycled buffer of the reply's size
// (as many as sendbuf.h says it keeps, shelved or in this thread's hand).
static void ask_answer(void *arg) {
    caller_t *c = arg;
    c->kind->ask(c);
    c->before = lz_test_metrics(c->nodes.counted);
    char text[TEXT_SIZE] = ""; // a frame of the reply's size
    while (c->fresh && c->kept_count < HELD_MAX && lz__sendbuf_kept(sizeof text) > 0 &&
           lz__sendbuf_build(&c->kept[c->kept_count], text, sizeof text) == 0)
        c->kept_count++;
}

static int answer(void *arg) { return ((caller_t *)arg)->kind->answer(arg); }

// check_reply: the answer's outcome, what its node counted since before
// (sent, and errors and drops) and what the client got agree.
static void check_reply(void *arg, const lz_oom_run_t *run) {
    caller_t *c = arg;
    const reply_kind_t *kind = c->kind;
    while (c->kept_count) zmq_msg_close(&c->kept[--c->kept_count]);
    LZ_CHECK(lz_oom_answered(run));
    if (run->rc != LZ_OK && kind->again) LZ_CHECK_INT(kind->answer(c), LZ_OK);
    LZ_TEST_WAIT_UNTIL(atomic_load(&c->answer.calls), WAIT_MS);
    const answer_t *got = &c->answer;
    lz_metrics_t now = lz_test_metrics(c->nodes.counted);
    uint64_t sent = now.messages_sent - c->before.messages_sent;
    uint64_t troubles = now.errors + now.outbound_dropped - c->before.errors - c->before.outbound_dropped;
    bool whole = run->rc == LZ_OK || kind->again; // else an error reply or nothing, and why counted
    bool ok = atomic_load(&got->calls) == 1 && got->came <= got->deadline + SLACK_MS &&
              (whole ? sent == 1 && got->status == kind->expected && got->matches
                     : sent <= 1 && troubles > 0 && got->status != LZ_OK);
    if (!ok)
        fprintf(stderr, "%s: %llu sent, %llu counted; the client got %s%s, %d answer(s), %lld ms after its timeout\n",
                kind->name, (unsigned long long)sent, (unsigned long long)troubles, lz_error_name(got->status),
                !got->matches ? " (not the answer's)" : "", atomic_load(&got->calls),
                (long long)(got->came - got->deadline));
    LZ_CHECK(ok);
    kind->done(c);
}

// sweep_kind sweeps kind's answer after warming it up until it allocates
// nothing more to keep (the connections' queues, the free lists grow for
// a while: three runs in a row keeping nothing more), then checks that it
// leaks nothing. The first error reply, say, fills caches of its own, and
// libzmq's queues keep a spare chunk by turns, so a sweep may end a little
// above where it began; a leak on a failure's path leaks again each time:
// a sweep that ends higher is run again, up to three times, and one of
// them must end no higher than it began.
static void sweep_kind(const reply_kind_t *kind, bool fresh) {
    caller_t c = {.kind = kind, .fresh = fresh};
    c.nodes.ctx = context_for(kind->settings);
    LZ_CHECK_INT(lz_logger_to_callback(lz_context_logger(c.nodes.ctx), discard_record, NULL), LZ_OK);
    kind->open(&c);
    lz_oom_sweep(&(lz_oom_sweep_t){.name = kind->name, .prepare = ask_answer, .run = answer, .arg = &c,
                                   .fresh = fresh, .spared = spared, .finish = check_reply, .limit = SWEEP_LIMIT,
                                   .warm_runs = 60, .steady_runs = 3, .live = lz_oom_live_unkept, .settle_ms = 300,
                                   .resweeps = 3});
    caller_close(&c);
}

LZ_TEST(failed_replies_from_the_caller_lose_nothing) {
    for (size_t i = 0; i < sizeof reply_kinds / sizeof reply_kinds[0]; i++) {
        sweep_kind(&reply_kinds[i], false);
        sweep_kind(&reply_kinds[i], true);
    }
}

LZ_TEST_MAIN(LZ_CASE(failing_threads_lose_nothing), LZ_CASE(failed_replies_from_the_caller_lose_nothing))

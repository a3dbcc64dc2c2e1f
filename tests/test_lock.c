/* Distributed locks: mutual exclusion between clients and threads, release
 * by a wrong owner refused, expiry letting the next owner in with a larger
 * fencing token, renewal, try_acquire and a bounded wait, an acquire woken
 * by a release and by the holder's lease end, malformed requests answered
 * with error replies, the table's cap and its expired entries dropped,
 * destroy releasing, a pyzmq peer speaking the Python guide's wire, a
 * wait given up (lz_lock_cancel) that leaves the lock free, and the
 * service's numbers (lz_lock_service_stats, the Prometheus scrape). */
#include <pthread.h>
#include <stdatomic.h>

#include "lz_test.h"

typedef struct {
    lz_context_t *ctx;
    lz_server_t *server;
    lz_lock_service_t *service;
    const char *endpoint;
} fixture_t;

// start_service_at serves locks on ctx (taken) at endpoint.
static fixture_t start_service_at(lz_context_t *ctx, const char *endpoint, size_t max_locks) {
    fixture_t f = {.ctx = ctx};
    f.server = lz_server_new(f.ctx, endpoint);
    LZ_CHECK(f.server != NULL);
    f.service = lz_lock_service_attach(f.server, max_locks);
    LZ_CHECK(f.service != NULL);
    LZ_CHECK_INT(lz_server_start(f.server), LZ_OK);
    f.endpoint = lz_node_endpoint(lz_server_node(f.server));
    return f;
}

static fixture_t start_service_in(lz_context_t *ctx, size_t max_locks) {
    return start_service_at(ctx, "tcp://127.0.0.1:*", max_locks);
}

static fixture_t start_service(size_t max_locks) { return start_service_in(lz_test_pattern_context(4), max_locks); }

static void stop_service(fixture_t *f) {
    lz_server_destroy(&f->server); // first: its handlers use the service
    lz_lock_service_destroy(&f->service);
    LZ_CHECK(f->service == NULL);
    lz_context_destroy(&f->ctx);
}

static lz_lock_t *new_lock(fixture_t *f, const char *name, int ttl_ms) {
    lz_lock_t *lock = lz_lock_new(f->ctx, f->endpoint, name, ttl_ms);
    LZ_CHECK(lock != NULL);
    return lock;
}

// ask sends action with data given as JSON from a plain client and returns
// the request's status; *reply (may be NULL) gets the reply.
static int ask(lz_client_t *client, const char *action, const char *json, lz_value_t **reply) {
    lz_value_t *data = lz_value_from_json(json, strlen(json)), *got = NULL;
    LZ_CHECK(data != NULL);
    int rc = lz_client_request(client, action, data, &got, 3000 * LZ_TEST_SLOWDOWN);
    lz_value_destroy(&data);
    if (reply) *reply = got;
    else lz_value_destroy(&got);
    return rc;
}

static bool flag(const lz_value_t *reply, const char *key) { return lz_value_get_bool(lz_value_get(reply, key)); }

// reply_is checks reply against the JSON text want, exactly.
static void reply_is(lz_value_t **reply, const char *want) {
    lz_value_t *expected = lz_value_from_json(want, strlen(want));
    LZ_CHECK(expected != NULL);
    char *got = lz_value_to_json(*reply);
    if (!lz_value_equal(*reply, expected)) fprintf(stderr, "reply %s, expected %s\n", got, want);
    LZ_CHECK(lz_value_equal(*reply, expected));
    free(got);
    lz_value_destroy(&expected);
    lz_value_destroy(reply);
}

LZ_TEST(one_holder_at_a_time) {
    fixture_t f = start_service(0);
    lz_lock_t *a = new_lock(&f, "printer", 10000), *b = new_lock(&f, "printer", 10000);
    LZ_CHECK(!lz_lock_held(a));
    LZ_CHECK_INT(lz_lock_fencing_token(a), 0);
    LZ_CHECK_INT(lz_lock_acquire(a, 1000), LZ_OK);
    LZ_CHECK(lz_lock_held(a));
    int64_t first = lz_lock_fencing_token(a);
    LZ_CHECK(first > 0);
    LZ_CHECK_INT(lz_lock_try_acquire(b), LZ_EBUSY);
    LZ_CHECK(!lz_lock_held(b));
    LZ_CHECK_INT(lz_lock_try_acquire(a), LZ_ESTATE); // held already: renew instead
    LZ_CHECK_INT((int)lz_lock_service_count(f.service), 1);
    LZ_CHECK_INT(lz_lock_release(a), LZ_OK);
    LZ_CHECK(!lz_lock_held(a));
    LZ_CHECK_INT(lz_lock_fencing_token(a), 0);
    LZ_CHECK_INT(lz_lock_release(a), LZ_ESTATE); // not held any more
    LZ_CHECK_INT(lz_lock_try_acquire(b), LZ_OK);
    LZ_CHECK(lz_lock_fencing_token(b) > first);
    // Other names are other locks.
    lz_lock_t *c = new_lock(&f, "scanner", 10000);
    LZ_CHECK_INT(lz_lock_try_acquire(c), LZ_OK);
    LZ_CHECK_INT((int)lz_lock_service_count(f.service), 2);
    lz_lock_destroy(&a);
    lz_lock_destroy(&b);
    lz_lock_destroy(&c);
    LZ_CHECK(a == NULL);
    LZ_CHECK_INT((int)lz_lock_service_count(f.service), 0);
    stop_service(&f);
}

/* Threads, each with its own lock object, take turns in a critical
 * section that counts who is inside: never more than one. */
typedef struct {
    fixture_t *f;
    atomic_int *inside, *overlaps, *entries;
} contender_t;

static void *contend(void *arg) {
    contender_t *c = arg;
    lz_lock_t *lock = new_lock(c->f, "counter", 5000);
    for (int i = 0; i < 5 && lock; i++) {
        LZ_CHECK_INT(lz_lock_acquire(lock, 20000 * LZ_TEST_SLOWDOWN), LZ_OK);
        if (atomic_fetch_add(c->inside, 1) != 0) atomic_fetch_add(c->overlaps, 1);
        lz_test_sleep_ms(2);
        atomic_fetch_sub(c->inside, 1);
        atomic_fetch_add(c->entries, 1);
        LZ_CHECK_INT(lz_lock_release(lock), LZ_OK);
    }
    lz_lock_destroy(&lock);
    return NULL;
}

LZ_TEST(threads_exclude_each_other) {
    fixture_t f = start_service(0);
    atomic_int inside = 0, overlaps = 0, entries = 0;
    contender_t c = {&f, &inside, &overlaps, &entries};
    pthread_t threads[4];
    for (int i = 0; i < 4; i++) pthread_create(&threads[i], NULL, contend, &c);
    for (int i = 0; i < 4; i++) pthread_join(threads[i], NULL);
    LZ_CHECK_INT(atomic_load(&entries), 20);
    LZ_CHECK_INT(atomic_load(&overlaps), 0);
    stop_service(&f);
}

LZ_TEST(release_by_wrong_owner_refused) {
    fixture_t f = start_service(0);
    lz_client_t *client = lz_client_new(f.ctx, f.endpoint);
    lz_value_t *reply = NULL;
    LZ_CHECK_INT(ask(client, "acquire_lock", "{\"lock_name\":\"db\",\"lock_id\":\"owner-a\",\"timeout\":10}", &reply),
                 LZ_OK);
    LZ_CHECK(flag(reply, "acquired"));
    LZ_CHECK_STR(lz_value_find_string(reply, "lock_id", NULL), "owner-a");
    int64_t token = lz_value_find_int(reply, "fencing_token", 0);
    LZ_CHECK(token > 0);
    lz_value_destroy(&reply);
    // The same owner asking again (a retry whose reply was lost) is granted, same token.
    LZ_CHECK_INT(ask(client, "acquire_lock", "{\"lock_name\":\"db\",\"lock_id\":\"owner-a\",\"timeout\":10}", &reply),
                 LZ_OK);
    LZ_CHECK(flag(reply, "acquired"));
    LZ_CHECK_INT(lz_value_find_int(reply, "fencing_token", 0), token);
    lz_value_destroy(&reply);
    LZ_CHECK_INT(ask(client, "acquire_lock", "{\"lock_name\":\"db\",\"lock_id\":\"owner-b\"}", &reply), LZ_OK);
    LZ_CHECK(!flag(reply, "acquired") && lz_value_get(reply, "acquired"));
    LZ_CHECK_STR(lz_value_find_string(reply, "reason", NULL), "lock_held");
    double left = lz_value_find_double(reply, "expires_in", 0);
    LZ_CHECK(left > 9 && left <= 10);
    lz_value_destroy(&reply);
    LZ_CHECK_INT(ask(client, "release_lock", "{\"lock_name\":\"db\",\"lock_id\":\"owner-b\"}", &reply), LZ_OK);
    reply_is(&reply, "{\"released\":false,\"reason\":\"lock_not_found_or_mismatch\"}");
    LZ_CHECK_INT(ask(client, "renew_lock", "{\"lock_name\":\"db\",\"lock_id\":\"owner-b\"}", &reply), LZ_OK);
    LZ_CHECK(!flag(reply, "renewed"));
    LZ_CHECK_STR(lz_value_find_string(reply, "reason", NULL), "lock_not_found_or_mismatch");
    lz_value_destroy(&reply);
    // Status tells that it is held and its token, never by whom.
    LZ_CHECK_INT(ask(client, "lock_status", "{\"lock_name\":\"db\"}", &reply), LZ_OK);
    LZ_CHECK(flag(reply, "held"));
    LZ_CHECK_INT(lz_value_find_int(reply, "fencing_token", 0), token);
    LZ_CHECK(lz_value_get(reply, "lock_id") == NULL);
    lz_value_destroy(&reply);
    LZ_CHECK_INT(ask(client, "release_lock", "{\"lock_name\":\"db\",\"lock_id\":\"owner-a\"}", &reply), LZ_OK);
    reply_is(&reply, "{\"released\":true}");
    LZ_CHECK_INT(ask(client, "lock_status", "{\"lock_name\":\"db\"}", &reply), LZ_OK);
    reply_is(&reply, "{\"held\":false,\"lock_name\":\"db\"}");
    lz_client_destroy(&client);
    stop_service(&f);
}

LZ_TEST(expiry_lets_the_next_owner_in) {
    fixture_t f = start_service(0);
    lz_lock_t *a = new_lock(&f, "job", 200), *b = new_lock(&f, "job", 5000);
    LZ_CHECK_INT(lz_lock_try_acquire(a), LZ_OK);
    int64_t first = lz_lock_fencing_token(a);
    LZ_CHECK_INT(lz_lock_try_acquire(b), LZ_EBUSY);
    lz_test_sleep_ms(250); // a "paused" holder: its lease ends meanwhile
    LZ_CHECK(!lz_lock_held(a)); // it can tell, without asking
    LZ_CHECK_INT(lz_lock_try_acquire(b), LZ_OK);
    LZ_CHECK(lz_lock_fencing_token(b) > first); // storage checking tokens refuses a's late writes
    LZ_CHECK_INT(lz_lock_renew(a), LZ_ESTATE); // an ended lease does not come back
    LZ_CHECK_INT(lz_lock_release(a), LZ_ESTATE);
    LZ_CHECK(lz_lock_held(b));
    LZ_CHECK_INT((int)lz_lock_service_count(f.service), 1);
    lz_lock_destroy(&a);
    lz_lock_destroy(&b);
    stop_service(&f);
}

LZ_TEST(renew_extends_the_lease) {
    fixture_t f = start_service(0);
    int ttl = 400 * LZ_TEST_SLOWDOWN;
    lz_lock_t *a = new_lock(&f, "lease", ttl), *b = new_lock(&f, "lease", ttl);
    LZ_CHECK_INT(lz_lock_try_acquire(a), LZ_OK);
    int64_t token = lz_lock_fencing_token(a);
    for (int i = 0; i < 3; i++) { // 3 x 0.6 ttl: well past the first lease
        lz_test_sleep_ms(ttl * 6 / 10);
        LZ_CHECK_INT(lz_lock_renew(a), LZ_OK);
    }
    LZ_CHECK(lz_lock_held(a));
    LZ_CHECK_INT(lz_lock_fencing_token(a), token); // the same hold
    LZ_CHECK_INT(lz_lock_try_acquire(b), LZ_EBUSY);
    LZ_CHECK_INT(lz_lock_renew(b), LZ_ESTATE); // b holds nothing
    lz_lock_destroy(&a);
    lz_lock_destroy(&b);
    stop_service(&f);
}

LZ_TEST(try_acquire_and_bounded_wait) {
    fixture_t f = start_service(0);
    lz_lock_t *a = new_lock(&f, "busy", 10000), *b = new_lock(&f, "busy", 10000);
    LZ_CHECK_INT(lz_lock_acquire(a, 0), LZ_OK);
    int64_t t0 = lz_test_now_ms();
    LZ_CHECK_INT(lz_lock_try_acquire(b), LZ_EBUSY);
    LZ_CHECK(lz_test_now_ms() - t0 < 500 * LZ_TEST_SLOWDOWN); // one round trip, no waiting
    t0 = lz_test_now_ms();
    LZ_CHECK_INT(lz_lock_acquire(b, 300), LZ_ETIMEOUT);
    int64_t took = lz_test_now_ms() - t0;
    LZ_CHECK(took >= 300 && took < 800 * LZ_TEST_SLOWDOWN);
    LZ_CHECK(strstr(lz_last_error(), "still held by another owner") != NULL);
    LZ_CHECK(!lz_lock_held(b));
    lz_lock_destroy(&a);
    lz_lock_destroy(&b);
    stop_service(&f);
}

static void *release_later(void *arg) {
    lz_test_sleep_ms(200);
    LZ_CHECK_INT(lz_lock_release(arg), LZ_OK);
    return NULL;
}

LZ_TEST(acquire_waits_for_release_and_for_lease_end) {
    fixture_t f = start_service(0);
    lz_lock_t *a = new_lock(&f, "door", 10000), *b = new_lock(&f, "door", 10000);
    LZ_CHECK_INT(lz_lock_try_acquire(a), LZ_OK);
    pthread_t thread;
    pthread_create(&thread, NULL, release_later, a);
    int64_t t0 = lz_test_now_ms();
    LZ_CHECK_INT(lz_lock_acquire(b, 5000 * LZ_TEST_SLOWDOWN), LZ_OK);
    LZ_CHECK(lz_test_now_ms() - t0 >= 150);
    pthread_join(thread, NULL);
    LZ_CHECK_INT(lz_lock_release(b), LZ_OK);
    // A holder that never releases: the waiter asks again when the lease
    // ends (the reply said when), not a backoff step later.
    lz_lock_t *c = new_lock(&f, "door", 300);
    LZ_CHECK_INT(lz_lock_try_acquire(c), LZ_OK);
    t0 = lz_test_now_ms();
    LZ_CHECK_INT(lz_lock_acquire(b, 5000 * LZ_TEST_SLOWDOWN), LZ_OK);
    int64_t took = lz_test_now_ms() - t0;
    LZ_CHECK(took >= 250 && took < 450 * LZ_TEST_SLOWDOWN);
    lz_lock_destroy(&a);
    lz_lock_destroy(&b);
    lz_lock_destroy(&c);
    stop_service(&f);
}

// Each malformed request gets an LZ_EVALIDATION error reply naming the
// field; the service serves on after them.
LZ_TEST(malformed_requests_get_error_replies) {
    static const struct {
        const char *action, *data, *message;
    } bad[] = {
        {"acquire_lock", "null", "data must be an object with 'lock_name', not null"},
        {"acquire_lock", "[1]", "data must be an object with 'lock_name', not array"},
        {"acquire_lock", "{\"lock_id\":\"x\"}", "missing 'lock_name' (a string)"},
        {"acquire_lock", "{\"lock_name\":7,\"lock_id\":\"x\"}", "'lock_name' must be a string, not int"},
        {"acquire_lock", "{\"lock_name\":\"\",\"lock_id\":\"x\"}", "'lock_name' must be 1 to 256 bytes with no NUL"},
        {"acquire_lock", "{\"lock_name\":\"a\\u0000b\",\"lock_id\":\"x\"}", "with no NUL, not 3 bytes"},
        {"acquire_lock", "{\"lock_name\":\"n\"}", "missing 'lock_id' (a string)"},
        {"acquire_lock", "{\"lock_name\":\"n\",\"lock_id\":\"x\",\"timeout\":\"30\"}",
         "'timeout' must be a number of seconds, not string"},
        {"acquire_lock", "{\"lock_name\":\"n\",\"lock_id\":\"x\",\"timeout\":true}",
         "'timeout' must be a number of seconds, not bool"},
        {"acquire_lock", "{\"lock_name\":\"n\",\"lock_id\":\"x\",\"timeout\":null}",
         "'timeout' must be a number of seconds, not null"},
        {"acquire_lock", "{\"lock_name\":\"n\",\"lock_id\":\"x\",\"timeout\":0}",
         "'timeout' must be more than 0 and at most 86400 seconds, not 0"},
        {"acquire_lock", "{\"lock_name\":\"n\",\"lock_id\":\"x\",\"timeout\":-5}", "not -5"},
        {"acquire_lock", "{\"lock_name\":\"n\",\"lock_id\":\"x\",\"timeout\":1e300}", "not 1e+300"},
        {"renew_lock", "{\"lock_name\":\"n\",\"lock_id\":\"x\",\"timeout\":86401}", "renew_lock: 'timeout' must be"},
        {"release_lock", "{\"lock_name\":\"n\"}", "release_lock: missing 'lock_id' (a string)"},
        {"release_lock", "\"n\"", "release_lock: data must be an object"},
        {"lock_status", "{}", "lock_status: missing 'lock_name' (a string)"},
    };
    fixture_t f = start_service(0);
    lz_client_t *client = lz_client_new(f.ctx, f.endpoint);
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        lz_value_t *reply = NULL;
        LZ_CHECK_INT(ask(client, bad[i].action, bad[i].data, &reply), LZ_EREMOTE);
        LZ_CHECK_STR(lz_value_find_string(reply, "code", NULL), "LZ_EVALIDATION");
        const char *message = lz_value_find_string(reply, "message", "");
        if (!strstr(message, bad[i].message))
            fprintf(stderr, "request %zu: message '%s', expected '%s' in it\n", i, message, bad[i].message);
        LZ_CHECK(strstr(message, bad[i].message) != NULL);
        lz_value_destroy(&reply);
    }
    char long_name[LZ_LOCK_NAME_MAX + 64];
    snprintf(long_name, sizeof long_name, "{\"lock_name\":\"%0*d\",\"lock_id\":\"x\"}", LZ_LOCK_NAME_MAX + 1, 0);
    LZ_CHECK_INT(ask(client, "acquire_lock", long_name, NULL), LZ_EREMOTE);
    LZ_CHECK_INT((int)lz_lock_service_count(f.service), 0);
    // Fractions of a second are leases too; the Python guide's default is 30 s.
    lz_value_t *reply = NULL;
    LZ_CHECK_INT(ask(client, "acquire_lock", "{\"lock_name\":\"n\",\"lock_id\":\"x\",\"timeout\":0.0001}", &reply), 0);
    LZ_CHECK(flag(reply, "acquired"));
    lz_value_destroy(&reply);
    LZ_CHECK_INT(ask(client, "acquire_lock", "{\"lock_name\":\"m\",\"lock_id\":\"x\"}", &reply), LZ_OK);
    LZ_CHECK(lz_value_find_double(reply, "expires_in", 0) > 29.9);
    lz_value_destroy(&reply);
    // 2.007 * 1000 is 2007.0000000000002 in doubles: still a 2007 ms lease.
    LZ_CHECK_INT(ask(client, "acquire_lock", "{\"lock_name\":\"k\",\"lock_id\":\"x\",\"timeout\":2.007}", &reply),
                 LZ_OK);
    LZ_CHECK(lz_value_find_double(reply, "expires_in", 0) == 2.007);
    lz_value_destroy(&reply);
    lz_client_destroy(&client);
    // Bad arguments on our side never reach the wire.
    LZ_CHECK(lz_lock_new(f.ctx, f.endpoint, "", 1000) == NULL);
    LZ_CHECK_INT(lz_last_error_code(), LZ_EINVAL);
    LZ_CHECK(lz_lock_new(f.ctx, f.endpoint, "x", 0) == NULL);
    LZ_CHECK(lz_lock_new(f.ctx, f.endpoint, "x", LZ_LOCK_TIMEOUT_MAX * 1000 + 1) == NULL);
    LZ_CHECK(lz_lock_new(f.ctx, f.endpoint, long_name, 1000) == NULL);
    stop_service(&f);
}

LZ_TEST(table_is_bounded) {
    fixture_t f = start_service(2);
    lz_lock_t *a = new_lock(&f, "a", 150), *b = new_lock(&f, "b", 10000), *c = new_lock(&f, "c", 10000);
    LZ_CHECK_INT(lz_lock_try_acquire(a), LZ_OK);
    LZ_CHECK_INT(lz_lock_try_acquire(b), LZ_OK);
    LZ_CHECK_INT(lz_lock_try_acquire(c), LZ_EREMOTE);
    LZ_CHECK(strstr(lz_last_error(), "the lock table is full (2 locks held)") != NULL);
    LZ_CHECK_INT(lz_lock_acquire(c, 1000), LZ_EREMOTE); // waiting does not mend it: said at once
    lz_client_t *client = lz_client_new(f.ctx, f.endpoint);
    lz_value_t *reply = NULL;
    LZ_CHECK_INT(ask(client, "acquire_lock", "{\"lock_name\":\"d\",\"lock_id\":\"x\"}", &reply), LZ_EREMOTE);
    LZ_CHECK_STR(lz_value_find_string(reply, "code", NULL), "LZ_EAGAIN");
    lz_value_destroy(&reply);
    lz_client_destroy(&client);
    lz_test_sleep_ms(200); // a's lease ends: its entry goes on the next look
    LZ_CHECK_INT((int)lz_lock_service_count(f.service), 1);
    LZ_CHECK_INT(lz_lock_try_acquire(c), LZ_OK);
    lz_lock_destroy(&a);
    lz_lock_destroy(&b);
    lz_lock_destroy(&c);
    LZ_CHECK_INT((int)lz_lock_service_count(f.service), 0);
    stop_service(&f);
}

LZ_TEST(destroy_releases) {
    fixture_t f = start_service(0);
    lz_lock_t *a = new_lock(&f, "res", 60000), *b = new_lock(&f, "res", 60000);
    LZ_CHECK_INT(lz_lock_try_acquire(a), LZ_OK);
    LZ_CHECK_INT(lz_lock_try_acquire(b), LZ_EBUSY);
    lz_lock_destroy(&a);
    LZ_CHECK_INT(lz_lock_try_acquire(b), LZ_OK);
    lz_lock_destroy(&b);
    LZ_CHECK_INT((int)lz_lock_service_count(f.service), 0);
    lz_lock_destroy(NULL);
    lz_lock_destroy(&b);
    stop_service(&f);
}

// A server that was never a lock service: its error reply is LZ_EREMOTE,
// and a silent endpoint is LZ_ETIMEOUT, within the wait.
LZ_TEST(no_lock_service) {
    lz_context_t *ctx = LZ_TEST_CONTEXT("zmq.linger=0", "zmq.request_timeout=200", "zmq.request_retries=0");
    lz_server_t *server = lz_server_new(ctx, "tcp://127.0.0.1:*");
    LZ_CHECK_INT(lz_server_start(server), LZ_OK);
    LZ_CHECK(lz_lock_service_attach(server, 0) == NULL); // started: too late
    LZ_CHECK_INT(lz_last_error_code(), LZ_ESTATE);
    lz_lock_t *lock = lz_lock_new(ctx, lz_node_endpoint(lz_server_node(server)), "x", 1000);
    LZ_CHECK_INT(lz_lock_try_acquire(lock), LZ_EREMOTE);
    LZ_CHECK(strstr(lz_last_error(), "unknown action 'acquire_lock'") != NULL);
    lz_lock_destroy(&lock);
    char endpoint[128];
    lock = lz_lock_new(ctx, lz_test_ipc_endpoint(endpoint, sizeof endpoint), "x", 1000);
    int64_t t0 = lz_test_now_ms();
    LZ_CHECK_INT(lz_lock_acquire(lock, 500), LZ_ETIMEOUT);
    LZ_CHECK(strstr(lz_last_error(), "no answer from the lock service") != NULL);
    int64_t took = lz_test_now_ms() - t0;
    LZ_CHECK(took >= 500 && took < 1000 * LZ_TEST_SLOWDOWN);
    lz_lock_destroy(&lock); // its unanswered acquire's release went in the background: nothing more
    lz_server_destroy(&server);
    lz_context_destroy(&ctx);
}

// An acquire nobody answers has its owner id released in the background
// (a grant may yet come): lz_lock_destroy leaves that release to go on
// rather than send another and wait a whole zmq.request_timeout for it,
// and the acquire's error says how long it waited, its request's time
// past the wait included.
LZ_TEST(destroy_after_an_unanswered_acquire_is_prompt) {
    char timeout[64];
    int request_ms = 1000 * LZ_TEST_SLOWDOWN;
    snprintf(timeout, sizeof timeout, "zmq.request_timeout=%d", request_ms);
    // A linger of its own: with no connection up, destroy has nothing to wait for.
    lz_context_t *ctx = LZ_TEST_CONTEXT("zmq.linger=1000", "zmq.request_retries=0", timeout);
    char endpoint[128];
    lz_lock_t *lock = lz_lock_new(ctx, lz_test_ipc_endpoint(endpoint, sizeof endpoint), "x", 1000);
    LZ_CHECK_INT(lz_lock_acquire(lock, 0), LZ_ETIMEOUT);
    const char *said = strstr(lz_last_error(), "no answer from the lock service in ");
    LZ_CHECK(said != NULL);
    LZ_CHECK(said && atoi(said + strlen("no answer from the lock service in ")) >= request_ms);
    int64_t t0 = lz_test_now_ms();
    lz_lock_destroy(&lock);
    LZ_CHECK(lz_test_now_ms() - t0 < request_ms / 2); // a whole request_ms before
    lz_context_destroy(&ctx);
}

// A reload's zmq.request_timeout holds for the next request of every
// client, a lock's too: the lock copied the one it was created under.
LZ_TEST(reloaded_request_timeout_holds_for_locks) {
    lz_context_t *ctx = LZ_TEST_CONTEXT("zmq.linger=0");
    lz_config_t *next = LZ_TEST_CONFIG("zmq.linger=0", "zmq.request_timeout=200", "zmq.request_retries=0");
    LZ_CHECK_INT(lz_context_reload(ctx, next), LZ_OK);
    char endpoint[128];
    lz_lock_t *lock = lz_lock_new(ctx, lz_test_ipc_endpoint(endpoint, sizeof endpoint), "x", 1000);
    LZ_CHECK(lock != NULL);
    int64_t t0 = lz_test_now_ms();
    LZ_CHECK_INT(lz_lock_acquire(lock, 100), LZ_ETIMEOUT); // parked: its wait plus one request, 300 ms
    int64_t took = lz_test_now_ms() - t0;
    LZ_CHECK(took >= 100 && took < 1500 * LZ_TEST_SLOWDOWN); // 5100 ms before
    lz_lock_destroy(&lock);
    lz_config_destroy(&next);
    lz_context_destroy(&ctx);
}

// A pyzmq REQ peer speaks the Python guide's DistributedLock wire to our
// service, and finds a lock we hold held.
LZ_TEST(python_peer) {
    fixture_t f = start_service(0);
    lz_lock_t *held = new_lock(&f, "held_by_c", 10000);
    LZ_CHECK_INT(lz_lock_try_acquire(held), LZ_OK);
    char token[32];
    snprintf(token, sizeof token, "%lld", (long long)lz_lock_fencing_token(held));
    pid_t pid = lz_test_spawn_python("lock_peer.py", f.endpoint, token);
    LZ_CHECK(pid > 0);
    LZ_CHECK_INT(lz_test_wait(pid, 20000 * LZ_TEST_SLOWDOWN), 0);
    LZ_CHECK(lz_lock_held(held));
    lz_lock_destroy(&held);
    LZ_CHECK_INT((int)lz_lock_service_count(f.service), 0); // the peer released its own
    stop_service(&f);
}

/* ---- waiting in the service's queue ---------------------------------------- */

// A waiter on its own thread: it asks for the lock and notes when it got
// it, in which turn, and holds it hold_ms before releasing it. Given a
// lock object (given), it only acquires it, leaving it as it is then.
typedef struct {
    fixture_t *f;
    const char *name;
    int wait_ms, hold_ms;
    int rc, turn;
    int64_t got_at;
    atomic_int *turns;
    lz_lock_t *given;
    atomic_bool done; // rc and got_at are set
    pthread_t thread;
} waiter_t;

static void *wait_for_lock(void *arg) {
    waiter_t *w = arg;
    lz_lock_t *lock = w->given ? w->given : new_lock(w->f, w->name, 10000);
    w->rc = lz_lock_acquire(lock, w->wait_ms);
    w->got_at = lz_test_now_ms();
    if (w->turns) w->turn = atomic_fetch_add(w->turns, 1);
    atomic_store(&w->done, true);
    if (w->given) return NULL;
    if (w->rc == LZ_OK) {
        lz_test_sleep_ms(w->hold_ms);
        LZ_CHECK_INT(lz_lock_release(lock), LZ_OK);
    }
    lz_lock_destroy(&lock);
    return NULL;
}

static void start_waiter(waiter_t *w, fixture_t *f, const char *name, int wait_ms, atomic_int *turns) {
    *w = (waiter_t){.f = f, .name = name, .wait_ms = wait_ms, .hold_ms = 20, .rc = 1, .turns = turns};
    pthread_create(&w->thread, NULL, wait_for_lock, w);
    lz_test_sleep_ms(100 * LZ_TEST_SLOWDOWN); // it is parked by now: the order of arrival is the order started
}

LZ_TEST(waiter_gets_the_lock_at_release) {
    fixture_t f = start_service(0);
    lz_lock_t *a = new_lock(&f, "gate", 10000);
    LZ_CHECK_INT(lz_lock_try_acquire(a), LZ_OK);
    waiter_t w;
    start_waiter(&w, &f, "gate", 5000 * LZ_TEST_SLOWDOWN, NULL);
    lz_test_sleep_ms(500); // longer than the old polling's longest pause: the waiter is parked, not polling
    int64_t released = lz_test_now_ms();
    LZ_CHECK_INT(lz_lock_release(a), LZ_OK);
    pthread_join(w.thread, NULL);
    LZ_CHECK_INT(w.rc, LZ_OK);
    if (w.got_at - released >= 100 * LZ_TEST_SLOWDOWN) fprintf(stderr, "granted %lld ms after the release\n", (long long)(w.got_at - released));
    LZ_CHECK(w.got_at - released < 100 * LZ_TEST_SLOWDOWN);
    lz_lock_destroy(&a);
    stop_service(&f);
}

LZ_TEST(waiters_are_served_in_order) {
    fixture_t f = start_service(0);
    lz_lock_t *a = new_lock(&f, "queue", 10000);
    LZ_CHECK_INT(lz_lock_try_acquire(a), LZ_OK);
    atomic_int turns = 0;
    waiter_t w[3];
    for (int i = 0; i < 3; i++) start_waiter(&w[i], &f, "queue", 5000 * LZ_TEST_SLOWDOWN, &turns);
    LZ_CHECK_INT(lz_lock_release(a), LZ_OK);
    for (int i = 0; i < 3; i++) {
        pthread_join(w[i].thread, NULL);
        LZ_CHECK_INT(w[i].rc, LZ_OK);
        LZ_CHECK_INT(w[i].turn, i);
    }
    lz_lock_destroy(&a);
    stop_service(&f);
}

// A holder that never releases: its lease's end hands the lock over, on
// the service's timer, with no request to notice it.
LZ_TEST(lease_end_hands_over) {
    fixture_t f = start_service(0);
    lz_lock_t *a = new_lock(&f, "lapse", 400);
    int64_t t0 = lz_test_now_ms();
    LZ_CHECK_INT(lz_lock_try_acquire(a), LZ_OK);
    int64_t first = lz_lock_fencing_token(a);
    lz_lock_t *b = new_lock(&f, "lapse", 300); // a lease shorter than its wait: counted from the grant
    LZ_CHECK_INT(lz_lock_acquire(b, 5000 * LZ_TEST_SLOWDOWN), LZ_OK);
    int64_t took = lz_test_now_ms() - t0;
    LZ_CHECK(lz_lock_held(b));
    if (took < 400 || took >= 400 + 100 * LZ_TEST_SLOWDOWN) fprintf(stderr, "handed over after %lld ms\n", (long long)took);
    LZ_CHECK(took >= 400 && took < 400 + 100 * LZ_TEST_SLOWDOWN);
    LZ_CHECK(lz_lock_fencing_token(b) > first);
    LZ_CHECK_INT(lz_lock_renew(a), LZ_ESTATE);
    lz_lock_destroy(&a);
    lz_lock_destroy(&b);
    stop_service(&f);
}

LZ_TEST(waiter_times_out) {
    fixture_t f = start_service(0);
    lz_lock_t *a = new_lock(&f, "long", 10000), *b = new_lock(&f, "long", 10000);
    LZ_CHECK_INT(lz_lock_try_acquire(a), LZ_OK);
    int64_t t0 = lz_test_now_ms();
    LZ_CHECK_INT(lz_lock_acquire(b, 300), LZ_ETIMEOUT);
    int64_t took = lz_test_now_ms() - t0;
    LZ_CHECK(took >= 300 && took < 300 + 100 * LZ_TEST_SLOWDOWN);
    LZ_CHECK(strstr(lz_last_error(), "still held by another owner") != NULL);
    // Its wait is over on the service too: a release now goes to nobody.
    LZ_CHECK_INT(lz_lock_release(a), LZ_OK);
    LZ_CHECK_INT((int)lz_lock_service_count(f.service), 0);
    lz_lock_destroy(&a);
    lz_lock_destroy(&b);
    stop_service(&f);
}

// Parked waiters learn of a stop at once (an LZ_ECLOSED error reply), and
// the service, destroyed after, frees them.
LZ_TEST(stop_answers_waiters) {
    fixture_t f = start_service_in(
        LZ_TEST_CONTEXT("zmq.linger=0", "zmq.handler_max_concurrency=2", "zmq.request_timeout=300"), 0);
    lz_lock_t *a = new_lock(&f, "shut", 10000);
    LZ_CHECK_INT(lz_lock_try_acquire(a), LZ_OK);
    waiter_t w[2];
    for (int i = 0; i < 2; i++) start_waiter(&w[i], &f, "shut", 10000 * LZ_TEST_SLOWDOWN, NULL);
    int64_t t0 = lz_test_now_ms();
    lz_server_destroy(&f.server);
    for (int i = 0; i < 2; i++) {
        pthread_join(w[i].thread, NULL);
        LZ_CHECK_INT(w[i].rc, LZ_EREMOTE);
        LZ_CHECK(w[i].got_at - t0 < 1000 * LZ_TEST_SLOWDOWN);
    }
    lz_lock_destroy(&a); // its release goes unanswered: 300 ms
    stop_service(&f);
}

// ask_later sends action with data as JSON without waiting; o gets the outcome.
typedef lz_test_outcome_t outcome_t;

static void ask_later(lz_client_t *client, const char *action, const char *json, outcome_t *o) {
    lz_value_t *data = lz_value_from_json(json, strlen(json));
    *o = (outcome_t){.status = 1};
    LZ_CHECK_INT(lz_client_request_async(client, action, data, 5000 * LZ_TEST_SLOWDOWN, lz_test_on_reply, o), LZ_OK);
    lz_value_destroy(&data);
}

#define PARK_AS(id, wait) "{\"lock_name\":\"cap\",\"lock_id\":\"" id "\",\"timeout\":10,\"wait_ms\":" #wait "}"
#define ACQUIRE_AS(name, id, extra) "{\"lock_name\":\"" name "\",\"lock_id\":\"" id "\"" extra "}"
#define RELEASE_AS(name, id) "{\"lock_name\":\"" name "\",\"lock_id\":\"" id "\"}"

// Past the cap an acquire is refused at once; a repeat of a parked owner's
// request joins it (both replies get the grant); a waiter's release ends
// its wait.
LZ_TEST(waiters_are_capped_and_joined) {
    fixture_t f = start_service(0);
    LZ_CHECK_INT(lz_lock_service_set_waiters_max(f.service, 2), LZ_OK);
    lz_client_t *client = lz_client_new(f.ctx, f.endpoint);
    LZ_CHECK_INT(ask(client, "acquire_lock", PARK_AS("holder", 0), NULL), LZ_OK);
    outcome_t first, repeat, quitter, quit;
    ask_later(client, "acquire_lock", PARK_AS("w1", 4000), &first);
    ask_later(client, "acquire_lock", PARK_AS("w1", 4000), &repeat); // the cap counts requests: now full
    lz_test_sleep_ms(100 * LZ_TEST_SLOWDOWN);
    int64_t t0 = lz_test_now_ms();
    lz_value_t *reply = NULL;
    LZ_CHECK_INT(ask(client, "acquire_lock", PARK_AS("w2", 4000), &reply), LZ_OK);
    LZ_CHECK(lz_test_now_ms() - t0 < 1000 * LZ_TEST_SLOWDOWN);
    LZ_CHECK(!flag(reply, "acquired"));
    LZ_CHECK_STR(lz_value_find_string(reply, "reason", NULL), "lock_held");
    lz_value_destroy(&reply);
    // w1 gives up: its release (not a holder's) ends its wait, both its requests refused.
    LZ_CHECK_INT(ask(client, "release_lock", "{\"lock_name\":\"cap\",\"lock_id\":\"w1\"}", &reply), LZ_OK);
    reply_is(&reply, "{\"released\":false,\"reason\":\"lock_not_found_or_mismatch\"}");
    LZ_TEST_WAIT_UNTIL(atomic_load(&first.done) && atomic_load(&repeat.done), 2000 * LZ_TEST_SLOWDOWN);
    LZ_CHECK(!flag(first.reply, "acquired") && !flag(repeat.reply, "acquired"));
    // Room again: w3 parks twice, joined; the release grants it once, to both replies.
    ask_later(client, "acquire_lock", PARK_AS("w3", 4000), &quitter);
    ask_later(client, "acquire_lock", PARK_AS("w3", 4000), &quit);
    lz_test_sleep_ms(100 * LZ_TEST_SLOWDOWN);
    LZ_CHECK_INT(ask(client, "release_lock", "{\"lock_name\":\"cap\",\"lock_id\":\"holder\"}", &reply), LZ_OK);
    reply_is(&reply, "{\"released\":true}");
    LZ_TEST_WAIT_UNTIL(atomic_load(&quitter.done) && atomic_load(&quit.done), 2000 * LZ_TEST_SLOWDOWN);
    LZ_CHECK(flag(quitter.reply, "acquired") && flag(quit.reply, "acquired"));
    LZ_CHECK_STR(lz_value_find_string(quit.reply, "lock_id", NULL), "w3");
    LZ_CHECK_INT(lz_value_find_int(quitter.reply, "fencing_token", 0), lz_value_find_int(quit.reply, "fencing_token", 1));
    outcome_t *all[] = {&first, &repeat, &quitter, &quit};
    for (size_t i = 0; i < 4; i++) lz_value_destroy(&all[i]->reply);
    LZ_CHECK_INT(ask(client, "acquire_lock", "{\"lock_name\":\"cap\",\"lock_id\":\"x\",\"wait_ms\":\"soon\"}", &reply),
                 LZ_EREMOTE);
    LZ_CHECK(strstr(lz_value_find_string(reply, "message", ""), "'wait_ms' must be a number") != NULL);
    lz_value_destroy(&reply);
    lz_client_destroy(&client);
    stop_service(&f);
}

// A client that parked an acquire and went away (its connection closed)
// cannot receive its grant when its turn comes: the service takes the
// grant back and the next waiter gets the lock at once, not after a lease
// nobody uses.
LZ_TEST(gone_waiter_is_skipped) {
    fixture_t f = start_service(0);
    lz_lock_t *a = new_lock(&f, "ghost", 10000);
    LZ_CHECK_INT(lz_lock_try_acquire(a), LZ_OK);
    lz_client_t *client = lz_client_new(f.ctx, f.endpoint);
    outcome_t o;
    ask_later(client, "acquire_lock", "{\"lock_name\":\"ghost\",\"lock_id\":\"gone\",\"timeout\":5,\"wait_ms\":9000}",
              &o);
    lz_test_sleep_ms(100 * LZ_TEST_SLOWDOWN);
    lz_client_destroy(&client); // its request ends LZ_ECLOSED; the service still has it parked
    LZ_CHECK_INT(o.status, LZ_ECLOSED);
    waiter_t w;
    start_waiter(&w, &f, "ghost", 5000 * LZ_TEST_SLOWDOWN, NULL);
    int64_t released = lz_test_now_ms();
    LZ_CHECK_INT(lz_lock_release(a), LZ_OK); // to "gone", undeliverable, taken back: to w
    pthread_join(w.thread, NULL);
    LZ_CHECK_INT(w.rc, LZ_OK);
    int64_t took = w.got_at - released;
    if (took >= 100 * LZ_TEST_SLOWDOWN) fprintf(stderr, "granted %lld ms after the release\n", (long long)took);
    LZ_CHECK(took < 100 * LZ_TEST_SLOWDOWN); // not the 5 s lease "gone" would have had
    lz_value_destroy(&o.reply);
    lz_lock_destroy(&a);
    stop_service(&f);
}

// send_raw sends the request {"type": action, "data": data_json} from the
// plain socket s.
static void send_raw(void *s, const char *action, const char *data_json) {
    char request[256];
    int len = snprintf(request, sizeof request, "{\"type\":\"%s\",\"data\":%s}", action, data_json);
    LZ_CHECK_INT(zmq_send(s, request, (size_t)len, 0), len);
}

// A waiter whose client reads no replies (its queue is full) cannot receive
// its grant either: the send waits zmq.send_timeout for room and gives up,
// and the service takes the grant back instead of holding the lock for a
// lease nobody knows of. inproc makes the queue exact: the server's high
// water mark plus the client's, 2 replies, filled by lock_status replies.
LZ_TEST(grant_to_a_full_queue_is_taken_back) {
    char endpoint[128];
    lz_context_t *ctx = LZ_TEST_CONTEXT("zmq.linger=0", "zmq.handler_max_concurrency=2", "zmq.high_water_mark=1",
                                        "zmq.send_timeout=50");
    fixture_t f = start_service_at(ctx, lz_test_inproc_endpoint(endpoint, sizeof endpoint), 0);
    lz_client_t *client = lz_client_new(f.ctx, f.endpoint);
    LZ_CHECK_INT(ask(client, "acquire_lock", ACQUIRE_AS("full", "holder", ), NULL), LZ_OK);
    void *reader = lz_test_plain_socket(lz_context_zmq(f.ctx), ZMQ_DEALER, -1, NULL); // never reads
    int one = 1;
    zmq_setsockopt(reader, ZMQ_RCVHWM, &one, sizeof one);
    LZ_CHECK_INT(zmq_connect(reader, f.endpoint), 0);
    for (int i = 0; i < 3; i++) send_raw(reader, "lock_status", "{\"lock_name\":\"full\"}"); // the third finds no room
    LZ_TEST_WAIT_UNTIL(lz_test_metrics(lz_server_node(f.server)).outbound_dropped == 1, 2000 * LZ_TEST_SLOWDOWN);
    send_raw(reader, "acquire_lock", ACQUIRE_AS("full", "reader", ",\"timeout\":10,\"wait_ms\":9000"));
    lz_lock_stats_t stats = {0};
    LZ_TEST_WAIT_UNTIL(lz_lock_service_stats(f.service, &stats) == LZ_OK && stats.waiters == 1,
                       2000 * LZ_TEST_SLOWDOWN);
    LZ_CHECK_INT((int)stats.waiters, 1);
    LZ_CHECK_INT(ask(client, "release_lock", RELEASE_AS("full", "holder"), NULL), LZ_OK); // to "reader": no room
    LZ_TEST_WAIT_UNTIL(lz_lock_service_stats(f.service, &stats) == LZ_OK && stats.taken_back_total == 1,
                       2000 * LZ_TEST_SLOWDOWN);
    LZ_CHECK_INT((int)stats.taken_back_total, 1);
    LZ_CHECK_INT((int)stats.handovers_total, 1);
    LZ_CHECK_INT((int)stats.locks_held, 0); // free at once, not held for "reader"'s 10 s
    LZ_CHECK_INT((int)lz_test_metrics(lz_server_node(f.server)).outbound_dropped, 2);
    zmq_close(reader);
    lz_client_destroy(&client);
    stop_service(&f);
}

// A client's retries of a parked request join it past the cap (refused,
// the first copy would stay parked, to be granted a lock its client no
// longer waits for); a waiter repeated WAITER_COPIES_MAX times and once
// more stops waiting: every copy refused.
LZ_TEST(retries_join_past_the_cap) {
    fixture_t f = start_service(0);
    LZ_CHECK_INT(lz_lock_service_set_waiters_max(f.service, 1), LZ_OK);
    lz_client_t *client = lz_client_new(f.ctx, f.endpoint);
    LZ_CHECK_INT(ask(client, "acquire_lock", PARK_AS("holder", 0), NULL), LZ_OK);
    outcome_t first, retry, copies[17];
    ask_later(client, "acquire_lock", PARK_AS("w1", 4000), &first);
    lz_test_sleep_ms(50 * LZ_TEST_SLOWDOWN);
    ask_later(client, "acquire_lock", PARK_AS("w1", 4000), &retry); // the cap is reached: joins all the same
    lz_test_sleep_ms(100 * LZ_TEST_SLOWDOWN);
    LZ_CHECK(!atomic_load(&retry.done));
    lz_lock_stats_t stats;
    LZ_CHECK_INT(lz_lock_service_stats(f.service, &stats), LZ_OK);
    LZ_CHECK_INT((int)stats.waiters, 2);
    LZ_CHECK_INT(ask(client, "release_lock", RELEASE_AS("cap", "holder"), NULL), LZ_OK);
    LZ_TEST_WAIT_UNTIL(atomic_load(&first.done) && atomic_load(&retry.done), 2000 * LZ_TEST_SLOWDOWN);
    LZ_CHECK(flag(first.reply, "acquired") && flag(retry.reply, "acquired"));
    for (int i = 0; i < 17; i++) ask_later(client, "acquire_lock", PARK_AS("w2", 4000), &copies[i]);
    int64_t t0 = lz_test_now_ms();
    for (int i = 0; i < 17; i++) {
        LZ_TEST_WAIT_UNTIL(atomic_load(&copies[i].done), 2000 * LZ_TEST_SLOWDOWN);
        LZ_CHECK(copies[i].status == LZ_OK && !flag(copies[i].reply, "acquired"));
        lz_value_destroy(&copies[i].reply);
    }
    LZ_CHECK(lz_test_now_ms() - t0 < 1000 * LZ_TEST_SLOWDOWN); // at once, not at the wait's end
    LZ_CHECK_INT(lz_lock_service_stats(f.service, &stats), LZ_OK);
    LZ_CHECK_INT((int)stats.waiters, 0);
    LZ_CHECK_INT((int)stats.refusals_total, 1); // one waiter refused: not once more for the 17th copy
    lz_value_destroy(&first.reply);
    lz_value_destroy(&retry.reply);
    lz_client_destroy(&client);
    stop_service(&f);
}

// The client's own retries (zmq.request_retries) resend a parked request
// with the same wait_ms: its wait still ends when the first copy's does,
// so lz_lock_acquire gets the refusal in time, not a timeout after it.
LZ_TEST(retried_wait_keeps_its_end) {
    char timeout[64];
    int request_ms = 300 * LZ_TEST_SLOWDOWN, wait_ms = 600 * LZ_TEST_SLOWDOWN;
    snprintf(timeout, sizeof timeout, "zmq.request_timeout=%d", request_ms);
    fixture_t f = start_service_in(LZ_TEST_CONTEXT("zmq.linger=0", "zmq.request_retries=3", timeout), 0);
    lz_lock_t *a = new_lock(&f, "retried", 10000), *b = new_lock(&f, "retried", 10000);
    LZ_CHECK_INT(lz_lock_try_acquire(a), LZ_OK);
    int64_t t0 = lz_test_now_ms();
    LZ_CHECK_INT(lz_lock_acquire(b, wait_ms), LZ_ETIMEOUT);
    int64_t took = lz_test_now_ms() - t0;
    if (took >= wait_ms + request_ms / 2) fprintf(stderr, "refused after %lld ms\n", (long long)took);
    LZ_CHECK(took >= wait_ms && took < wait_ms + request_ms / 2);
    LZ_CHECK(strstr(lz_last_error(), "still held by another owner") != NULL);
    lz_lock_stats_t stats;
    LZ_CHECK_INT(lz_lock_service_stats(f.service, &stats), LZ_OK);
    LZ_CHECK_INT((int)stats.waiters, 0); // every copy answered
    lz_lock_destroy(&a);
    lz_lock_destroy(&b);
    stop_service(&f);
}

// A lease its owner shortens while someone waits (a renewal, or a repeated
// acquire, with a shorter timeout) hands the lock over when it now ends:
// the timer, asleep until the old end, is woken.
LZ_TEST(shortened_lease_hands_over_at_its_new_end) {
    fixture_t f = start_service(0);
    lz_client_t *client = lz_client_new(f.ctx, f.endpoint);
    const char *shorten[] = {"renew_lock", "acquire_lock"};
    for (int i = 0; i < 2; i++) {
        LZ_CHECK_INT(ask(client, "acquire_lock", ACQUIRE_AS("brief", "holder", ",\"timeout\":10"), NULL), LZ_OK);
        waiter_t w;
        start_waiter(&w, &f, "brief", 5000 * LZ_TEST_SLOWDOWN, NULL);
        int64_t shortened = lz_test_now_ms();
        LZ_CHECK_INT(ask(client, shorten[i], ACQUIRE_AS("brief", "holder", ",\"timeout\":0.2"), NULL), LZ_OK);
        pthread_join(w.thread, NULL);
        LZ_CHECK_INT(w.rc, LZ_OK);
        int64_t took = w.got_at - shortened;
        if (took >= 200 + 200 * LZ_TEST_SLOWDOWN)
            fprintf(stderr, "%s: granted after %lld ms\n", shorten[i], (long long)took);
        LZ_CHECK(took >= 150 && took < 200 + 200 * LZ_TEST_SLOWDOWN);
    }
    lz_client_destroy(&client);
    stop_service(&f);
}

// start_held serves locks with name held by "holder", asked through
// *client (made here), and at most waiters_max acquires parked.
static fixture_t start_held(const char *name, size_t waiters_max, lz_client_t **client) {
    fixture_t f = start_service(0);
    LZ_CHECK_INT(lz_lock_service_set_waiters_max(f.service, waiters_max), LZ_OK);
    *client = lz_client_new(f.ctx, f.endpoint);
    char json[128];
    snprintf(json, sizeof json, ACQUIRE_AS("%s", "holder", ), name);
    LZ_CHECK_INT(ask(*client, "acquire_lock", json, NULL), LZ_OK);
    return f;
}

// park_and_stop parks an acquire (json) in f's service, seen in the
// waiters count before the stop (nothing is stopped then, for reading the
// numbers to drop), and stops the server, whose stop answers it. Returns
// when it was seen parked: its wait ends at most its wait_ms after.
static int64_t park_and_stop(fixture_t *f, lz_client_t *client, const char *json, outcome_t *o) {
    ask_later(client, "acquire_lock", json, o);
    lz_lock_stats_t stats = {0};
    LZ_TEST_WAIT_UNTIL(lz_lock_service_stats(f->service, &stats) == LZ_OK && stats.waiters == 1,
                       2000 * LZ_TEST_SLOWDOWN);
    LZ_CHECK_INT((int)stats.waiters, 1);
    int64_t parked = lz_test_now_ms();
    LZ_CHECK_INT(lz_server_stop(f->server), LZ_OK);
    LZ_TEST_WAIT_UNTIL(atomic_load(&o->done), 2000 * LZ_TEST_SLOWDOWN);
    LZ_CHECK_INT(o->status, LZ_EREMOTE); // the stop's LZ_ECLOSED error reply, not an answer of the service
    lz_value_destroy(&o->reply);
    return parked;
}

// service_stats reads service's numbers.
static lz_lock_stats_t service_stats(lz_lock_service_t *service) {
    lz_lock_stats_t stats = {0};
    LZ_CHECK_INT(lz_lock_service_stats(service, &stats), LZ_OK);
    return stats;
}

// A waiter the server's stop answered waits no more: after a restart its
// turn passes it over, with no grant (none to take back), and the lock
// goes straight to the next waiter. Nobody reads the numbers after the
// stop, which once dropped such waiters and so changed what happened.
LZ_TEST(stopped_waiter_is_skipped_after_restart) {
    lz_client_t *client;
    fixture_t f = start_held("boot", LZ_LOCK_WAITERS_DEFAULT, &client);
    outcome_t stale, real;
    park_and_stop(&f, client, ACQUIRE_AS("boot", "stale", ",\"wait_ms\":9000"), &stale);
    LZ_CHECK_INT(lz_server_start(f.server), LZ_OK);
    ask_later(client, "acquire_lock", ACQUIRE_AS("boot", "real", ",\"wait_ms\":9000"), &real);
    lz_test_sleep_ms(100 * LZ_TEST_SLOWDOWN); // parked behind "stale" (reading the waiters count would drop "stale")
    LZ_CHECK_INT(ask(client, "release_lock", RELEASE_AS("boot", "holder"), NULL), LZ_OK); // to "real" at once
    LZ_TEST_WAIT_UNTIL(atomic_load(&real.done), 2000 * LZ_TEST_SLOWDOWN);
    LZ_CHECK(real.status == LZ_OK && flag(real.reply, "acquired"));
    lz_lock_stats_t stats = service_stats(f.service);
    LZ_CHECK_INT((int)stats.grants_total, 2); // "holder" and "real"
    LZ_CHECK_INT((int)stats.handovers_total, 1);
    LZ_CHECK_INT((int)stats.taken_back_total, 0);
    LZ_CHECK_INT((int)stats.waiters, 0);
    lz_value_destroy(&real.reply);
    lz_client_destroy(&client);
    stop_service(&f);
}

// Waiters a server's stop answered hold no room under the cap: after a
// restart, nobody having read the numbers, a new acquire still parks (its
// refusal comes when its wait ends, not at once for want of room).
LZ_TEST(stopped_waiters_leave_room_after_restart) {
    lz_client_t *client;
    fixture_t f = start_held("room", 1, &client);
    outcome_t stale;
    park_and_stop(&f, client, ACQUIRE_AS("room", "stale", ",\"wait_ms\":9000"), &stale);
    LZ_CHECK_INT(lz_server_start(f.server), LZ_OK);
    int wait_ms = 300 * LZ_TEST_SLOWDOWN;
    char fresh[128];
    snprintf(fresh, sizeof fresh, ACQUIRE_AS("room", "fresh", ",\"wait_ms\":%d"), wait_ms);
    int64_t t0 = lz_test_now_ms();
    lz_value_t *reply = NULL;
    LZ_CHECK_INT(ask(client, "acquire_lock", fresh, &reply), LZ_OK);
    int64_t took = lz_test_now_ms() - t0;
    LZ_CHECK(!flag(reply, "acquired"));
    lz_value_destroy(&reply);
    if (took < wait_ms) fprintf(stderr, "refused after %lld ms: not parked\n", (long long)took);
    LZ_CHECK(took >= wait_ms);
    lz_lock_stats_t stats = service_stats(f.service);
    LZ_CHECK_INT((int)stats.waiters, 0);
    LZ_CHECK_INT((int)stats.refusals_total, 1); // "fresh"'s, at its wait's end
    lz_client_destroy(&client);
    stop_service(&f);
}

// A waiter the server's stop answered is no refusal when its wait ends:
// its client was told LZ_ECLOSED, not lock_held.
LZ_TEST(stopped_waiter_is_not_refused) {
    lz_client_t *client;
    fixture_t f = start_held("late", LZ_LOCK_WAITERS_DEFAULT, &client);
    int wait_ms = 500 * LZ_TEST_SLOWDOWN;
    char park[128];
    snprintf(park, sizeof park, ACQUIRE_AS("late", "stale", ",\"wait_ms\":%d"), wait_ms);
    outcome_t stale;
    int64_t wait_end = park_and_stop(&f, client, park, &stale) + wait_ms;
    LZ_CHECK_INT(lz_server_start(f.server), LZ_OK);
    for (int64_t now; (now = lz_test_now_ms()) <= wait_end;) lz_test_sleep_ms((int)(wait_end + 1 - now));
    // Its wait is over: this request's sweep ends it, if the timer has not.
    LZ_CHECK_INT(ask(client, "lock_status", "{\"lock_name\":\"late\"}", NULL), LZ_OK);
    lz_lock_stats_t stats = service_stats(f.service);
    LZ_CHECK_INT((int)stats.refusals_total, 0);
    LZ_CHECK_INT((int)stats.waiters, 0);
    lz_client_destroy(&client);
    stop_service(&f);
}

// The acquires a server's stop answered wait no more: the waiters gauge
// no longer counts them, and after a restart the lock, released, goes to
// nobody (there is no grant to take back).
LZ_TEST(stop_ends_the_waiters_count) {
    lz_client_t *client;
    fixture_t f = start_held("gauge", LZ_LOCK_WAITERS_DEFAULT, &client);
    outcome_t parked;
    park_and_stop(&f, client, ACQUIRE_AS("gauge", "waiter", ",\"wait_ms\":9000"), &parked);
    LZ_CHECK_INT((int)service_stats(f.service).waiters, 0);
    LZ_CHECK_INT(lz_server_start(f.server), LZ_OK);
    LZ_CHECK_INT(ask(client, "release_lock", RELEASE_AS("gauge", "holder"), NULL), LZ_OK);
    lz_lock_stats_t stats = service_stats(f.service);
    LZ_CHECK_INT((int)stats.locks_held, 0);
    LZ_CHECK_INT((int)stats.handovers_total, 0);
    LZ_CHECK_INT((int)stats.taken_back_total, 0);
    lz_client_destroy(&client);
    stop_service(&f);
}

// A lock service that knows no wait_ms (an older liberzmq, the Python
// guide's LockServer) refuses at once: the client then polls as before.
typedef struct {
    atomic_int calls, with_wait, releases;
    int grant_at; // the call that is granted (0: none)
} old_service_t;

static int old_acquire(const lz_message_t *request, lz_value_t **reply, void *arg) {
    old_service_t *old = arg;
    int call = atomic_fetch_add(&old->calls, 1) + 1;
    if (lz_value_get(lz_message_value(request), "wait_ms")) atomic_fetch_add(&old->with_wait, 1);
    bool granted = call == old->grant_at;
    *reply = lz_value_object();
    lz_value_object_set_bool(*reply, "acquired", granted);
    if (granted) lz_value_object_set_string(*reply, "lock_id", lz_value_find_string(lz_message_value(request), "lock_id", ""));
    else lz_value_object_set_string(*reply, "reason", "lock_held");
    return 0;
}

LZ_TEST(polls_a_service_that_does_not_park) {
    lz_context_t *ctx = lz_test_pattern_context(2);
    old_service_t old = {.grant_at = 4};
    lz_server_t *server = lz_server_new(ctx, "tcp://127.0.0.1:*");
    LZ_CHECK_INT(lz_server_on(server, "acquire_lock", old_acquire, &old), LZ_OK);
    LZ_CHECK_INT(lz_server_start(server), LZ_OK);
    lz_lock_t *lock = lz_lock_new(ctx, lz_node_endpoint(lz_server_node(server)), "old", 10000);
    LZ_CHECK_INT(lz_lock_acquire(lock, 5000 * LZ_TEST_SLOWDOWN), LZ_OK);
    LZ_CHECK_INT(atomic_load(&old.calls), 4);
    LZ_CHECK_INT(atomic_load(&old.with_wait), 4);
    LZ_CHECK_INT(lz_lock_fencing_token(lock), 0);
    lz_lock_destroy(&lock); // its release: unknown action, an error reply
    old = (old_service_t){.grant_at = 0};
    lock = lz_lock_new(ctx, lz_node_endpoint(lz_server_node(server)), "old", 10000);
    int64_t t0 = lz_test_now_ms();
    LZ_CHECK_INT(lz_lock_acquire(lock, 300), LZ_ETIMEOUT);
    int64_t took = lz_test_now_ms() - t0;
    LZ_CHECK(took >= 300 && took < 300 + 200 * LZ_TEST_SLOWDOWN);
    LZ_CHECK(atomic_load(&old.calls) >= 3); // polled with backoff: 5-10, 10-20, 20-40 ms, ...
    lz_lock_destroy(&lock);
    lz_server_destroy(&server);
    lz_context_destroy(&ctx);
}

static int old_release(const lz_message_t *request, lz_value_t **reply, void *arg) {
    atomic_fetch_add(&((old_service_t *)arg)->releases, 1);
    *reply = lz_value_object();
    return lz_value_object_set_bool(*reply, "released", false);
}

// A wait that ended without a grant may have left a copy of its request
// parked (a retry the service refused at its cap, one that came after the
// refusal): lz_lock_acquire releases its owner id in the background, so
// that copy is not granted a lock nobody holds.
LZ_TEST(unsettled_wait_is_released) {
    lz_context_t *ctx = lz_test_pattern_context(2);
    old_service_t old = {.grant_at = 0};
    lz_server_t *server = lz_server_new(ctx, "tcp://127.0.0.1:*");
    LZ_CHECK_INT(lz_server_on(server, "acquire_lock", old_acquire, &old), LZ_OK);
    LZ_CHECK_INT(lz_server_on(server, "release_lock", old_release, &old), LZ_OK);
    LZ_CHECK_INT(lz_server_start(server), LZ_OK);
    lz_lock_t *lock = lz_lock_new(ctx, lz_node_endpoint(lz_server_node(server)), "settle", 10000);
    LZ_CHECK_INT(lz_lock_acquire(lock, 200), LZ_ETIMEOUT);
    LZ_TEST_WAIT_UNTIL(atomic_load(&old.releases) == 1, 2000 * LZ_TEST_SLOWDOWN); // before lz_lock_destroy's
    LZ_CHECK_INT(atomic_load(&old.releases), 1);
    LZ_CHECK_INT(lz_lock_try_acquire(lock), LZ_EBUSY); // asked once, never parked: nothing to settle
    lz_test_sleep_ms(100 * LZ_TEST_SLOWDOWN);
    LZ_CHECK_INT(atomic_load(&old.releases), 1);
    lz_lock_destroy(&lock);
    lz_server_destroy(&server);
    lz_context_destroy(&ctx);
}

/* ---- giving up a wait: lz_lock_cancel ------------------------------------- */

// start_acquirer: an lz_lock_acquire of lock without limit on a thread of
// its own (a waiter given lock), for a cancel from another.
static void start_acquirer(waiter_t *w, lz_lock_t *lock) {
    *w = (waiter_t){.given = lock, .wait_ms = -1, .rc = 1};
    LZ_CHECK_INT(pthread_create(&w->thread, NULL, wait_for_lock, w), 0);
}

// cancel_acquirer cancels w's lock and joins w once its acquire returned.
// An acquire the cancel did not end is ended by unstick(arg), so that the
// test fails instead of hanging. Returns how long the acquire took to end.
static int64_t cancel_acquirer(waiter_t *w, void (*unstick)(void *arg), void *arg) {
    int64_t t0 = lz_test_now_ms();
    LZ_CHECK_INT(lz_lock_cancel(w->given), LZ_OK);
    LZ_TEST_WAIT_UNTIL(atomic_load(&w->done), 2000 * LZ_TEST_SLOWDOWN);
    LZ_CHECK(atomic_load(&w->done));
    if (!atomic_load(&w->done)) unstick(arg);
    pthread_join(w->thread, NULL);
    return w->got_at - t0;
}

static void release_holder(void *holder) { lz_lock_release(holder); }

static int waiters(lz_lock_service_t *service) {
    lz_lock_stats_t stats;
    LZ_CHECK_INT(lz_lock_service_stats(service, &stats), LZ_OK);
    return (int)stats.waiters;
}

// A cancel from another thread ends a parked acquire at once (LZ_ECLOSED),
// takes its request out of the service's queue, and the lock goes to a
// newcomer when its holder lets it go, not to the object that gave up
// (which would hold it its 30 s lease). The object acquires no more.
LZ_TEST(cancel_ends_a_wait) {
    fixture_t f = start_service(0);
    lz_lock_t *a = new_lock(&f, "gate", 30000), *b = new_lock(&f, "gate", 30000), *c = new_lock(&f, "gate", 30000);
    LZ_CHECK_INT(lz_lock_try_acquire(a), LZ_OK);
    waiter_t w;
    start_acquirer(&w, b);
    LZ_TEST_WAIT_UNTIL(waiters(f.service) == 1, 5000 * LZ_TEST_SLOWDOWN);
    int64_t took = cancel_acquirer(&w, release_holder, a);
    if (took >= 100 * LZ_TEST_SLOWDOWN) fprintf(stderr, "the cancel took %lld ms\n", (long long)took);
    LZ_CHECK(took < 100 * LZ_TEST_SLOWDOWN);
    LZ_CHECK_INT(w.rc, LZ_ECLOSED);
    LZ_CHECK(!lz_lock_held(b));
    LZ_TEST_WAIT_UNTIL(waiters(f.service) == 0, 2000 * LZ_TEST_SLOWDOWN); // its owner id released in the background
    LZ_CHECK_INT(waiters(f.service), 0);
    LZ_CHECK_INT(lz_lock_release(a), LZ_OK);
    LZ_CHECK_INT(lz_lock_acquire(c, 2000 * LZ_TEST_SLOWDOWN), LZ_OK);
    LZ_CHECK_INT(lz_lock_acquire(b, 1000), LZ_ECLOSED);
    LZ_CHECK(strstr(lz_last_error(), "cancelled") != NULL);
    LZ_CHECK_INT(lz_lock_try_acquire(b), LZ_ECLOSED);
    lz_lock_destroy(&a);
    lz_lock_destroy(&b);
    lz_lock_destroy(&c);
    stop_service(&f);
}

// warm_then_wait: requests flowing first (tries the holder refuses), so
// that the lock's client lends its socket, then the acquire of
// wait_for_lock: it waits on the client's direct path, on this thread.
static void *warm_then_wait(void *arg) {
    waiter_t *w = arg;
    for (int i = 0; i < 5; i++) LZ_CHECK_INT(lz_lock_try_acquire(w->given), LZ_EBUSY);
    return wait_for_lock(w);
}

// A cancel ends an acquire parked while its caller waits on the client's
// socket itself (the direct path) at once, not when that attempt ends (15
// s here), and its parked request leaves the queue.
LZ_TEST(cancel_ends_a_direct_wait) {
    fixture_t f = start_service(0);
    lz_lock_t *a = new_lock(&f, "direct", 30000);
    for (int round = 0; round < 3; round++) {
        if (!lz_lock_held(a)) LZ_CHECK_INT(lz_lock_try_acquire(a), LZ_OK);
        lz_lock_t *b = new_lock(&f, "direct", 30000);
        waiter_t w = {.given = b, .wait_ms = -1, .rc = 1};
        LZ_CHECK_INT(pthread_create(&w.thread, NULL, warm_then_wait, &w), 0);
        LZ_TEST_WAIT_UNTIL(waiters(f.service) == 1, 5000 * LZ_TEST_SLOWDOWN);
        int64_t took = cancel_acquirer(&w, release_holder, a);
        if (took >= 100 * LZ_TEST_SLOWDOWN) fprintf(stderr, "the cancel took %lld ms\n", (long long)took);
        LZ_CHECK(took < 100 * LZ_TEST_SLOWDOWN);
        LZ_CHECK_INT(w.rc, LZ_ECLOSED);
        LZ_TEST_WAIT_UNTIL(waiters(f.service) == 0, 2000 * LZ_TEST_SLOWDOWN);
        LZ_CHECK_INT(waiters(f.service), 0);
        lz_lock_destroy(&b);
    }
    if (lz_lock_held(a)) LZ_CHECK_INT(lz_lock_release(a), LZ_OK);
    lz_lock_destroy(&a);
    stop_service(&f);
}

// A cancel right after the holder's release, while its grant goes to the
// waiter: the acquire returns either LZ_ECLOSED, the grant then given back,
// or 0 (it had taken the grant: the hold is the caller's to release).
// Either way a newcomer gets the lock at once, not after a 30 s lease.
LZ_TEST(cancel_racing_a_grant_leaves_the_lock_free) {
    fixture_t f = start_service(0);
    int outcomes[2] = {0, 0}; // cancelled, granted
    for (int round = 0; round < 10; round++) {
        lz_lock_t *a = new_lock(&f, "race", 30000), *b = new_lock(&f, "race", 30000);
        lz_lock_t *c = new_lock(&f, "race", 30000);
        LZ_CHECK_INT(lz_lock_try_acquire(a), LZ_OK);
        waiter_t w;
        start_acquirer(&w, b);
        LZ_TEST_WAIT_UNTIL(waiters(f.service) == 1, 5000 * LZ_TEST_SLOWDOWN);
        LZ_CHECK_INT(lz_lock_release(a), LZ_OK); // the grant to b is sent
        cancel_acquirer(&w, release_holder, a);
        LZ_CHECK(w.rc == LZ_ECLOSED || w.rc == LZ_OK);
        outcomes[w.rc == LZ_OK]++;
        LZ_CHECK(lz_lock_held(b) == (w.rc == LZ_OK));
        if (w.rc == LZ_OK) LZ_CHECK_INT(lz_lock_release(b), LZ_OK);
        LZ_CHECK_INT(lz_lock_acquire(c, 2000 * LZ_TEST_SLOWDOWN), LZ_OK);
        lz_lock_destroy(&a);
        lz_lock_destroy(&b);
        lz_lock_destroy(&c);
    }
    fprintf(stderr, "cancel won %d times, the grant %d\n", outcomes[0], outcomes[1]);
    stop_service(&f);
}

// A cancel before the acquire is sticky: every acquire fails at once,
// asking nothing. A hold the object already has stays the caller's.
LZ_TEST(cancel_before_acquire) {
    fixture_t f = start_service(0);
    LZ_CHECK_INT(lz_lock_cancel(NULL), LZ_EINVAL);
    lz_lock_t *a = new_lock(&f, "early", 30000), *b = new_lock(&f, "early", 30000);
    LZ_CHECK_INT(lz_lock_cancel(b), LZ_OK);
    LZ_CHECK_INT(lz_lock_cancel(b), LZ_OK);
    int64_t t0 = lz_test_now_ms();
    LZ_CHECK_INT(lz_lock_acquire(b, -1), LZ_ECLOSED);
    LZ_CHECK_INT(lz_lock_try_acquire(b), LZ_ECLOSED);
    LZ_CHECK(lz_test_now_ms() - t0 < 100 * LZ_TEST_SLOWDOWN);
    lz_lock_stats_t stats;
    LZ_CHECK_INT(lz_lock_service_stats(f.service, &stats), LZ_OK);
    LZ_CHECK_INT((int)(stats.grants_total + stats.refusals_total), 0);
    LZ_CHECK_INT(lz_lock_try_acquire(a), LZ_OK);
    LZ_CHECK_INT(lz_lock_cancel(a), LZ_OK);
    LZ_CHECK(lz_lock_held(a));
    LZ_CHECK_INT(lz_lock_renew(a), LZ_OK);
    LZ_CHECK_INT(lz_lock_release(a), LZ_OK);
    LZ_CHECK_INT(lz_lock_try_acquire(a), LZ_ECLOSED);
    lz_lock_destroy(&a);
    lz_lock_destroy(&b);
    stop_service(&f);
}

// A service that holds an acquire back until the test grants it, so that
// the grant comes after the cancel's release has been handled.
typedef struct {
    pthread_mutex_t mutex;
    lz_server_reply_t *parked; // the acquire held back
    char owner[64];            // its lock_id
    char holder[64];           // who holds the lock, "" for nobody
    int releases;
} late_service_t;

static int late_acquire(const lz_message_t *request, lz_value_t **reply, void *arg) {
    late_service_t *late = arg;
    pthread_mutex_lock(&late->mutex);
    late->parked = lz_server_defer(request);
    snprintf(late->owner, sizeof late->owner, "%s", lz_value_find_string(lz_message_value(request), "lock_id", ""));
    pthread_mutex_unlock(&late->mutex);
    return LZ_SERVER_DEFERRED;
}

static int late_release(const lz_message_t *request, lz_value_t **reply, void *arg) {
    late_service_t *late = arg;
    pthread_mutex_lock(&late->mutex);
    bool released = strcmp(late->holder, lz_value_find_string(lz_message_value(request), "lock_id", "")) == 0;
    if (released) late->holder[0] = '\0';
    late->releases++;
    pthread_mutex_unlock(&late->mutex);
    *reply = lz_value_object();
    return lz_value_object_set_bool(*reply, "released", released);
}

static bool late_check(late_service_t *late, bool (*test)(const late_service_t *late)) {
    pthread_mutex_lock(&late->mutex);
    bool ok = test(late);
    pthread_mutex_unlock(&late->mutex);
    return ok;
}
static bool is_parked(const late_service_t *late) { return late->parked != NULL; }
static bool released_once(const late_service_t *late) { return late->releases == 1; }
static bool is_free(const late_service_t *late) { return !late->holder[0]; }

static void stop_server(void *server) { lz_server_stop(server); } // answers the held-back acquire

// start_late serves late's two actions on ctx.
static lz_server_t *start_late(lz_context_t *ctx, late_service_t *late) {
    lz_server_t *server = lz_server_new(ctx, "tcp://127.0.0.1:*");
    LZ_CHECK_INT(lz_server_on(server, "acquire_lock", late_acquire, late), LZ_OK);
    LZ_CHECK_INT(lz_server_on(server, "release_lock", late_release, late), LZ_OK);
    LZ_CHECK_INT(lz_server_start(server), LZ_OK);
    return server;
}

// A grant that reaches the object after its cancel (after the release the
// cancel sent) is given back as it arrives.
LZ_TEST(grant_after_cancel_is_given_back) {
    lz_context_t *ctx = LZ_TEST_CONTEXT("zmq.linger=0", "zmq.request_retries=0"); // one copy of each request
    late_service_t late = {.mutex = PTHREAD_MUTEX_INITIALIZER};
    lz_server_t *server = start_late(ctx, &late);
    lz_lock_t *lock = lz_lock_new(ctx, lz_node_endpoint(lz_server_node(server)), "late", 30000);
    waiter_t w;
    start_acquirer(&w, lock);
    LZ_TEST_WAIT_UNTIL(late_check(&late, is_parked), 5000 * LZ_TEST_SLOWDOWN);
    LZ_CHECK(late_check(&late, is_parked));
    cancel_acquirer(&w, stop_server, server);
    LZ_CHECK_INT(w.rc, LZ_ECLOSED);
    LZ_TEST_WAIT_UNTIL(late_check(&late, released_once), 2000 * LZ_TEST_SLOWDOWN);
    LZ_CHECK(late_check(&late, released_once));
    pthread_mutex_lock(&late.mutex);
    snprintf(late.holder, sizeof late.holder, "%s", late.owner);
    lz_server_reply_t *parked = late.parked;
    pthread_mutex_unlock(&late.mutex);
    lz_value_t *grant = lz_value_object();
    LZ_CHECK_INT(lz_value_object_set_bool(grant, "acquired", true), LZ_OK);
    LZ_CHECK_INT(lz_server_reply_send(&parked, grant), LZ_OK);
    lz_value_destroy(&grant);
    LZ_TEST_WAIT_UNTIL(late_check(&late, is_free), 2000 * LZ_TEST_SLOWDOWN);
    LZ_CHECK(late_check(&late, is_free));
    lz_lock_destroy(&lock);
    lz_server_destroy(&server);
    lz_context_destroy(&ctx);
}

// An acquire a live service does not answer in time may still be granted:
// its owner id's release reaches the service once, also when
// lz_lock_destroy comes at once: destroy waits for that release's answer
// rather than sending another, whatever the linger (lz lock's is 0).
LZ_TEST(unanswered_acquire_is_released_after_destroy) {
    lz_context_t *ctx = LZ_TEST_CONTEXT("zmq.linger=0", "zmq.request_retries=0", "zmq.request_timeout=300");
    late_service_t late = {.mutex = PTHREAD_MUTEX_INITIALIZER};
    lz_server_t *server = start_late(ctx, &late);
    lz_lock_t *lock = lz_lock_new(ctx, lz_node_endpoint(lz_server_node(server)), "late", 30000);
    LZ_CHECK_INT(lz_lock_acquire(lock, 0), LZ_ETIMEOUT);
    LZ_CHECK(late_check(&late, is_parked));
    lz_lock_destroy(&lock);
    LZ_TEST_WAIT_UNTIL(late_check(&late, released_once), 2000 * LZ_TEST_SLOWDOWN);
    LZ_CHECK(late_check(&late, released_once));
    lz_server_stop(server); // answers the acquire held back
    lz_server_reply_error(&late.parked, LZ_ECLOSED, NULL); // frees its handle
    lz_server_destroy(&server);
    lz_context_destroy(&ctx);
}

// A service that holds every acquire back and counts the copies it got,
// so that what a client sends after a cancel is seen.
#define SILENT_HELD_MAX 8
typedef struct {
    lz_server_reply_t *held[SILENT_HELD_MAX]; // read once the server has stopped
    atomic_int copies;
} silent_service_t;

static int silent_acquire(const lz_message_t *request, lz_value_t **reply, void *arg) {
    silent_service_t *silent = arg;
    int copy = atomic_fetch_add(&silent->copies, 1);
    if (copy < SILENT_HELD_MAX && (silent->held[copy] = lz_server_defer(request))) return LZ_SERVER_DEFERRED;
    *reply = lz_value_string("not held back");
    return LZ_EAGAIN;
}

// A cancelled acquire is not sent again: a retry (zmq.request_retries)
// sent after the cancel's release of its owner id would park, or be
// granted the lock, after that release, holding the lock for nobody.
LZ_TEST(cancelled_acquire_is_not_resent) {
    char timeout[64];
    int request_ms = 600 * LZ_TEST_SLOWDOWN;
    snprintf(timeout, sizeof timeout, "zmq.request_timeout=%d", request_ms);
    lz_context_t *ctx = LZ_TEST_CONTEXT("zmq.linger=0", "zmq.request_retries=2", timeout); // a retry every 200 ms
    silent_service_t silent = {.copies = 0};
    lz_server_t *server = lz_server_new(ctx, "tcp://127.0.0.1:*");
    LZ_CHECK_INT(lz_server_on(server, "acquire_lock", silent_acquire, &silent), LZ_OK);
    LZ_CHECK_INT(lz_server_start(server), LZ_OK);
    lz_lock_t *lock = lz_lock_new(ctx, lz_node_endpoint(lz_server_node(server)), "silent", 30000);
    waiter_t w = {.given = lock, .wait_ms = 0, .rc = 1}; // one request: its retries within request_ms
    LZ_CHECK_INT(pthread_create(&w.thread, NULL, wait_for_lock, &w), 0);
    LZ_TEST_WAIT_UNTIL(atomic_load(&silent.copies) == 1, 5000 * LZ_TEST_SLOWDOWN);
    cancel_acquirer(&w, stop_server, server);
    LZ_CHECK_INT(w.rc, LZ_ECLOSED);
    lz_test_sleep_ms(request_ms + 100 * LZ_TEST_SLOWDOWN); // past the request's end: its retries would have gone
    LZ_CHECK_INT(atomic_load(&silent.copies), 1);
    lz_lock_destroy(&lock); // its release: an unknown action, an error reply
    lz_server_stop(server); // answers the copies held back
    for (int i = 0; i < SILENT_HELD_MAX; i++)
        if (silent.held[i]) lz_server_reply_error(&silent.held[i], LZ_ECLOSED, NULL); // frees the handle
    lz_server_destroy(&server);
    lz_context_destroy(&ctx);
}

// A lock service's grant that comes only after delay_ms, saying "waited":
// false as ours does for a free lock granted at once.
static int slow_acquire(const lz_message_t *request, lz_value_t **reply, void *arg) {
    lz_test_sleep_ms(*(const int *)arg);
    const char *owner = lz_value_find_string(lz_message_value(request), "lock_id", "");
    *reply = lz_value_object();
    int rc = lz_value_object_set_bool(*reply, "acquired", true);
    if (rc == LZ_OK) rc = lz_value_object_set_string(*reply, "lock_id", owner);
    return rc == LZ_OK ? lz_value_object_set_bool(*reply, "waited", false) : rc;
}

// A free lock granted at once to lz_lock_acquire (its request carries
// wait_ms) is counted from the request, as lz_lock_try_acquire's is, not
// from the grant's arrival: our service says "waited": false in such a
// grant, never in one after a wait nor to a request that could not wait.
LZ_TEST(grant_made_at_once_is_counted_from_the_request) {
    fixture_t f = start_service(0);
    lz_client_t *client = lz_client_new(f.ctx, f.endpoint);
    lz_value_t *reply = NULL;
    LZ_CHECK_INT(ask(client, "acquire_lock", ACQUIRE_AS("w", "o1", ",\"wait_ms\":1000"), &reply), LZ_OK);
    LZ_CHECK(flag(reply, "acquired") && lz_value_type(lz_value_get(reply, "waited")) == LZ_VALUE_BOOL &&
             !flag(reply, "waited"));
    lz_value_destroy(&reply);
    LZ_CHECK_INT(ask(client, "acquire_lock", ACQUIRE_AS("w", "o1", ), &reply), LZ_OK); // its owner's, no wait_ms
    LZ_CHECK(flag(reply, "acquired") && lz_value_get(reply, "waited") == NULL);
    lz_value_destroy(&reply);
    outcome_t parked;
    ask_later(client, "acquire_lock", ACQUIRE_AS("w", "o2", ",\"wait_ms\":4000"), &parked);
    LZ_TEST_WAIT_UNTIL(waiters(f.service) == 1, 2000 * LZ_TEST_SLOWDOWN);
    LZ_CHECK_INT(ask(client, "release_lock", RELEASE_AS("w", "o1"), NULL), LZ_OK);
    LZ_TEST_WAIT_UNTIL(atomic_load(&parked.done), 2000 * LZ_TEST_SLOWDOWN);
    LZ_CHECK(flag(parked.reply, "acquired") && lz_value_get(parked.reply, "waited") == NULL); // the guide's grant
    lz_value_destroy(&parked.reply);
    lz_client_destroy(&client);
    stop_service(&f);
    // The client: a grant that took delay_ms to come is counted from the request.
    lz_context_t *ctx = lz_test_pattern_context(2);
    int delay_ms = 300 * LZ_TEST_SLOWDOWN, ttl_ms = 500 * LZ_TEST_SLOWDOWN;
    lz_server_t *server = lz_server_new(ctx, "tcp://127.0.0.1:*");
    LZ_CHECK_INT(lz_server_on(server, "acquire_lock", slow_acquire, &delay_ms), LZ_OK);
    LZ_CHECK_INT(lz_server_start(server), LZ_OK);
    lz_lock_t *lock = lz_lock_new(ctx, lz_node_endpoint(lz_server_node(server)), "slow", ttl_ms);
    int64_t t0 = lz_test_now_ms();
    LZ_CHECK_INT(lz_lock_acquire(lock, 5000 * LZ_TEST_SLOWDOWN), LZ_OK);
    LZ_CHECK(lz_test_now_ms() - t0 >= delay_ms);
    int64_t counted_end = t0 + ttl_ms + 50 * LZ_TEST_SLOWDOWN; // from the grant's arrival: delay_ms later
    if (counted_end > lz_test_now_ms()) lz_test_sleep_ms((int)(counted_end - lz_test_now_ms()));
    LZ_CHECK(!lz_lock_held(lock));
    lz_lock_destroy(&lock); // its release: an unknown action, an error reply
    lz_server_destroy(&server);
    lz_context_destroy(&ctx);
}

/* ---- watching it ---------------------------------------------------------- */

#define STAT_FIELDS(X)                                                                                               \
    X(locks_held) X(waiters) X(grants_total) X(handovers_total) X(releases_total) X(expiries_total) X(refusals_total) \
        X(taken_back_total) X(table_full_total)

// stats_are checks service's numbers against want, every field exactly.
static void stats_are(lz_lock_service_t *service, lz_lock_stats_t want) {
    lz_lock_stats_t got;
    LZ_CHECK_INT(lz_lock_service_stats(service, &got), LZ_OK);
#define STAT_SAME(field)                                                                                             \
    if (got.field != want.field) fprintf(stderr, #field " is %llu, expected %llu\n", (unsigned long long)got.field, \
                                         (unsigned long long)want.field);                                            \
    LZ_CHECK(got.field == want.field);
    STAT_FIELDS(STAT_SAME)
#undef STAT_SAME
}

// Each counter moves on its event, and on nothing else.
LZ_TEST(stats_count_each_event) {
    fixture_t f = start_service(2);
    lz_client_t *client = lz_client_new(f.ctx, f.endpoint), *gone = lz_client_new(f.ctx, f.endpoint);
    lz_value_t *reply = NULL;
    stats_are(f.service, (lz_lock_stats_t){0});
    LZ_CHECK_INT(ask(client, "acquire_lock", ACQUIRE_AS("a", "o1", ), NULL), LZ_OK); // a grant
    LZ_CHECK_INT(ask(client, "acquire_lock", ACQUIRE_AS("a", "o1", ), NULL), LZ_OK); // its owner's repeat: none
    LZ_CHECK_INT(ask(client, "acquire_lock", ACQUIRE_AS("a", "o2", ), NULL), LZ_OK); // a refusal
    stats_are(f.service, (lz_lock_stats_t){.locks_held = 1, .grants_total = 1, .refusals_total = 1});
    outcome_t parked, late, ghost;
    ask_later(client, "acquire_lock", ACQUIRE_AS("a", "o3", ",\"wait_ms\":4000"), &parked);
    lz_test_sleep_ms(100 * LZ_TEST_SLOWDOWN);
    stats_are(f.service, (lz_lock_stats_t){.locks_held = 1, .waiters = 1, .grants_total = 1, .refusals_total = 1});
    LZ_CHECK_INT(ask(client, "release_lock", RELEASE_AS("a", "o1"), NULL), LZ_OK); // a release, a handover to o3
    LZ_TEST_WAIT_UNTIL(atomic_load(&parked.done), 2000 * LZ_TEST_SLOWDOWN);
    LZ_CHECK(flag(parked.reply, "acquired"));
    char short_lease[128]; // long enough to be held at the next check, however slow the build
    snprintf(short_lease, sizeof short_lease, ACQUIRE_AS("b", "e", ",\"timeout\":%.1f"), 0.3 * LZ_TEST_SLOWDOWN);
    LZ_CHECK_INT(ask(client, "acquire_lock", short_lease, NULL), LZ_OK);
    LZ_CHECK_INT(ask(client, "acquire_lock", ACQUIRE_AS("c", "x", ), &reply), LZ_EREMOTE); // the table is full
    LZ_CHECK_STR(lz_value_find_string(reply, "code", NULL), "LZ_EAGAIN");
    lz_value_destroy(&reply);
    stats_are(f.service, (lz_lock_stats_t){.locks_held = 2, .grants_total = 3, .handovers_total = 1,
                                           .releases_total = 1, .refusals_total = 1, .table_full_total = 1});
    lz_test_sleep_ms(400 * LZ_TEST_SLOWDOWN); // b runs out
    ask_later(client, "acquire_lock", ACQUIRE_AS("a", "o4", ",\"wait_ms\":50"), &late); // refused when its wait ends
    LZ_TEST_WAIT_UNTIL(atomic_load(&late.done), 2000 * LZ_TEST_SLOWDOWN);
    LZ_CHECK(late.status == LZ_OK && !flag(late.reply, "acquired"));
    stats_are(f.service, (lz_lock_stats_t){.locks_held = 1, .grants_total = 3, .handovers_total = 1,
                                           .releases_total = 1, .expiries_total = 1, .refusals_total = 2,
                                           .table_full_total = 1});
    // A waiter whose client is gone: its handover reaches nobody and is taken back.
    ask_later(gone, "acquire_lock", ACQUIRE_AS("a", "gone", ",\"wait_ms\":9000"), &ghost);
    lz_test_sleep_ms(100 * LZ_TEST_SLOWDOWN);
    lz_client_destroy(&gone);
    lz_test_sleep_ms(100 * LZ_TEST_SLOWDOWN); // the server sees its connection close (else the grant goes out)
    LZ_CHECK_INT(ask(client, "release_lock", RELEASE_AS("a", "o3"), NULL), LZ_OK);
    lz_lock_stats_t now = {0};
    LZ_TEST_WAIT_UNTIL(lz_lock_service_stats(f.service, &now) == LZ_OK && now.taken_back_total == 1,
                       2000 * LZ_TEST_SLOWDOWN);
    stats_are(f.service, (lz_lock_stats_t){.grants_total = 4, .handovers_total = 2, .releases_total = 2,
                                           .expiries_total = 1, .refusals_total = 2, .taken_back_total = 1,
                                           .table_full_total = 1});
    LZ_CHECK_INT(lz_lock_service_stats(NULL, &now), LZ_EINVAL);
    LZ_CHECK_INT(lz_lock_service_stats(f.service, NULL), LZ_EINVAL);
    outcome_t *all[] = {&parked, &late, &ghost};
    for (size_t i = 0; i < 3; i++) lz_value_destroy(&all[i]->reply);
    lz_client_destroy(&client);
    stop_service(&f);
}

// occurrences counts needle in text.
static int occurrences(const char *text, const char *needle) {
    int n = 0;
    for (const char *at = text; (at = strstr(at, needle)); at += strlen(needle)) n++;
    return n;
}

// has_series: whether text has the sample `family{node="<node>",id="<any
// id>"} value` (node as escaped in the scrape).
static bool has_series(const char *text, const char *family, const char *node, const char *value) {
    char prefix[160];
    snprintf(prefix, sizeof prefix, "\n%s{node=\"%s\",id=\"", family, node);
    size_t value_len = strlen(value);
    for (const char *at = text; (at = strstr(at, prefix)); at++) {
        const char *end = at + strlen(prefix) + strspn(at + strlen(prefix), "0123456789");
        if (strncmp(end, "\"} ", 3) == 0 && strncmp(end + 3, value, value_len) == 0 && end[3 + value_len] == '\n')
            return true;
    }
    return false;
}

// lock_series counts the lock families' samples of node.
static int lock_series(const char *text, const char *node) {
    char needle[96];
    snprintf(needle, sizeof needle, "{node=\"%s\",id=\"", node);
    int n = 0;
    for (const char *line = text; line && *line; line = strchr(line, '\n') ? strchr(line, '\n') + 1 : NULL) {
        const char *end = strchr(line, '\n');
        const char *hit = strstr(line, needle);
        n += strncmp(line, "liberzmq_lock_", 14) == 0 && hit && (!end || hit < end);
    }
    return n;
}

// start_named serves locks on ctx from a server named name.
static fixture_t start_named(lz_context_t *ctx, const char *name) {
    fixture_t f = {.ctx = ctx, .server = lz_server_new(ctx, "tcp://127.0.0.1:*")};
    LZ_CHECK(f.server != NULL);
    LZ_CHECK_INT(lz_node_set_name(lz_server_node(f.server), name), LZ_OK);
    f.service = lz_lock_service_attach(f.server, 0);
    LZ_CHECK(f.service != NULL);
    LZ_CHECK_INT(lz_server_start(f.server), LZ_OK);
    f.endpoint = lz_node_endpoint(lz_server_node(f.server));
    return f;
}

typedef struct {
    lz_context_t *ctx;
    atomic_bool stop;
    atomic_int scrapes;
} scraper_t;

static void *scrape_until_stopped(void *arg) {
    scraper_t *s = arg;
    while (!atomic_load(&s->stop)) {
        char *text = lz_context_prometheus(s->ctx);
        LZ_CHECK(text != NULL);
        free(text);
        atomic_fetch_add(&s->scrapes, 1);
    }
    return NULL;
}

// The scrape has each lock service's series, a family's HELP and TYPE
// once however many services; a destroyed service's series are gone, even
// with scrapes running meanwhile.
LZ_TEST(stats_in_the_prometheus_scrape) {
    lz_context_t *ctx = lz_test_pattern_context(4);
    fixture_t east = start_named(ctx, "locks \"east\""), west = start_named(ctx, "west");
    lz_lock_t *a = new_lock(&east, "a", 10000);
    LZ_CHECK_INT(lz_lock_try_acquire(a), LZ_OK);
    char *text = lz_context_prometheus(ctx);
    LZ_CHECK(text != NULL);
    LZ_CHECK_INT(occurrences(text, "# HELP liberzmq_lock_held Locks a lock service holds now.\n"), 1);
    LZ_CHECK_INT(occurrences(text, "# TYPE liberzmq_lock_held gauge\n"), 1);
    LZ_CHECK_INT(occurrences(text, "# TYPE liberzmq_lock_waiters gauge\n"), 1);
    const char *counters[] = {"grants", "handovers", "releases", "expiries", "refusals", "taken_back", "table_full"};
    char line[128];
    for (size_t i = 0; i < sizeof counters / sizeof counters[0]; i++) {
        snprintf(line, sizeof line, "# TYPE liberzmq_lock_%s_total counter\n", counters[i]);
        LZ_CHECK_INT(occurrences(text, line), 1);
        snprintf(line, sizeof line, "# HELP liberzmq_lock_%s_total ", counters[i]);
        LZ_CHECK_INT(occurrences(text, line), 1);
    }
    LZ_CHECK(has_series(text, "liberzmq_lock_held", "locks \\\"east\\\"", "1"));
    LZ_CHECK(has_series(text, "liberzmq_lock_held", "west", "0"));
    LZ_CHECK(has_series(text, "liberzmq_lock_grants_total", "locks \\\"east\\\"", "1"));
    LZ_CHECK(has_series(text, "liberzmq_lock_releases_total", "locks \\\"east\\\"", "0"));
    LZ_CHECK_INT(lock_series(text, "west"), 9);
    free(text);
    lz_lock_destroy(&a);
    scraper_t scraper = {.ctx = ctx};
    pthread_t thread;
    pthread_create(&thread, NULL, scrape_until_stopped, &scraper);
    LZ_TEST_WAIT_UNTIL(atomic_load(&scraper.scrapes) > 0, 2000 * LZ_TEST_SLOWDOWN);
    east.ctx = NULL; // both fixtures share ctx: destroyed once, below
    stop_service(&east);
    text = lz_context_prometheus(ctx);
    LZ_CHECK(text != NULL && strstr(text, "east") == NULL);
    LZ_CHECK(has_series(text, "liberzmq_lock_releases_total", "west", "0"));
    free(text);
    west.ctx = NULL;
    stop_service(&west);
    atomic_store(&scraper.stop, true);
    pthread_join(thread, NULL);
    text = lz_context_prometheus(ctx);
    LZ_CHECK(text != NULL && strstr(text, "liberzmq_lock_") == NULL);
    free(text);
    lz_context_destroy(&ctx);
}

LZ_TEST_MAIN(LZ_CASE(one_holder_at_a_time), LZ_CASE(threads_exclude_each_other), LZ_CASE(release_by_wrong_owner_refused),
             LZ_CASE(expiry_lets_the_next_owner_in), LZ_CASE(renew_extends_the_lease),
             LZ_CASE(try_acquire_and_bounded_wait), LZ_CASE(acquire_waits_for_release_and_for_lease_end),
             LZ_CASE(malformed_requests_get_error_replies), LZ_CASE(table_is_bounded), LZ_CASE(destroy_releases),
             LZ_CASE(no_lock_service), LZ_CASE(destroy_after_an_unanswered_acquire_is_prompt),
             LZ_CASE(reloaded_request_timeout_holds_for_locks),
             LZ_CASE(python_peer), LZ_CASE(waiter_gets_the_lock_at_release),
             LZ_CASE(waiters_are_served_in_order), LZ_CASE(lease_end_hands_over), LZ_CASE(waiter_times_out),
             LZ_CASE(stop_answers_waiters), LZ_CASE(waiters_are_capped_and_joined),
             LZ_CASE(gone_waiter_is_skipped), LZ_CASE(grant_to_a_full_queue_is_taken_back),
             LZ_CASE(retries_join_past_the_cap), LZ_CASE(retried_wait_keeps_its_end),
             LZ_CASE(shortened_lease_hands_over_at_its_new_end), LZ_CASE(stopped_waiter_is_skipped_after_restart),
             LZ_CASE(stopped_waiters_leave_room_after_restart), LZ_CASE(stopped_waiter_is_not_refused),
             LZ_CASE(stop_ends_the_waiters_count),
             LZ_CASE(polls_a_service_that_does_not_park), LZ_CASE(unsettled_wait_is_released),
             LZ_CASE(cancel_ends_a_wait), LZ_CASE(cancel_ends_a_direct_wait),
             LZ_CASE(cancel_racing_a_grant_leaves_the_lock_free),
             LZ_CASE(cancel_before_acquire), LZ_CASE(grant_after_cancel_is_given_back),
             LZ_CASE(unanswered_acquire_is_released_after_destroy),
             LZ_CASE(cancelled_acquire_is_not_resent), LZ_CASE(grant_made_at_once_is_counted_from_the_request),
             LZ_CASE(stats_count_each_event), LZ_CASE(stats_in_the_prometheus_scrape))

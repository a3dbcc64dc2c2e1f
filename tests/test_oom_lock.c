/* The lock service out of memory: an owner's repeated acquire (its
 * client's retry, after the first copy's grant) whose reply cannot be
 * built gets an error reply, and the lease stays: its client may hold it
 * from the first copy's reply, so taking it back would give the lock to
 * the next owner while it is still held. */
#include "lz_test.h"
#include "lz_oom.h"

#define REPEAT_TIMEOUT_MS 300 // a repeat whose request the server's threads dropped ends then

static const char *const spared[] = {"libzmq.so", "libstdc++.so", NULL};

typedef struct {
    lz_context_t *ctx;
    lz_server_t *server;
    lz_lock_service_t *service;
    lz_client_t *client;
} rig_t;

// ask sends action with data as JSON and returns whether the reply's key is true.
static bool ask(rig_t *r, const char *action, const char *json, const char *key, int timeout_ms, int *rc) {
    lz_value_t *data = lz_value_from_json(json, strlen(json)), *reply = NULL;
    LZ_CHECK(data != NULL);
    *rc = lz_client_request(r->client, action, data, &reply, timeout_ms);
    bool yes = *rc == LZ_OK && lz_value_get_bool(lz_value_get(reply, key));
    lz_value_destroy(&data);
    lz_value_destroy(&reply);
    return yes;
}

#define OWNED "{\"lock_name\":\"kept\",\"lock_id\":\"owner\",\"timeout\":30}"

// setup_grant: the first copy's grant, then a restart of the server (the
// lease stays), so the repeat is handled on fresh threads: their caches of
// values empty, every value its reply needs is an allocation that fails.
static void setup_grant(void *arg) {
    rig_t *r = arg;
    int rc;
    LZ_CHECK(ask(r, "acquire_lock", OWNED, "acquired", 3000, &rc));
    LZ_CHECK_INT(lz_server_stop(r->server), LZ_OK);
    LZ_CHECK_INT(lz_server_start(r->server), LZ_OK);
    LZ_TEST_WAIT_UNTIL(lz_test_metrics(lz_server_node(r->server)).active_connections > 0, 3000);
}

static int run_repeat(void *arg) { // the repeat, with the server's threads out of memory in turn
    int rc;
    ask(arg, "acquire_lock", OWNED, "acquired", REPEAT_TIMEOUT_MS, &rc);
    return rc;
}

static void judge_lease_kept(void *arg, const lz_oom_run_t *run) {
    int rc;
    bool held = ask(arg, "lock_status", "{\"lock_name\":\"kept\"}", "held", 3000, &rc);
    if (!held) fprintf(stderr, "  the repeat (%s: %s) ended the lease\n", lz_error_name(run->rc), run->detail);
    LZ_CHECK(held);
}

static void teardown_release(void *arg) {
    int rc;
    ask(arg, "release_lock", "{\"lock_name\":\"kept\",\"lock_id\":\"owner\"}", "released", 3000, &rc);
}

LZ_TEST(failed_repeat_keeps_the_lease) {
    rig_t r = {.ctx = LZ_TEST_CONTEXT("zmq.linger=0", "zmq.request_retries=0", "zmq.handler_max_concurrency=1")};
    r.server = lz_server_new(r.ctx, "tcp://127.0.0.1:*");
    LZ_CHECK((r.service = lz_lock_service_attach(r.server, 0)) != NULL);
    LZ_CHECK_INT(lz_server_start(r.server), LZ_OK);
    r.client = lz_client_new(r.ctx, lz_node_endpoint(lz_server_node(r.server)));
    LZ_CHECK(r.client != NULL);
    lz_oom_sweep(&(lz_oom_sweep_t){.name = "repeated acquire", .setup = setup_grant, .run = run_repeat,
                                   .judge = judge_lease_kept, .teardown = teardown_release, .arg = &r,
                                   .threads = true, .spared = spared, .warm_runs = 2, .leaks_elsewhere = true,
                                   .limit = 400});
    lz_client_destroy(&r.client);
    lz_server_destroy(&r.server);
    lz_lock_service_destroy(&r.service);
    lz_context_destroy(&r.ctx);
}

LZ_TEST_MAIN(LZ_CASE(failed_repeat_keeps_the_lease))

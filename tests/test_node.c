/* Node behaviour common to every pattern: a node gives its inproc names
 * back when it closes, so a constructor that fails part way through its
 * endpoint list, or a node destroyed, leaves the name free for the next
 * node at once (libzmq alone frees it later, on its reaper thread). */
#include "lz_test.h"

// Enough rounds that libzmq's reaper thread, which frees a closed socket's
// inproc names, loses the race in every run when the node leaves it the
// job (a third of the rounds or more failed so), few enough that the
// closed sockets it has yet to end stay far below zmq.max_sockets and the
// open-file limit.
#define ROUNDS 100

// A later endpoint that libzmq refuses (an unknown transport) and one that
// liberzmq refuses before libzmq sees it (a port out of range).
static const char *const bad_endpoints[] = {"@nonsense://x", "@tcp://127.0.0.1:99999"};

// Closed sockets count against zmq.max_sockets until the reaper ends
// them, which a loaded machine delays: room for every round's.
static lz_context_t *quiet_context(void) {
    return LZ_TEST_CONTEXT("zmq.linger=0", "zmq.max_sockets=4096", "logging.level=off");
}

// retry_after_failure makes, ROUNDS times, a puller with "@inproc,<bad>",
// which must fail, then at once one with the same inproc name followed by
// retry_suffix ("" or a good endpoint), which must succeed.
static void retry_after_failure(const char *bad, const char *retry_suffix) {
    lz_context_t *ctx = quiet_context();
    if (!ctx) return;
    int refused = 0, retried = 0;
    for (int i = 0; i < ROUNDS; i++) {
        char inproc[96], failing[160], retry[160];
        lz_test_inproc_endpoint(inproc, sizeof inproc);
        snprintf(failing, sizeof failing, "@%s,%s", inproc, bad);
        snprintf(retry, sizeof retry, "@%s%s", inproc, retry_suffix);
        lz_pull_t *pull = lz_pull_new(ctx, failing);
        refused += pull == NULL;
        lz_pull_destroy(&pull);
        pull = lz_pull_new(ctx, retry);
        if (!pull && retried == i) fprintf(stderr, "round %d: %s: %s\n", i, retry, lz_last_error());
        retried += pull != NULL;
        lz_pull_destroy(&pull);
    }
    LZ_CHECK_INT(refused, ROUNDS);
    LZ_CHECK_INT(retried, ROUNDS);
    lz_context_destroy(&ctx);
}

LZ_TEST(node_failed_constructor_frees_its_inproc_names) {
    for (size_t i = 0; i < sizeof bad_endpoints / sizeof *bad_endpoints; i++) retry_after_failure(bad_endpoints[i], "");
}

LZ_TEST(node_failed_constructor_retried_with_the_endpoint_fixed) {
    retry_after_failure(bad_endpoints[0], ",@tcp://127.0.0.1:*");
}

// The usual restart: destroy a node, make it again under the same name.
LZ_TEST(node_destroyed_frees_its_inproc_names_at_once) {
    lz_context_t *ctx = quiet_context();
    if (!ctx) return;
    int made = 0;
    for (int i = 0; i < ROUNDS; i++) {
        char inproc[96];
        lz_test_inproc_endpoint(inproc, sizeof inproc);
        lz_pub_t *pub = lz_pub_new(ctx, inproc);
        LZ_CHECK(pub != NULL);
        lz_pub_destroy(&pub);
        pub = lz_pub_new(ctx, inproc);
        made += pub != NULL;
        lz_pub_destroy(&pub);
    }
    LZ_CHECK_INT(made, ROUNDS);
    lz_context_destroy(&ctx);
}

// An object of several nodes: the proxy's frontend bound, its backend
// refused, the frontend's name free again when lz_proxy_new returns.
LZ_TEST(node_failed_proxy_frees_its_frontend_name) {
    lz_context_t *ctx = quiet_context();
    if (!ctx) return;
    int refused = 0, made = 0, rounds = ROUNDS / 2; // a proxy makes about ten sockets
    for (int i = 0; i < rounds; i++) {
        char front[96], back[96];
        lz_test_inproc_endpoint(front, sizeof front);
        lz_test_inproc_endpoint(back, sizeof back);
        lz_proxy_t *proxy = lz_proxy_new(ctx, LZ_PROXY_QUEUE, front, "nonsense://x", NULL);
        refused += proxy == NULL;
        lz_proxy_destroy(&proxy);
        proxy = lz_proxy_new(ctx, LZ_PROXY_QUEUE, front, back, NULL);
        made += proxy != NULL;
        lz_proxy_destroy(&proxy);
    }
    LZ_CHECK_INT(refused, rounds);
    LZ_CHECK_INT(made, rounds);
    lz_context_destroy(&ctx);
}

LZ_TEST_MAIN(LZ_CASE(node_failed_constructor_frees_its_inproc_names),
             LZ_CASE(node_failed_constructor_retried_with_the_endpoint_fixed),
             LZ_CASE(node_destroyed_frees_its_inproc_names_at_once), LZ_CASE(node_failed_proxy_frees_its_frontend_name))

/* A distributed lock and why it hands out fencing tokens: a lock service on
 * a server, two workers with lock objects, and a store that refuses writes
 * carrying a token older than one it has seen. Worker A stalls past its
 * lease (as after a long GC pause); B gets the lock; A's late write is
 * refused by the store, not silently applied.
 * Usage: distributed_lock [endpoint, default tcp://127.0.0.1:5560]. */
#include <inttypes.h>
#include <stdio.h>

#include "liberzmq.h"

// The store: it keeps the largest token it has seen and refuses older ones.
static int64_t store_token;
static const char *store_value = "(empty)";

static void store_write(const char *who, int64_t token, const char *value) {
    if (token < store_token) {
        printf("store refused %s's write: token %" PRId64 " < %" PRId64 "\n", who, token, store_token);
        return;
    }
    store_token = token;
    store_value = value;
    printf("store accepted %s's write '%s' (token %" PRId64 ")\n", who, value, token);
}

static int run(lz_context_t *ctx, const char *endpoint) {
    lz_lock_t *a = lz_lock_new(ctx, endpoint, "report.csv", 1000); // a 1 s lease, to keep the demo short
    lz_lock_t *b = lz_lock_new(ctx, endpoint, "report.csv", 5000);
    if (!a || !b || lz_lock_acquire(a, 2000) != LZ_OK) {
        fprintf(stderr, "distributed_lock: %s\n", lz_last_error());
        lz_lock_destroy(&a);
        lz_lock_destroy(&b);
        return 1;
    }
    int64_t token_a = lz_lock_fencing_token(a);
    printf("A holds the lock, token %" PRId64 "\n", token_a);
    printf("B try_acquire: %s\n", lz_error_name(lz_lock_try_acquire(b)));
    // A stalls past its lease without knowing it, while B waits in the
    // service's queue: the lease ends and the lock passes to B.
    if (lz_lock_acquire(b, 5000) == LZ_OK)
        printf("B holds the lock after A's lease ended, token %" PRId64 "\n", lz_lock_fencing_token(b));
    store_write("B", lz_lock_fencing_token(b), "B's report");
    store_write("A", token_a, "A's stale report"); // A wakes up and writes
    printf("A renew: %s (%s)\n", lz_error_name(lz_lock_renew(a)), lz_last_error());
    lz_lock_release(b);
    printf("store holds: %s\n", store_value);
    lz_lock_destroy(&a);
    lz_lock_destroy(&b);
    return 0;
}

int main(int argc, char **argv) {
    const char *endpoint = argc > 1 && *argv[1] ? argv[1] : "tcp://127.0.0.1:5560";
    lz_context_t *ctx = lz_context_new(NULL);
    lz_server_t *server = ctx ? lz_server_new(ctx, endpoint) : NULL;
    lz_lock_service_t *service = server ? lz_lock_service_attach(server, 0) : NULL;
    if (!service || lz_server_start(server) != LZ_OK) {
        fprintf(stderr, "distributed_lock: %s\n", lz_last_error());
        lz_server_destroy(&server);
        lz_lock_service_destroy(&service);
        lz_context_destroy(&ctx);
        return 1;
    }
    int status = run(ctx, lz_node_endpoint(lz_server_node(server)));
    lz_server_destroy(&server); // before the service: its handlers use it
    lz_lock_service_destroy(&service);
    lz_context_destroy(&ctx);
    return status;
}

/* Asynchronous dealer/router in one process: a router thread answers by
 * identity while a dealer keeps many requests in flight and gets each
 * answer in a callback; finally the router pushes to the dealer by name
 * and shows what happens for a name nobody has. */
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <unistd.h>

#include "liberzmq.h"
#include "liberzmq/dealer.h"

#define REQUESTS 10

static void *router_main(void *arg) {
    lz_router_t *router = arg;
    for (int i = 0; i < REQUESTS; i++) {
        lz_router_request_t *request = lz_router_recv(router, 5000);
        if (!request) break;
        size_t size;
        const char *who = lz_router_request_identity(request, &size);
        lz_value_t *reply = lz_value_object();
        lz_value_object_set_int(reply, "square", lz_value_get_int(lz_router_request_value(request)) *
                                                     lz_value_get_int(lz_router_request_value(request)));
        printf("router: %.*s asked (request %s)\n", (int)size, who, lz_router_request_id(request));
        lz_router_reply(router, request, reply);
        lz_value_destroy(&reply);
        lz_router_request_destroy(&request);
    }
    return NULL;
}

static atomic_int answered;

static void on_reply(int status, const lz_value_t *reply, void *arg) {
    if (status == LZ_OK) printf("dealer: %d squared is %lld\n", (int)(intptr_t)arg, (long long)lz_value_find_int(reply, "square", -1));
    else printf("dealer: request %d failed: %s\n", (int)(intptr_t)arg, lz_strerror(status));
    atomic_fetch_add(&answered, 1);
}

int main(void) {
    lz_context_t *ctx = lz_context_new(NULL);
    lz_router_t *router = ctx ? lz_router_new(ctx, "tcp://127.0.0.1:*") : NULL;
    lz_dealer_t *dealer = router ? lz_dealer_new(ctx, lz_node_endpoint(lz_router_node(router)), "worker-1") : NULL;
    if (!dealer) {
        fprintf(stderr, "async_dealer_router: %s\n", lz_last_error());
        return 1;
    }
    pthread_t thread;
    pthread_create(&thread, NULL, router_main, router);
    for (int i = 0; i < REQUESTS; i++) { // all in flight at once
        lz_value_t *v = lz_value_int(i);
        lz_dealer_send(dealer, v, 3000, on_reply, (void *)(intptr_t)i, NULL);
        lz_value_destroy(&v);
    }
    for (int i = 0; i < 300 && atomic_load(&answered) < REQUESTS; i++) usleep(10000);
    pthread_join(thread, NULL);
    lz_value_t *note = lz_value_string("bye");
    printf("push to worker-1: %s\n", lz_strerror(lz_router_send(router, "worker-1", 8, "note", note)));
    printf("push to nobody:   %s\n", lz_strerror(lz_router_send(router, "nobody", 6, "note", note)));
    lz_value_destroy(&note);
    lz_dealer_destroy(&dealer);
    lz_router_destroy(&router);
    lz_context_destroy(&ctx);
    return 0;
}

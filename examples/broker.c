/* A broker: the queue proxy between many clients (frontend) and many
 * servers (backend). Run as `broker FRONTEND BACKEND` to serve until
 * Ctrl-C, or without arguments for a self-contained demo with two
 * servers behind it and one client in front. */
#include <signal.h>
#include <stdio.h>
#include <unistd.h>

#include "liberzmq.h"
#include "liberzmq/proxy.h"

static volatile sig_atomic_t stop;
static void on_signal(int sig) { stop = 1; }

static int whoami(const lz_message_t *request, lz_value_t **reply, void *arg) {
    *reply = lz_value_string(arg);
    return 0;
}

static int demo(lz_context_t *ctx, lz_proxy_t *proxy) {
    char backend[300];
    snprintf(backend, sizeof backend, ">%s", lz_node_endpoint(lz_proxy_backend(proxy))); // servers connect
    lz_server_t *a = lz_server_new(ctx, backend), *b = lz_server_new(ctx, backend);
    lz_server_on(a, "whoami", whoami, "server A");
    lz_server_on(b, "whoami", whoami, "server B");
    lz_server_start(a);
    lz_server_start(b);
    usleep(100000); // let both servers connect, so requests spread
    lz_client_t *client = lz_client_new(ctx, lz_node_endpoint(lz_proxy_frontend(proxy)));
    for (int i = 0; i < 6; i++) {
        lz_value_t *reply = NULL;
        if (lz_client_request(client, "whoami", NULL, &reply, 2000) == LZ_OK)
            printf("request %d answered by %s\n", i, lz_value_get_string(reply, NULL));
        else
            printf("request %d failed: %s\n", i, lz_last_error());
        lz_value_destroy(&reply);
    }
    lz_client_destroy(&client);
    lz_server_destroy(&a);
    lz_server_destroy(&b);
    return 0;
}

int main(int argc, char **argv) {
    bool serve = argc > 2;
    lz_context_t *ctx = lz_context_new(NULL);
    lz_proxy_t *proxy = ctx ? lz_proxy_new(ctx, LZ_PROXY_QUEUE, serve ? argv[1] : "tcp://127.0.0.1:*",
                                           serve ? argv[2] : "tcp://127.0.0.1:*", NULL)
                            : NULL;
    if (!proxy || lz_proxy_start(proxy) != LZ_OK) {
        fprintf(stderr, "broker: %s\n", lz_last_error());
        lz_proxy_destroy(&proxy);
        lz_context_destroy(&ctx);
        return 1;
    }
    int rc = 0;
    if (serve) {
        signal(SIGINT, on_signal);
        signal(SIGTERM, on_signal);
        printf("broker: clients -> %s, servers -> %s\n", argv[1], argv[2]);
        while (!stop) pause();
    } else {
        rc = demo(ctx, proxy);
    }
    lz_proxy_destroy(&proxy);
    lz_context_destroy(&ctx);
    return rc;
}

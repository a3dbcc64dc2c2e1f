/* Proxies: a forwarder passes publications down and subscriptions up; a
 * queue joins clients to several servers (a broker); capture sees the
 * traffic; pause holds it, resume releases it, stop ends the thread. */
#include <zmq.h>

#include "lz_test.h"
#include "liberzmq/proxy.h"

static lz_context_t *new_context(void) {
    lz_config_t *config = lz_config_new();
    lz_config_set_int(config, "zmq.linger", 0);
    if (getenv("LZ_DEBUG")) lz_config_set(config, "logging.level", "DEBUG");
    lz_context_t *ctx = lz_context_new(config);
    lz_config_destroy(&config);
    return ctx;
}

static int whoami(const lz_message_t *request, lz_value_t **reply, void *arg) {
    *reply = lz_value_string(arg);
    return 0;
}

LZ_TEST(forwarder_passes_subscriptions_up) {
    lz_context_t *ctx = new_context();
    void *capture = zmq_socket(lz_context_zmq(ctx), ZMQ_SUB);
    lz_proxy_t *proxy = lz_proxy_new(ctx, LZ_PROXY_FORWARDER, "tcp://127.0.0.1:*", "tcp://127.0.0.1:*",
                                     "tcp://127.0.0.1:*");
    LZ_CHECK(proxy != NULL);
    LZ_CHECK_INT(lz_proxy_start(proxy), 0);
    LZ_CHECK_INT(lz_proxy_start(proxy), LZ_ESTATE);
    zmq_setsockopt(capture, ZMQ_SUBSCRIBE, "", 0);
    zmq_connect(capture, lz_node_endpoint(lz_proxy_capture(proxy)));
    char frontend[256];
    snprintf(frontend, sizeof frontend, ">%s", lz_node_endpoint(lz_proxy_frontend(proxy)));
    lz_pub_t *pub = lz_pub_new(ctx, frontend);
    LZ_CHECK(pub != NULL);
    lz_sub_t *sub = lz_sub_new(ctx, lz_node_endpoint(lz_proxy_backend(proxy)));
    lz_sub_subscribe(sub, "news");
    lz_message_t *msg = NULL;
    lz_value_t *v = lz_value_int(1);
    for (int i = 0; i < 200 && !msg; i++) { // until the subscription has reached the publisher
        lz_pub_publish(pub, "weather", v);
        lz_pub_publish(pub, "news", v);
        msg = lz_sub_recv(sub, 10);
    }
    LZ_CHECK(msg != NULL);
    LZ_CHECK_STR(lz_message_topic(msg), "news");
    lz_message_destroy(&msg);
    char buf[64];
    int timeout = 1000;
    zmq_setsockopt(capture, ZMQ_RCVTIMEO, &timeout, sizeof timeout);
    LZ_CHECK(zmq_recv(capture, buf, sizeof buf, 0) >= 0);
    lz_value_destroy(&v);
    LZ_CHECK_INT(lz_proxy_stop(proxy), 0);
    LZ_CHECK_INT(lz_proxy_pause(proxy), LZ_ESTATE);
    zmq_close(capture);
    lz_sub_destroy(&sub);
    lz_pub_destroy(&pub);
    lz_proxy_destroy(&proxy);
    LZ_CHECK(proxy == NULL);
    lz_context_destroy(&ctx);
}

// A broker: clients connect to the queue's frontend, servers connect to
// its backend; requests spread over both servers; pause holds them.
LZ_TEST(queue_is_a_broker) {
    lz_context_t *ctx = new_context();
    lz_proxy_t *proxy = lz_proxy_new(ctx, LZ_PROXY_QUEUE, "tcp://127.0.0.1:*", "tcp://127.0.0.1:*", NULL);
    LZ_CHECK(proxy && lz_proxy_capture(proxy) == NULL);
    lz_proxy_start(proxy);
    char backend[256];
    snprintf(backend, sizeof backend, ">%s", lz_node_endpoint(lz_proxy_backend(proxy)));
    lz_server_t *a = lz_server_new(ctx, backend), *b = lz_server_new(ctx, backend);
    lz_server_on(a, "who", whoami, "a");
    lz_server_on(b, "who", whoami, "b");
    lz_server_start(a);
    lz_server_start(b);
    lz_client_t *client = lz_client_new(ctx, lz_node_endpoint(lz_proxy_frontend(proxy)));
    lz_test_sleep_ms(100); // both servers connected, so the queue spreads over both
    int count_a = 0, ok = 0;
    for (int i = 0; i < 20; i++) {
        lz_value_t *reply = NULL;
        ok += lz_client_request(client, "who", NULL, &reply, 2000) == 0;
        count_a += strcmp(lz_value_get_string(reply, NULL) ? lz_value_get_string(reply, NULL) : "", "a") == 0;
        lz_value_destroy(&reply);
    }
    LZ_CHECK_INT(ok, 20);
    LZ_CHECK(count_a > 0 && count_a < 20);
    LZ_CHECK_INT(lz_proxy_pause(proxy), 0);
    lz_client_set_retries(client, 0);
    lz_value_t *reply = NULL;
    LZ_CHECK_INT(lz_client_request(client, "who", NULL, &reply, 200), LZ_ETIMEOUT);
    LZ_CHECK_INT(lz_proxy_resume(proxy), 0);
    LZ_CHECK_INT(lz_client_request(client, "who", NULL, &reply, 2000), 0);
    lz_value_destroy(&reply);
    lz_client_destroy(&client);
    lz_proxy_destroy(&proxy); // stops the running proxy
    lz_server_destroy(&a);
    lz_server_destroy(&b);
    LZ_CHECK(lz_proxy_new(ctx, (lz_proxy_kind_t)9, "tcp://127.0.0.1:*", "tcp://127.0.0.1:*", NULL) == NULL);
    lz_context_destroy(&ctx);
}

LZ_TEST_MAIN(LZ_CASE(forwarder_passes_subscriptions_up), LZ_CASE(queue_is_a_broker))

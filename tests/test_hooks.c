/* Node hooks ("middleware"): send hooks refuse what a publisher, pusher,
 * client, dealer or pair would send, in order, with the hook's reason and
 * code; receive hooks drop what subscribers, pullers, routers and pairs
 * would deliver and answer a refused request with an error reply; NULL
 * arguments. */
#include <inttypes.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>

#include "lz_test.h"

// A hook's record: how often it ran, in which order among hooks.
typedef struct {
    atomic_int calls;
    atomic_int *clock; // shared by the hooks of one test: the order they ran in
    int ran_at;
    const char *refuse; // the key it refuses
    int code;           // what it returns when it does
    lz_node_t *node;    // the node it was added to
} hook_t;

static int hook_check(lz_node_t *node, const char *key, hook_t *h) {
    atomic_fetch_add(&h->calls, 1);
    if (h->clock) h->ran_at = atomic_fetch_add(h->clock, 1);
    if (node != h->node) return lz_set_error(LZ_EINVAL, "the hook got another node");
    if (!h->refuse || strcmp(key, h->refuse) != 0) return 0;
    return h->code == LZ_EVALIDATION ? lz_set_error(LZ_EVALIDATION, "no %s here", key) : h->code;
}

static int on_send(lz_node_t *node, const char *key, const lz_value_t *value, void *arg) {
    (void)value;
    return hook_check(node, key, arg);
}

static int on_receive(lz_node_t *node, const lz_message_t *msg, void *arg) {
    return hook_check(node, lz_message_topic(msg), arg);
}

// odd_refused: a receive hook that refuses data {"n": odd}.
static int odd_refused(lz_node_t *node, const lz_message_t *msg, void *arg) {
    (void)node;
    (void)arg;
    int64_t n = lz_value_find_int(lz_message_value(msg), "n", 0);
    return n % 2 ? lz_set_error(LZ_EVALIDATION, "%" PRId64 " is odd", n) : 0;
}

static lz_value_t *number(int64_t n) {
    lz_value_t *v = lz_value_object();
    LZ_CHECK_INT(lz_value_object_set_int(v, "n", n), LZ_OK);
    return v;
}

// push_to_new_pull makes *pull, bound on a free port, and a pusher
// connected to it (NULL, checked, when either cannot be made).
static lz_push_t *push_to_new_pull(lz_context_t *ctx, lz_pull_t **pull) {
    *pull = lz_pull_new(ctx, "tcp://127.0.0.1:*");
    lz_push_t *push = *pull ? lz_push_new(ctx, lz_node_endpoint(lz_pull_node(*pull))) : NULL;
    LZ_CHECK(push != NULL);
    return push;
}

LZ_TEST(send_hooks_refuse_in_order) {
    lz_context_t *ctx = lz_test_pattern_context(0);
    lz_pub_t *pub = lz_pub_new(ctx, "tcp://127.0.0.1:*");
    lz_sub_t *sub = pub ? lz_sub_new(ctx, lz_node_endpoint(lz_pub_node(pub))) : NULL;
    LZ_CHECK(sub != NULL);
    if (sub) {
        atomic_int clock = 0;
        hook_t first = {.clock = &clock, .refuse = "secret", .code = LZ_EVALIDATION, .node = lz_pub_node(pub)};
        hook_t second = {.clock = &clock, .refuse = "hidden", .code = LZ_ENOTFOUND, .node = lz_pub_node(pub)};
        LZ_CHECK_INT(lz_node_on_send(lz_pub_node(pub), on_send, &first), LZ_OK);
        LZ_CHECK_INT(lz_node_on_send(lz_pub_node(pub), on_send, &second), LZ_OK);
        LZ_CHECK_INT(lz_sub_subscribe(sub, ""), LZ_OK);
        lz_test_sub_joined(pub, sub, "sync");
        atomic_store(&clock, 0); // the hooks counted the joining's messages
        atomic_store(&first.calls, 0);
        atomic_store(&second.calls, 0);
        lz_metrics_t joined = lz_test_metrics(lz_pub_node(pub));
        lz_value_t *v = number(1);
        LZ_CHECK_INT(lz_pub_publish(pub, "open", v), LZ_OK);
        LZ_CHECK_INT(first.ran_at, 0);
        LZ_CHECK_INT(second.ran_at, 1);
        LZ_CHECK_INT(lz_pub_publish(pub, "secret", v), LZ_EVALIDATION);
        LZ_CHECK_STR(lz_last_error(), "pub: 'secret' refused: no secret here");
        LZ_CHECK_INT(atomic_load(&second.calls), 1); // the first refusal ends the walk
        LZ_CHECK_INT(lz_pub_publish(pub, "hidden", v), LZ_ENOTFOUND); // a hook's own code
        LZ_CHECK_STR(lz_last_error(), "pub: 'hidden' refused: not found");
        LZ_CHECK_INT(lz_pub_publish(pub, "last", v), LZ_OK);
        lz_value_destroy(&v);
        // Only what the hooks let through was sent.
        lz_message_t *msg = lz_sub_recv(sub, 5000);
        LZ_CHECK_STR(lz_message_topic(msg), "open");
        lz_message_destroy(&msg);
        msg = lz_sub_recv(sub, 5000);
        LZ_CHECK_STR(lz_message_topic(msg), "last");
        lz_message_destroy(&msg);
        lz_metrics_t m = lz_test_metrics(lz_pub_node(pub));
        LZ_CHECK_INT(m.messages_sent - joined.messages_sent, 2);
        LZ_CHECK_INT(m.errors - joined.errors, 2);
    }
    lz_sub_destroy(&sub);
    lz_pub_destroy(&pub);
    lz_context_destroy(&ctx);
}

LZ_TEST(pullers_drop_what_receive_hooks_refuse) {
    lz_context_t *ctx = lz_test_pattern_context(0);
    lz_pull_t *pull = NULL;
    lz_push_t *push = push_to_new_pull(ctx, &pull);
    if (push) {
        hook_t typed = {.refuse = "default", .code = 1, .node = lz_push_node(push)};
        LZ_CHECK_INT(lz_node_on_send(lz_push_node(push), on_send, &typed), LZ_OK);
        LZ_CHECK_INT(lz_node_on_receive(lz_pull_node(pull), odd_refused, NULL), LZ_OK);
        lz_value_t *v = number(0);
        LZ_CHECK_INT(lz_push_send(push, NULL, v, 0), LZ_EVALIDATION); // NULL type is "default"; 1 is LZ_EVALIDATION
        LZ_CHECK_STR(lz_last_error(), "push: 'default' refused: validation error");
        lz_value_destroy(&v);
        for (int n = 0; n < 6; n++) {
            v = number(n);
            LZ_CHECK_INT(lz_push_send(push, "count", v, 0), LZ_OK);
            lz_value_destroy(&v);
        }
        // lz_pull_recv hands out the even ones only.
        for (int n = 0; n < 6; n += 2) {
            lz_message_t *msg = lz_pull_recv(pull, 5000);
            LZ_CHECK_INT(lz_value_find_int(lz_message_value(msg), "n", -1), n);
            lz_message_destroy(&msg);
        }
        LZ_CHECK(lz_pull_recv(pull, 50) == NULL);
        LZ_CHECK_INT(lz_test_metrics(lz_pull_node(pull)).inbound_dropped, 3);
        // The bytes forms decode nothing and run no hook.
        LZ_CHECK_INT(lz_push_send_bytes(push, "{\"n\": 1}", 8), LZ_OK);
        char buf[16];
        size_t size = sizeof buf;
        LZ_CHECK_INT(lz_pull_recv_bytes(pull, buf, &size, 5000), LZ_OK);
        LZ_CHECK_INT(size, 8);
    }
    lz_push_destroy(&push);
    lz_pull_destroy(&pull);
    lz_context_destroy(&ctx);
}

// destroy_own_pull: a receive hook that tries to destroy its puller and
// records whether that was refused.
typedef struct {
    lz_pull_t **pull_p;
    bool refused;
} hook_destroy_t;

static int destroy_own_pull(lz_node_t *node, const lz_message_t *msg, void *arg) {
    (void)node;
    (void)msg;
    hook_destroy_t *hd = arg;
    lz_pull_destroy(hd->pull_p);
    hd->refused = *hd->pull_p && lz_last_error_code() == LZ_ESTATE && strstr(lz_last_error(), "lz_pull_destroy");
    return 0;
}

// In lz_pull_recv the receive hooks run on the caller's thread, as the
// puller's: a destroy from one is refused as from a handler. Before, it
// freed the puller under the receive that ran the hook.
LZ_TEST(a_destroy_from_a_receive_hook_is_refused) {
    lz_context_t *ctx = lz_test_pattern_context(0);
    lz_pull_t *pull = NULL;
    lz_push_t *push = push_to_new_pull(ctx, &pull);
    hook_destroy_t hd = {.pull_p = &pull};
    if (push) {
        LZ_CHECK_INT(lz_node_on_receive(lz_pull_node(pull), destroy_own_pull, &hd), LZ_OK);
        LZ_CHECK_INT(lz_push_send(push, "job", NULL, 0), LZ_OK);
        lz_message_t *msg = lz_pull_recv(pull, 5000);
        LZ_CHECK(msg != NULL);
        LZ_CHECK_STR(lz_message_type(msg), "job");
        lz_message_destroy(&msg);
        LZ_CHECK(hd.refused);
        LZ_CHECK(pull != NULL);
    }
    lz_push_destroy(&push);
    lz_pull_destroy(&pull);
    LZ_CHECK(pull == NULL);
    lz_context_destroy(&ctx);
}

// A receive hook that waits at a gate until the test opens it.
typedef struct {
    atomic_bool in_hook, open;
} hook_gate_t;

static int wait_at_gate(lz_node_t *node, const lz_message_t *msg, void *arg) {
    (void)node;
    (void)msg;
    hook_gate_t *g = arg;
    atomic_store(&g->in_hook, true);
    while (!atomic_load(&g->open)) lz_test_sleep_ms(1);
    return 0;
}

// A receive on one thread and the destroy on another.
typedef struct {
    lz_pull_t *pull;
    lz_message_t *msg;
    atomic_bool returned;
} pull_call_t;

static void *receive_one(void *arg) {
    pull_call_t *c = arg;
    c->msg = lz_pull_recv(c->pull, 5000);
    return NULL;
}

static void *destroy_pull(void *arg) {
    pull_call_t *c = arg;
    lz_pull_destroy(&c->pull);
    atomic_store(&c->returned, true);
    return NULL;
}

// A destroy on another thread while lz_pull_recv runs a receive hook waits
// for the receive to return: the hook and the receive's loop still read
// the puller. Before, the destroy went ahead once the message was read
// (ASan: use-after-free when the hook returned).
LZ_TEST(a_destroy_waits_for_a_receive_in_its_hook) {
    lz_context_t *ctx = lz_test_pattern_context(0);
    lz_pull_t *pull = NULL;
    lz_push_t *push = push_to_new_pull(ctx, &pull);
    if (push) {
        hook_gate_t gate = {false, false};
        LZ_CHECK_INT(lz_node_on_receive(lz_pull_node(pull), wait_at_gate, &gate), LZ_OK);
        LZ_CHECK_INT(lz_push_send(push, "job", NULL, 0), LZ_OK);
        pull_call_t call = {.pull = pull};
        pthread_t receiver, destroyer;
        LZ_CHECK_INT(pthread_create(&receiver, NULL, receive_one, &call), 0);
        LZ_TEST_WAIT_UNTIL(atomic_load(&gate.in_hook), 5000);
        LZ_CHECK_INT(pthread_create(&destroyer, NULL, destroy_pull, &call), 0);
        lz_test_sleep_ms(100);
        LZ_CHECK(!atomic_load(&call.returned)); // it waits for the receive in the hook
        atomic_store(&gate.open, true);
        pthread_join(receiver, NULL);
        pthread_join(destroyer, NULL);
        LZ_CHECK(call.msg != NULL); // the hook took it
        LZ_CHECK(call.pull == NULL);
        lz_message_destroy(&call.msg);
    }
    lz_push_destroy(&push);
    lz_context_destroy(&ctx);
}

LZ_TEST(handlers_see_only_what_hooks_take) {
    lz_context_t *ctx = lz_test_pattern_context(0);
    lz_pub_t *pub = lz_pub_new(ctx, "tcp://127.0.0.1:*");
    lz_sub_t *sub = pub ? lz_sub_new(ctx, lz_node_endpoint(lz_pub_node(pub))) : NULL;
    LZ_CHECK(sub != NULL);
    if (sub) {
        atomic_int handled = 0;
        LZ_CHECK_INT(lz_node_on_receive(lz_sub_node(sub), odd_refused, NULL), LZ_OK);
        LZ_CHECK_INT(lz_sub_on(sub, "n", lz_test_count_handler, &handled), LZ_OK);
        LZ_CHECK_INT(lz_sub_subscribe(sub, "sync"), LZ_OK);
        lz_test_sub_joined(pub, sub, "sync"); // null data: the hook takes it
        uint64_t joined = lz_test_metrics(lz_sub_node(sub)).messages_received;
        LZ_CHECK_INT(lz_sub_start(sub), LZ_OK);
        for (int n = 0; n < 10; n++) {
            lz_value_t *v = number(n);
            LZ_CHECK_INT(lz_pub_publish(pub, "n", v), LZ_OK);
            lz_value_destroy(&v);
        }
        LZ_TEST_WAIT_UNTIL(lz_test_metrics(lz_sub_node(sub)).messages_received - joined == 10, 5000);
        LZ_TEST_WAIT_UNTIL(atomic_load(&handled) == 5, 5000);
        lz_sub_stop(sub);
        LZ_CHECK_INT(atomic_load(&handled), 5);
        LZ_CHECK_INT(lz_test_metrics(lz_sub_node(sub)).inbound_dropped, 5);
    }
    lz_sub_destroy(&sub);
    lz_pub_destroy(&pub);
    lz_context_destroy(&ctx);
}

static int add(const lz_message_t *request, lz_value_t **reply, void *arg) {
    (void)arg;
    *reply = lz_value_int(lz_value_find_int(lz_message_value(request), "n", 0) + 1);
    return LZ_OK;
}

LZ_TEST(servers_answer_a_refused_request) {
    lz_context_t *ctx = lz_test_pattern_context(0);
    lz_server_t *server = lz_server_new(ctx, "tcp://127.0.0.1:*");
    lz_client_t *client = server ? lz_client_new(ctx, lz_node_endpoint(lz_server_node(server))) : NULL;
    LZ_CHECK(client != NULL);
    if (client) {
        hook_t no_drop = {.refuse = "drop", .code = LZ_EVALIDATION, .node = lz_client_node(client)};
        LZ_CHECK_INT(lz_node_on_send(lz_client_node(client), on_send, &no_drop), LZ_OK);
        LZ_CHECK_INT(lz_node_on_receive(lz_server_node(server), odd_refused, NULL), LZ_OK);
        LZ_CHECK_INT(lz_server_on(server, "add", add, NULL), LZ_OK);
        LZ_CHECK_INT(lz_server_start(server), LZ_OK);
        lz_value_t *v = number(2), *reply = NULL;
        LZ_CHECK_INT(lz_client_request(client, "add", v, &reply, 3000), LZ_OK);
        LZ_CHECK_INT(lz_value_get_int(reply), 3);
        lz_value_destroy(&reply);
        lz_value_destroy(&v);
        v = number(3);
        LZ_CHECK_INT(lz_client_request(client, "add", v, &reply, 3000), LZ_EREMOTE);
        LZ_CHECK_STR(lz_value_find_string(reply, "code", ""), "LZ_EVALIDATION");
        LZ_CHECK_STR(lz_value_find_string(reply, "message", ""), "'add' refused: 3 is odd");
        lz_value_destroy(&reply);
        // The client's own hook refuses before anything is sent.
        uint64_t sent = lz_test_metrics(lz_client_node(client)).messages_sent;
        LZ_CHECK_INT(lz_client_request(client, "drop", v, &reply, 3000), LZ_EVALIDATION);
        LZ_CHECK_STR(lz_last_error(), "client: 'drop' refused: no drop here");
        LZ_CHECK(reply == NULL);
        LZ_CHECK_INT(lz_test_metrics(lz_client_node(client)).messages_sent, sent);
        lz_value_destroy(&v);
        // Health checks pass through: ping is answered, not hooked.
        LZ_CHECK_INT(lz_client_request(client, "ping", NULL, &reply, 3000), LZ_OK);
        lz_value_destroy(&reply);
        LZ_CHECK_INT(atomic_load(&no_drop.calls), 4);
    }
    lz_client_destroy(&client);
    lz_server_destroy(&server);
    lz_context_destroy(&ctx);
}

LZ_TEST(pairs_hook_both_ways) {
    lz_context_t *ctx = lz_test_pattern_context(0);
    lz_pair_t *a = NULL, *b = NULL;
    LZ_CHECK_INT(lz_pair_pipe(ctx, &a, &b), LZ_OK);
    if (a && b) {
        hook_t empty = {.refuse = "", .code = LZ_EAGAIN, .node = lz_pair_node(a)};
        LZ_CHECK_INT(lz_node_on_send(lz_pair_node(a), on_send, &empty), LZ_OK);
        lz_value_t *v = number(1);
        LZ_CHECK_INT(lz_pair_send(a, v), LZ_EAGAIN); // key "" for a pair
        LZ_CHECK_INT(lz_pair_send(b, v), LZ_OK);
        lz_value_destroy(&v);
        lz_message_t *msg = lz_pair_recv(a, 5000);
        LZ_CHECK_INT(lz_value_find_int(lz_message_value(msg), "n", -1), 1);
        lz_message_destroy(&msg);
        LZ_CHECK_INT(lz_node_on_receive(lz_pair_node(a), odd_refused, NULL), LZ_OK);
        for (int n = 1; n <= 2; n++) {
            v = number(n);
            LZ_CHECK_INT(lz_pair_send(b, v), LZ_OK);
            lz_value_destroy(&v);
        }
        msg = lz_pair_recv(a, 5000); // 1 is refused on the way
        LZ_CHECK_INT(lz_value_find_int(lz_message_value(msg), "n", -1), 2);
        lz_message_destroy(&msg);
        LZ_CHECK_INT(lz_test_metrics(lz_pair_node(a)).inbound_dropped, 1);
    }
    lz_pair_destroy(&a);
    lz_pair_destroy(&b);
    lz_context_destroy(&ctx);
}

// request_id_seen: a receive hook that records the request id it saw.
static int request_id_seen(lz_node_t *node, const lz_message_t *msg, void *arg) {
    (void)node;
    snprintf(arg, 37, "%s", lz_message_id(msg));
    return 0;
}

LZ_TEST(dealers_and_routers_hook_their_requests) {
    lz_context_t *ctx = lz_test_pattern_context(0);
    lz_router_t *router = lz_router_new(ctx, "tcp://127.0.0.1:*");
    lz_dealer_t *dealer = router ? lz_dealer_new(ctx, lz_node_endpoint(lz_router_node(router)), NULL) : NULL;
    LZ_CHECK(dealer != NULL);
    if (dealer) {
        hook_t empty = {.refuse = "", .code = LZ_EVALIDATION, .node = lz_dealer_node(dealer)};
        LZ_CHECK_INT(lz_node_on_send(lz_dealer_node(dealer), on_send, &empty), LZ_OK);
        lz_value_t *v = number(2);
        LZ_CHECK_INT(lz_dealer_send(dealer, v, 1000, NULL, NULL, NULL), LZ_EVALIDATION); // key "" for a dealer
        LZ_CHECK_STR(lz_last_error(), "dealer: '' refused: no  here");
        LZ_CHECK_INT(lz_test_metrics(lz_dealer_node(dealer)).messages_sent, 0);
        lz_value_destroy(&v);
        empty.refuse = NULL;
        char seen[37] = "", sent[37] = "";
        LZ_CHECK_INT(lz_node_on_receive(lz_router_node(router), odd_refused, NULL), LZ_OK);
        LZ_CHECK_INT(lz_node_on_receive(lz_router_node(router), request_id_seen, seen), LZ_OK);
        for (int n = 1; n <= 2; n++) {
            v = number(n);
            LZ_CHECK_INT(lz_dealer_send(dealer, v, 1000, NULL, NULL, sent), LZ_OK);
            lz_value_destroy(&v);
        }
        lz_router_request_t *request = lz_router_recv(router, 5000); // 1 is refused on the way
        LZ_CHECK_INT(lz_value_find_int(lz_router_request_value(request), "n", -1), 2);
        LZ_CHECK_STR(seen, sent); // the hook sees the request id as the message id
        lz_router_request_destroy(&request);
        LZ_CHECK_INT(lz_test_metrics(lz_router_node(router)).inbound_dropped, 1);
        LZ_CHECK(lz_router_recv(router, 100) == NULL); // a refusal does not restart the wait
        LZ_CHECK_INT(lz_last_error_code(), LZ_ETIMEOUT);
    }
    lz_dealer_destroy(&dealer);
    lz_router_destroy(&router);
    lz_context_destroy(&ctx);
}

static const char user_schema[] = "{\"type\": \"object\", \"required\": [\"id\"],"
                                  " \"properties\": {\"id\": {\"type\": \"integer\", \"minimum\": 1}}}";

static int publish_json(lz_pub_t *pub, const char *topic, const char *json) {
    lz_value_t *v = lz_value_from_json(json, strlen(json));
    int rc = lz_pub_publish(pub, topic, v);
    lz_value_destroy(&v);
    return rc;
}

LZ_TEST(schemas_check_what_is_sent_and_received) {
    lz_schema_t *user = lz_schema_from_json(user_schema, strlen(user_schema));
    LZ_CHECK(user != NULL);
    lz_context_t *ctx = lz_test_pattern_context(0);
    lz_pub_t *checked = lz_pub_new(ctx, "tcp://127.0.0.1:*"), *plain = lz_pub_new(ctx, "tcp://127.0.0.1:*");
    lz_sub_t *sub = checked && plain ? lz_sub_new(ctx, lz_node_endpoint(lz_pub_node(plain))) : NULL;
    LZ_CHECK(sub != NULL);
    if (sub && user) {
        LZ_CHECK_INT(lz_node_set_schema(lz_pub_node(checked), "user", user), LZ_OK);
        LZ_CHECK_INT(publish_json(checked, "user", "{\"id\": 7}"), LZ_OK);
        LZ_CHECK_INT(publish_json(checked, "user", "{\"id\": 0}"), LZ_EVALIDATION);
        LZ_CHECK_STR(lz_last_error(), "pub: 'user' refused: $.id: 0 is less than the minimum 1");
        LZ_CHECK_INT(lz_pub_publish(checked, "user", NULL), LZ_EVALIDATION); // NULL data is null
        LZ_CHECK_STR(lz_last_error(), "pub: 'user' refused: $: expected object, got null");
        LZ_CHECK_INT(publish_json(checked, "users", "0"), LZ_OK); // another key: no schema
        // A subscriber drops what does not conform, from any publisher.
        LZ_CHECK_INT(lz_node_set_schema(lz_sub_node(sub), "user", user), LZ_OK);
        LZ_CHECK_INT(lz_sub_subscribe(sub, "user"), LZ_OK);
        LZ_CHECK_INT(lz_sub_subscribe(sub, "sync"), LZ_OK);
        lz_test_sub_joined(plain, sub, "sync"); // no schema for "sync"
        LZ_CHECK_INT(publish_json(plain, "user", "{\"name\": \"no id\"}"), LZ_OK);
        LZ_CHECK_INT(publish_json(plain, "user", "{\"id\": 3}"), LZ_OK);
        lz_message_t *msg = lz_sub_recv(sub, 5000);
        LZ_CHECK_INT(lz_value_find_int(lz_message_value(msg), "id", -1), 3);
        lz_message_destroy(&msg);
        LZ_CHECK_INT(lz_test_metrics(lz_sub_node(sub)).inbound_dropped, 1);
    }
    lz_sub_destroy(&sub);
    lz_pub_destroy(&plain);
    lz_pub_destroy(&checked);
    lz_context_destroy(&ctx);
    lz_schema_destroy(&user);
}

LZ_TEST(schemas_answer_a_request_that_does_not_conform) {
    static const char add_schema[] = "{\"type\": \"object\", \"required\": [\"a\", \"b\"],"
                                     " \"properties\": {\"a\": {\"type\": \"number\"}, \"b\": {\"type\": \"number\"}}}";
    lz_schema_t *schema = lz_schema_from_json(add_schema, strlen(add_schema));
    lz_schema_t *anything = lz_schema_from_json("true", 4), *nothing = lz_schema_from_json("false", 5);
    lz_context_t *ctx = lz_test_pattern_context(0);
    lz_server_t *server = lz_server_new(ctx, "tcp://127.0.0.1:*");
    lz_client_t *client = server ? lz_client_new(ctx, lz_node_endpoint(lz_server_node(server))) : NULL;
    LZ_CHECK(client && schema && anything && nothing);
    if (client && schema && anything && nothing) {
        LZ_CHECK_INT(lz_node_set_schema(lz_server_node(server), NULL, nothing), LZ_OK); // other actions: none pass
        LZ_CHECK_INT(lz_node_set_schema(lz_server_node(server), "add", anything), LZ_OK);
        LZ_CHECK_INT(lz_node_set_schema(lz_server_node(server), "add", schema), LZ_OK); // replaces
        LZ_CHECK_INT(lz_server_on(server, "add", add, NULL), LZ_OK);
        LZ_CHECK_INT(lz_server_on(server, "other", add, NULL), LZ_OK);
        LZ_CHECK_INT(lz_server_start(server), LZ_OK);
        lz_value_t *v = lz_value_from_json("{\"a\": 1}", 8), *reply = NULL;
        LZ_CHECK_INT(lz_client_request(client, "add", v, &reply, 3000), LZ_EREMOTE);
        LZ_CHECK_STR(lz_value_find_string(reply, "code", ""), "LZ_EVALIDATION");
        LZ_CHECK_STR(lz_value_find_string(reply, "message", ""), "'add' refused: $: missing required property 'b'");
        lz_value_destroy(&reply);
        LZ_CHECK_INT(lz_client_request(client, "other", v, &reply, 3000), LZ_EREMOTE);
        LZ_CHECK_STR(lz_value_find_string(reply, "message", ""), "'other' refused: $: not allowed here (the schema is false)");
        lz_value_destroy(&reply);
        lz_value_destroy(&v);
        v = lz_value_from_json("{\"a\": 1, \"b\": 2.5}", 18);
        LZ_CHECK_INT(lz_client_request(client, "add", v, &reply, 3000), LZ_OK);
        lz_value_destroy(&reply);
        lz_value_destroy(&v);
    }
    lz_client_destroy(&client);
    lz_server_destroy(&server);
    lz_context_destroy(&ctx);
    lz_schema_destroy(&schema);
    lz_schema_destroy(&anything);
    lz_schema_destroy(&nothing);
}

LZ_TEST(hook_arguments_are_checked) {
    LZ_CHECK_INT(lz_node_on_send(NULL, on_send, NULL), LZ_EINVAL);
    LZ_CHECK_INT(lz_node_on_receive(NULL, on_receive, NULL), LZ_EINVAL);
    lz_context_t *ctx = lz_test_pattern_context(0);
    lz_pub_t *pub = lz_pub_new(ctx, NULL);
    LZ_CHECK_INT(lz_node_on_send(lz_pub_node(pub), NULL, NULL), LZ_EINVAL);
    LZ_CHECK_INT(lz_node_on_receive(lz_pub_node(pub), NULL, NULL), LZ_EINVAL);
    LZ_CHECK_INT(lz_node_set_schema(lz_pub_node(pub), "x", NULL), LZ_EINVAL);
    LZ_CHECK_INT(lz_node_set_schema(NULL, "x", NULL), LZ_EINVAL);
    lz_pub_destroy(&pub);
    lz_context_destroy(&ctx);
}

LZ_TEST_MAIN(LZ_CASE(send_hooks_refuse_in_order), LZ_CASE(pullers_drop_what_receive_hooks_refuse),
             LZ_CASE(a_destroy_from_a_receive_hook_is_refused), LZ_CASE(a_destroy_waits_for_a_receive_in_its_hook),
             LZ_CASE(handlers_see_only_what_hooks_take), LZ_CASE(servers_answer_a_refused_request),
             LZ_CASE(pairs_hook_both_ways), LZ_CASE(dealers_and_routers_hook_their_requests),
             LZ_CASE(schemas_check_what_is_sent_and_received),
             LZ_CASE(schemas_answer_a_request_that_does_not_conform), LZ_CASE(hook_arguments_are_checked))

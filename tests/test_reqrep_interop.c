/* Wire compatibility with the Python LiberZMQ v1.0.0 (docs/protocol.md):
 * its REQ Client against our server, our client against its REP Server,
 * our dealer against its Router, its Dealer against our router. The
 * Python side is pyzmq writing the frames by hand (tests/interop). */
#include <pthread.h>

#include "lz_test.h"
#include "liberzmq/dealer.h"

static lz_context_t *new_context(void) { return LZ_TEST_CONTEXT("zmq.linger=0"); }

static int echo(const lz_message_t *request, lz_value_t **reply, void *arg) {
    *reply = lz_value_copy(lz_message_value(request));
    return 0;
}

// add takes {"a", "b"} or, from Python's call("add", a, b), {"args": [a, b]}:
// the tuple is sent as {"__type__": "tuple", "value": [...]}, which the json
// codec reads back as the array.
static int add(const lz_message_t *request, lz_value_t **reply, void *arg) {
    const lz_value_t *data = lz_message_value(request), *args = lz_value_get(data, "args");
    int64_t a = args ? lz_value_get_int(lz_value_at(args, 0)) : lz_value_find_int(data, "a", 0);
    int64_t b = args ? lz_value_get_int(lz_value_at(args, 1)) : lz_value_find_int(data, "b", 0);
    *reply = lz_value_int(a + b);
    return 0;
}

LZ_TEST(python_client_to_our_server) {
    lz_context_t *ctx = new_context();
    lz_server_t *server = lz_server_new(ctx, "tcp://127.0.0.1:*");
    lz_server_on(server, "echo", echo, NULL);
    lz_server_on(server, "add", add, NULL);
    lz_server_start(server);
    pid_t pid = lz_test_spawn_python("reqrep_peer.py", "client", lz_node_endpoint(lz_server_node(server)));
    LZ_CHECK(pid > 0);
    LZ_CHECK_INT(lz_test_wait(pid, 20000), 0);
    lz_server_destroy(&server);
    lz_context_destroy(&ctx);
}

// A server's schema refuses a Python client's request with the error reply
// of docs/protocol.md section 6, which the Python side reads as any other.
LZ_TEST(python_client_to_our_validated_server) {
    static const char schema_text[] = "{\"type\": \"object\", \"required\": [\"a\", \"b\"]}";
    lz_schema_t *schema = lz_schema_from_json(schema_text, strlen(schema_text));
    lz_context_t *ctx = new_context();
    lz_server_t *server = lz_server_new(ctx, "tcp://127.0.0.1:*");
    LZ_CHECK_INT(lz_node_set_schema(lz_server_node(server), "add", schema), LZ_OK);
    lz_server_on(server, "add", add, NULL);
    lz_server_start(server);
    pid_t pid = lz_test_spawn_python("reqrep_peer.py", "validated-client", lz_node_endpoint(lz_server_node(server)));
    LZ_CHECK(pid > 0);
    LZ_CHECK_INT(lz_test_wait(pid, 20000), 0);
    lz_server_destroy(&server);
    lz_context_destroy(&ctx);
    lz_schema_destroy(&schema);
}

// with_bound_python_peer runs reqrep_peer.py as role, bound on a fresh ipc
// endpoint, lets talk use it from ctx (destroyed here), then expects the
// peer to exit 0. talk may close its socket before that wait: by then the
// peer has sent its last reply.
static void with_bound_python_peer(lz_context_t *ctx, const char *role,
                                   void (*talk)(lz_context_t *ctx, const char *endpoint)) {
    char endpoint[128];
    lz_test_ipc_endpoint(endpoint, sizeof endpoint);
    pid_t pid = lz_test_spawn_python("reqrep_peer.py", role, endpoint);
    LZ_CHECK(pid > 0);
    talk(ctx, endpoint);
    LZ_CHECK_INT(lz_test_wait(pid, 10000), 0);
    lz_context_destroy(&ctx);
}

static void client_talk(lz_context_t *ctx, const char *endpoint) {
    lz_client_t *client = lz_client_new(ctx, endpoint);
    lz_client_set_retries(client, 0); // a REP server must see each request once
    lz_value_t *data = lz_value_object(), *reply = NULL;
    lz_value_object_set_int(data, "a", 2);
    lz_value_object_set_int(data, "b", 40);
    // Bytes travel in the Python serializer's tagged form both ways: the
    // server checks it read bytes, and its echo must come back as bytes.
    lz_value_object_set(data, "blob", lz_value_bytes("\xff\x00\x01", 3));
    LZ_CHECK_INT(lz_client_request(client, "add", data, &reply, 10000), 0); // Python may start slowly
    LZ_CHECK_INT(lz_value_get_int(reply), 42);
    lz_value_destroy(&reply);
    LZ_CHECK_INT(lz_client_request(client, "echo", data, &reply, 5000), 0);
    LZ_CHECK(lz_value_equal(reply, data));
    lz_value_destroy(&reply);
    LZ_CHECK_INT(lz_client_request(client, "nope", data, &reply, 5000), LZ_EREMOTE);
    LZ_CHECK_STR(lz_value_find_string(reply, "request_type", ""), "nope");
    lz_value_destroy(&reply);
    // Async against the same server: the reply is matched by request id.
    LZ_CHECK_INT(lz_client_request(client, "echo", NULL, &reply, 5000), 0);
    LZ_CHECK_INT(lz_value_type(reply), LZ_VALUE_NULL);
    lz_value_destroy(&reply);
    lz_value_destroy(&data);
    lz_client_destroy(&client);
}

LZ_TEST(our_client_to_python_server) { with_bound_python_peer(new_context(), "server", client_talk); }

// With tracing.enabled the same requests carry a W3C traceparent, just
// before "data", which the Python server takes as one more key.
LZ_TEST(our_traced_client_to_python_server) {
    with_bound_python_peer(LZ_TEST_CONTEXT("zmq.linger=0", "tracing.enabled=true"), "traced-server", client_talk);
}

// The dealer keeps its default identity: the Python Router decodes it as
// UTF-8, which libzmq's own binary choice failed.
static void dealer_talk(lz_context_t *ctx, const char *endpoint) {
    lz_dealer_t *dealer = lz_dealer_new(ctx, endpoint, NULL);
    for (int i = 1; i <= 3; i++) {
        lz_value_t *v = lz_value_int(i), *reply = NULL;
        LZ_CHECK_INT(lz_dealer_request(dealer, v, &reply, 10000), 0);
        LZ_CHECK_INT(lz_value_get_int(reply), 2 * i);
        lz_value_destroy(&reply);
        lz_value_destroy(&v);
    }
    lz_dealer_destroy(&dealer);
}

LZ_TEST(our_dealer_to_python_router) { with_bound_python_peer(new_context(), "router", dealer_talk); }

LZ_TEST(python_dealer_to_our_router) {
    lz_context_t *ctx = new_context();
    lz_router_t *router = lz_router_new(ctx, "tcp://127.0.0.1:*");
    pid_t pid = lz_test_spawn_python("reqrep_peer.py", "dealer", lz_node_endpoint(lz_router_node(router)));
    lz_router_request_t *request = lz_router_recv(router, 15000);
    LZ_CHECK(request != NULL);
    size_t size = 0;
    const void *identity = lz_router_request_identity(request, &size);
    LZ_CHECK(size == 9 && memcmp(identity, "dealer-py", 9) == 0);
    LZ_CHECK_STR(lz_router_request_id(request), "dealer-py-1");
    lz_value_t *reply = lz_value_object();
    lz_value_object_set_int(reply, "n", lz_value_find_int(lz_router_request_value(request), "n", 0) * 2);
    lz_value_object_set_string(reply, "from", "dealer-py");
    LZ_CHECK_INT(lz_router_reply(router, request, reply), 0);
    lz_value_destroy(&reply);
    lz_router_request_destroy(&request);
    LZ_CHECK_INT(lz_test_wait(pid, 10000), 0);
    lz_router_destroy(&router);
    lz_context_destroy(&ctx);
}

LZ_TEST_MAIN(LZ_CASE(python_client_to_our_server), LZ_CASE(python_client_to_our_validated_server), LZ_CASE(our_client_to_python_server),
             LZ_CASE(our_traced_client_to_python_server),
             LZ_CASE(our_dealer_to_python_router), LZ_CASE(python_dealer_to_our_router))

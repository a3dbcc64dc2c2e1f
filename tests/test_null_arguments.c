/* Every public function given NULL where it takes a pointer: a call that
 * returns a status fails with a negative code and a detail, a constructor or
 * lookup returns NULL with a detail, a destroy is a no-op, and nothing
 * crashes (the sanitizer build runs this too). First with no object at all,
 * then with real objects and NULL for their other arguments; last, every
 * call that waits given a timeout below -1. */
#include "core/error.h"
#include "lz_test.h"

// fails checks a status call that must be refused with a detail of its
// own (the detail is set to a marker first).
#define fails(call)                                                                                           \
    do {                                                                                                      \
        lz__fail(LZ_EINVAL, "marker");                                                                        \
        int rc_ = (call);                                                                                     \
        bool ok_ = rc_ < 0 && lz_last_error()[0] && strcmp(lz_last_error(), "marker") != 0;                   \
        if (!ok_) fprintf(stderr, "%s:%d: %s gave %d (%s)\n", __FILE__, __LINE__, #call, rc_, lz_last_error()); \
        LZ_CHECK(ok_);                                                                                        \
    } while (0)

// nothing checks a call that must return NULL.
#define nothing(call)                                                                                         \
    do {                                                                                                      \
        if ((call) != NULL) fprintf(stderr, "%s:%d: %s was not NULL\n", __FILE__, __LINE__, #call);           \
        LZ_CHECK((call) == NULL);                                                                             \
    } while (0)

// refused_for_no_endpoint checks a constructor given no endpoint refused it.
static void refused_for_no_endpoint(bool made) {
    LZ_CHECK(!made);
    LZ_CHECK_INT(lz_last_error_code(), LZ_EINVAL);
    LZ_CHECK(strstr(lz_last_error(), "no endpoint") != NULL);
}

static int handler(const lz_message_t *msg, void *arg) {
    (void)msg, (void)arg;
    return 0;
}
static int server_handler(const lz_message_t *request, lz_value_t **reply, void *arg) {
    (void)request, (void)reply, (void)arg;
    return 0;
}
static void client_callback(int status, const lz_value_t *reply, void *arg) { (void)status, (void)reply, (void)arg; }
static void log_callback(lz_log_level_t level, const char *component, const char *message, void *arg) {
    (void)level, (void)component, (void)message, (void)arg;
}

LZ_TEST(no_object_at_all) {
    lz_metrics_t m;
    int64_t i;
    double d;
    bool b;
    const char *s;
    int fd;
    lz_value_t *v = NULL;
    // Destroys of NULL and of a NULL pointer are no-ops.
    lz_config_destroy(NULL), lz_context_destroy(NULL), lz_dealer_destroy(NULL), lz_router_destroy(NULL);
    lz_router_request_destroy(NULL), lz_logger_destroy(NULL), lz_message_destroy(NULL), lz_pair_destroy(NULL);
    lz_proxy_destroy(NULL), lz_pub_destroy(NULL), lz_sub_destroy(NULL), lz_push_destroy(NULL);
    lz_pull_destroy(NULL), lz_server_destroy(NULL), lz_client_destroy(NULL), lz_buffer_destroy(NULL);
    lz_value_destroy(NULL), lz_value_destroy(&v);

    // Configuration and context.
    nothing(lz_config_dup(NULL));
    fails(lz_config_load_file(NULL, "x.yaml"));
    fails(lz_config_load_env(NULL));
    fails(lz_config_set(NULL, "zmq.linger", "1"));
    fails(lz_config_set_int(NULL, "zmq.linger", 1));
    fails(lz_config_set_bool(NULL, "debug", true));
    nothing(lz_config_key_name(NULL));
    LZ_CHECK(!lz_config_key_is_secret(NULL));
    fails(lz_config_get_int(NULL, "zmq.linger", &i));
    fails(lz_config_get_double(NULL, "zmq.linger", &d));
    fails(lz_config_get_bool(NULL, "debug", &b));
    fails(lz_config_get_string(NULL, "logging.level", &s));
    nothing(lz_config_source(NULL, "debug"));
    nothing(lz_config_to_json(NULL));
    nothing(lz_context_config(NULL));
    nothing(lz_context_logger(NULL));
    fails(lz_context_metrics(NULL, &m));
    nothing(lz_context_zmq(NULL));
    fails(lz_context_reload(NULL, NULL));
    fails(lz_context_watch(NULL, "/tmp/x.yaml"));

    // Constructors without a context.
    nothing(lz_dealer_new(NULL, "inproc://x", NULL));
    nothing(lz_router_new(NULL, "inproc://x"));
    nothing(lz_pair_new(NULL, "inproc://x"));
    nothing(lz_proxy_new(NULL, LZ_PROXY_QUEUE, "inproc://a", "inproc://b", NULL));
    nothing(lz_pub_new(NULL, "inproc://x"));
    nothing(lz_sub_new(NULL, "inproc://x"));
    nothing(lz_push_new(NULL, "inproc://x"));
    nothing(lz_pull_new(NULL, "inproc://x"));
    nothing(lz_server_new(NULL, "inproc://x"));
    nothing(lz_client_new(NULL, "inproc://x"));
    lz_pair_t *a = NULL, *bp = NULL;
    fails(lz_pair_pipe(NULL, &a, &bp));

    // Pattern calls without their object.
    nothing(lz_dealer_node(NULL));
    fails(lz_dealer_send(NULL, NULL, 100, NULL, NULL, NULL));
    fails(lz_dealer_request(NULL, NULL, &v, 100));
    nothing(lz_router_node(NULL));
    nothing(lz_router_recv(NULL, 0));
    fails(lz_router_reply(NULL, NULL, NULL));
    fails(lz_router_send(NULL, "id", 2, "r1", NULL));
    nothing(lz_pair_node(NULL));
    fails(lz_pair_send(NULL, NULL));
    fails(lz_pair_send_bytes(NULL, "x", 1));
    nothing(lz_pair_recv(NULL, 0));
    nothing(lz_proxy_frontend(NULL));
    nothing(lz_proxy_backend(NULL));
    nothing(lz_proxy_capture(NULL));
    fails(lz_proxy_start(NULL));
    fails(lz_proxy_pause(NULL));
    fails(lz_proxy_resume(NULL));
    fails(lz_proxy_stop(NULL));
    lz_proxy_stats_t stats;
    fails(lz_proxy_statistics(NULL, &stats));
    nothing(lz_pub_node(NULL));
    fails(lz_pub_publish(NULL, "t", NULL));
    fails(lz_pub_publish_bytes(NULL, "t", "x", 1));
    nothing(lz_sub_node(NULL));
    fails(lz_sub_subscribe(NULL, ""));
    fails(lz_sub_unsubscribe(NULL, ""));
    fails(lz_sub_accept(NULL, LZ_SUB_SINGLE_FRAME));
    fails(lz_sub_on(NULL, "t", handler, NULL));
    fails(lz_sub_on_default(NULL, handler, NULL));
    fails(lz_sub_start(NULL));
    LZ_CHECK_INT(lz_sub_stop(NULL), LZ_OK); // idempotent, like a destroy
    fails(lz_sub_fd(NULL, &fd));
    fails(lz_sub_dispatch(NULL, 0));
    nothing(lz_sub_recv(NULL, 0));
    char bytes[8], topic[8];
    size_t room = sizeof bytes, topic_room = sizeof topic;
    fails(lz_sub_recv_bytes(NULL, topic, &topic_room, bytes, &room, 0));
    nothing(lz_push_node(NULL));
    fails(lz_push_send(NULL, "t", NULL, 0));
    fails(lz_push_send_bytes(NULL, "x", 1));
    nothing(lz_pull_node(NULL));
    fails(lz_pull_on(NULL, "t", handler, NULL));
    fails(lz_pull_on_default(NULL, handler, NULL));
    fails(lz_pull_start(NULL, 1));
    LZ_CHECK_INT(lz_pull_stop(NULL), LZ_OK);
    fails(lz_pull_fd(NULL, &fd));
    fails(lz_pull_dispatch(NULL, 0));
    fails(lz_pull_next_retry_ms(NULL, &fd));
    nothing(lz_pull_recv(NULL, 0));
    fails(lz_pull_recv_bytes(NULL, bytes, &room, 0));
    nothing(lz_server_node(NULL));
    fails(lz_server_on(NULL, "a", server_handler, NULL));
    fails(lz_server_on_default(NULL, server_handler, NULL));
    fails(lz_server_start(NULL));
    fails(lz_server_stop(NULL));
    nothing(lz_client_node(NULL));
    fails(lz_client_set_strategy(NULL, LZ_STRATEGY_ROUND_ROBIN));
    fails(lz_client_set_retries(NULL, 1));
    fails(lz_client_request(NULL, "a", NULL, &v, 100));
    fails(lz_client_request_async(NULL, "a", NULL, 100, client_callback, NULL));
    nothing(lz_lock_service_attach(NULL, 0));
    lz_lock_service_destroy(NULL);
    LZ_CHECK_INT((int)lz_lock_service_count(NULL), 0);
    lz_lock_stats_t lock_stats;
    fails(lz_lock_service_stats(NULL, &lock_stats));
    nothing(lz_lock_new(NULL, "inproc://x", "name", 1000));
    lz_lock_destroy(NULL);
    fails(lz_lock_try_acquire(NULL));
    fails(lz_lock_acquire(NULL, 0));
    fails(lz_lock_renew(NULL));
    fails(lz_lock_release(NULL));
    fails(lz_lock_cancel(NULL));
    LZ_CHECK(!lz_lock_held(NULL));
    LZ_CHECK_INT(lz_lock_fencing_token(NULL), 0);

    // Nodes, messages, requests, logger, metrics.
    fails(lz_node_bind(NULL, "inproc://x"));
    fails(lz_node_connect(NULL, "inproc://x"));
    fails(lz_node_set_serializer(NULL, "json"));
    fails(lz_node_set_name(NULL, "n"));
    fails(lz_node_metrics(NULL, &m));
    nothing(lz_node_zmq_socket(NULL));
    char key[LZ_CURVE_KEY_SIZE];
    fails(lz_node_set_curve_keys(NULL, NULL, NULL));
    fails(lz_node_curve_public_key(NULL, key));
    fails(lz_curve_keypair(NULL, key));
    fails(lz_curve_keypair(key, NULL));
    fails(lz_curve_public_key(NULL, key));
    fails(lz_curve_public_key(key, NULL));
    nothing(lz_context_prometheus(NULL));
    nothing(lz_prometheus_new(NULL, "127.0.0.1:0"));
    fails(lz_prometheus_port(NULL));
    lz_prometheus_destroy(NULL);
    (void)lz_node_endpoint(NULL), (void)lz_node_serializer_name(NULL), (void)lz_node_name(NULL);
    size_t size = 7;
    (void)lz_message_topic(NULL), (void)lz_message_type(NULL), (void)lz_message_id(NULL);
    nothing(lz_message_value(NULL));
    nothing(lz_message_peer_key(NULL));
    nothing(lz_message_envelope(NULL));
    nothing(lz_message_payload(NULL, &size));
    LZ_CHECK(strcmp(lz_message_topic_bytes(NULL, &size), "") == 0 && size == 0); // "" as lz_message_topic
    (void)lz_message_priority(NULL), (void)lz_message_timestamp(NULL), (void)lz_message_has_topic(NULL);
    nothing(lz_router_request_identity(NULL, &size));
    nothing(lz_router_request_value(NULL));
    (void)lz_router_request_id(NULL);
    lz_logger_set_level(NULL, LZ_LOG_DEBUG), lz_logger_set_format(NULL, LZ_LOG_JSON);
    (void)lz_logger_level(NULL);
    fails(lz_logger_to_stderr(NULL));
    fails(lz_logger_to_file(NULL, "/tmp/x.log"));
    fails(lz_logger_to_syslog(NULL, "lz"));
    fails(lz_logger_to_callback(NULL, log_callback, NULL));
    lz_logger_write(NULL, LZ_LOG_ERROR, "c", "%s", "nobody hears this");
    lz_log_level_t level;
    fails(lz_log_level_parse(NULL, &level));
    char json[64];
    fails(lz_metrics_to_json(NULL, json, sizeof json));
    lz_metrics_add(NULL, NULL);

    // Buffers, serializers, values.
    fails(lz_buffer_append(NULL, "x", 1));
    nothing(lz_buffer_reserve(NULL, 8));
    lz_buffer_commit(NULL, 0), lz_buffer_reset(NULL);
    (void)lz_buffer_data(NULL), (void)lz_buffer_size(NULL);
    fails(lz_serializer_register(NULL, NULL, NULL));
    nothing(lz_serializer_find(NULL, "json"));
    nothing(lz_serializer_builtin(NULL));
    (void)lz_serializer_name(NULL), (void)lz_serializer_content_type(NULL), (void)lz_serializer_flags(NULL);
    fails(lz_serializer_encode(NULL, NULL, NULL));
    fails(lz_serializer_decode(NULL, "1", 1, &v));
    fails(lz_protobuf_register(NULL, NULL, NULL, 0));
    fails(lz_protobuf_from_value(NULL, NULL, NULL));
    fails(lz_protobuf_to_value(NULL, 0, NULL));
    nothing(lz_schema_new(NULL));
    nothing(lz_schema_from_json(NULL, 0));
    nothing(lz_schema_from_json(NULL, 5));
    fails(lz_schema_validate(NULL, NULL));
    lz_schema_destroy(NULL);
    fails(lz_context_on_span(NULL, NULL, NULL));
    (void)lz_span_name(NULL), (void)lz_span_kind(NULL), (void)lz_span_trace_id(NULL), (void)lz_span_id(NULL);
    (void)lz_span_parent_id(NULL), (void)lz_span_traceparent(NULL), (void)lz_span_node(NULL);
    (void)lz_span_message_id(NULL), (void)lz_span_start_ns(NULL), (void)lz_span_end_ns(NULL);
    (void)lz_span_status(NULL);
    LZ_CHECK_INT(lz_trace_adopt(NULL), LZ_OK); // forgets: nothing to refuse
    // Plugins.
    fails(lz_context_load_plugin(NULL, NULL));
    LZ_CHECK_INT(lz_context_plugins(NULL, NULL, 4), 0);
    fails(lz_plugin_register_serializer(NULL, NULL, NULL));
    fails(lz_plugin_on_node(NULL, NULL, NULL, NULL));
    fails(lz_plugin_on_span(NULL, NULL, NULL));
    lz_plugin_log(NULL, LZ_LOG_ERROR, "x"), lz_plugin_set_data(NULL, NULL);
    nothing(lz_plugin_context(NULL));
    nothing(lz_plugin_data(NULL));
    nothing(lz_value_copy(NULL));
    fails(lz_value_array_append(NULL, lz_value_int(1))); // the item is freed: ASan would see a leak
    fails(lz_value_object_set(NULL, "k", lz_value_int(1)));
    fails(lz_value_object_set_string(NULL, "k", "v"));
    fails(lz_value_object_set_int(NULL, "k", 1));
    fails(lz_value_object_set_double(NULL, "k", 1));
    fails(lz_value_object_set_bool(NULL, "k", true));
    LZ_CHECK_INT(lz_value_type(NULL), LZ_VALUE_NULL);
    (void)lz_value_get_bool(NULL), (void)lz_value_get_int(NULL), (void)lz_value_get_double(NULL);
    (void)lz_value_get_string(NULL, &size), (void)lz_value_get_bytes(NULL, &size);
    LZ_CHECK_INT(lz_value_size(NULL), 0);
    nothing(lz_value_at(NULL, 0));
    nothing(lz_value_key_at(NULL, 0));
    nothing(lz_value_get(NULL, "k"));
    LZ_CHECK_STR(lz_value_find_string(NULL, "k", "fallback"), "fallback");
    LZ_CHECK_INT(lz_value_find_int(NULL, "k", 42), 42);
    LZ_CHECK(lz_value_find_double(NULL, "k", 0.5) == 0.5);
    (void)lz_value_equal(NULL, NULL);
    char *text = lz_value_to_json(NULL); // a NULL value reads as null
    LZ_CHECK_STR(text, "null");
    free(text);
    nothing(lz_value_from_json(NULL, 3));
    nothing(lz_value_string(NULL));
    nothing(lz_value_stringn(NULL, 3));
    nothing(lz_value_bytes(NULL, 3));
}

// Real objects, NULL for their other pointer arguments.
LZ_TEST(objects_with_null_arguments) {
    lz_context_t *ctx = LZ_TEST_CONTEXT("zmq.linger=0");
    lz_config_t *config = lz_config_new();
    int64_t i;
    nothing(lz_prometheus_new(ctx, NULL));
    fails(lz_config_load_file(config, NULL));
    fails(lz_config_set(config, NULL, "1"));
    fails(lz_config_set(config, "zmq.linger", NULL));
    fails(lz_config_set_int(config, NULL, 1));
    fails(lz_config_get_int(config, NULL, &i));
    fails(lz_config_get_int(config, "zmq.linger", NULL));
    fails(lz_config_get_string(config, "logging.level", NULL));
    nothing(lz_config_source(config, NULL));
    fails(lz_context_reload(ctx, NULL));
    LZ_CHECK_INT(lz_context_watch(ctx, NULL), LZ_OK); // stops watching: none to stop
    lz_config_destroy(&config);

    // NULL endpoints mean none yet (node.h): bound or connected later.
    lz_pub_t *unbound = lz_pub_new(ctx, NULL);
    LZ_CHECK(unbound != NULL);
    lz_pub_destroy(&unbound);
    lz_proxy_t *proxy = lz_proxy_new(ctx, LZ_PROXY_QUEUE, NULL, NULL, NULL);
    LZ_CHECK(proxy != NULL);
    fails(lz_proxy_statistics(proxy, NULL));
    lz_proxy_destroy(&proxy);
    char endpoint[128];
    lz_pub_t *pub = lz_pub_new(ctx, lz_test_inproc_endpoint(endpoint, sizeof endpoint));
    fails(lz_pub_publish(pub, NULL, NULL));
    fails(lz_pub_publish_bytes(pub, NULL, "x", 1));
    fails(lz_pub_publish_bytes(pub, "t", NULL, 1));
    fails(lz_node_bind(lz_pub_node(pub), NULL));
    fails(lz_node_connect(lz_pub_node(pub), NULL));
    fails(lz_node_set_serializer(lz_pub_node(pub), NULL));
    fails(lz_node_curve_public_key(lz_pub_node(pub), NULL));
    fails(lz_node_set_name(lz_pub_node(pub), NULL));
    fails(lz_node_metrics(lz_pub_node(pub), NULL));
    lz_pub_destroy(&pub);

    lz_sub_t *sub = lz_sub_new(ctx, lz_test_inproc_endpoint(endpoint, sizeof endpoint));
    fails(lz_sub_subscribe(sub, NULL));
    fails(lz_sub_unsubscribe(sub, NULL));
    fails(lz_sub_on(sub, "t", NULL, NULL));
    fails(lz_sub_on_default(sub, NULL, NULL));
    fails(lz_sub_fd(sub, NULL));
    char bytes[8], topic[8];
    size_t size = sizeof bytes, topic_size = sizeof topic;
    fails(lz_sub_recv_bytes(sub, NULL, &topic_size, bytes, &size, 0));
    fails(lz_sub_recv_bytes(sub, topic, NULL, bytes, &size, 0));
    fails(lz_sub_recv_bytes(sub, topic, &topic_size, NULL, &size, 0)); // NULL with room claimed
    fails(lz_sub_recv_bytes(sub, topic, &topic_size, bytes, NULL, 0));
    lz_sub_destroy(&sub);

    lz_pull_t *pull = lz_pull_new(ctx, lz_test_inproc_endpoint(endpoint, sizeof endpoint));
    fails(lz_pull_on(pull, "t", NULL, NULL));
    fails(lz_pull_fd(pull, NULL));
    fails(lz_pull_next_retry_ms(pull, NULL));
    fails(lz_pull_recv_bytes(pull, NULL, &size, 0)); // NULL with room claimed
    fails(lz_pull_recv_bytes(pull, bytes, NULL, 0));
    lz_pull_destroy(&pull);

    nothing(lz_lock_new(ctx, "inproc://x", NULL, 1000));
    // No endpoint: a lock's, a client's or a dealer's cannot be added later,
    // so it would only time out (before, lz_lock_new(ctx, NULL, ...) made one).
    const char *none[] = {NULL, "", ",,"};
    for (size_t k = 0; k < sizeof none / sizeof *none; k++) {
        lz_lock_t *lock = lz_lock_new(ctx, none[k], "name", 1000);
        refused_for_no_endpoint(lock != NULL);
        lz_lock_destroy(&lock);
        lz_client_t *client = lz_client_new(ctx, none[k]);
        refused_for_no_endpoint(client != NULL);
        lz_client_destroy(&client);
        lz_dealer_t *dealer = lz_dealer_new(ctx, none[k], NULL);
        refused_for_no_endpoint(dealer != NULL);
        lz_dealer_destroy(&dealer);
    }

    lz_push_t *push = lz_push_new(ctx, lz_test_inproc_endpoint(endpoint, sizeof endpoint));
    fails(lz_push_send_bytes(push, NULL, 1));
    lz_push_destroy(&push);

    lz_server_t *server = lz_server_new(ctx, lz_test_inproc_endpoint(endpoint, sizeof endpoint));
    fails(lz_server_on(server, NULL, server_handler, NULL));
    fails(lz_server_on(server, "a", NULL, NULL));
    fails(lz_server_on_default(server, NULL, NULL));
    lz_lock_service_t *locks = lz_lock_service_attach(server, 0);
    LZ_CHECK(locks != NULL);
    fails(lz_lock_service_stats(locks, NULL));
    lz_server_destroy(&server);
    lz_lock_service_destroy(&locks);

    lz_client_t *client = lz_client_new(ctx, lz_test_inproc_endpoint(endpoint, sizeof endpoint));
    fails(lz_client_request(client, NULL, NULL, NULL, 10));
    fails(lz_client_request_async(client, "a", NULL, 10, NULL, NULL));
    lz_client_destroy(&client);

    lz_router_t *router = lz_router_new(ctx, lz_test_inproc_endpoint(endpoint, sizeof endpoint));
    fails(lz_router_reply(router, NULL, NULL));
    fails(lz_router_send(router, NULL, 2, "r1", NULL));
    lz_router_destroy(&router);

    lz_pair_t *a = NULL;
    fails(lz_pair_pipe(ctx, &a, NULL));
    fails(lz_pair_pipe(ctx, NULL, &a));

    lz_logger_t *logger = lz_logger_new();
    fails(lz_logger_to_file(logger, NULL));
    fails(lz_logger_to_callback(logger, NULL, NULL));
    lz_logger_write(logger, LZ_LOG_ERROR, NULL, "%s", "no component");
    lz_logger_destroy(&logger);

    lz_buffer_t *buffer = lz_buffer_new();
    fails(lz_buffer_append(buffer, NULL, 1));
    const lz_serializer_t *json = lz_serializer_builtin("json");
    fails(lz_serializer_encode(json, NULL, buffer));
    fails(lz_serializer_encode(json, NULL, NULL));
    fails(lz_serializer_decode(json, NULL, 1, NULL));
    lz_value_t *out = NULL;
    fails(lz_serializer_decode(json, NULL, 1, &out));
    fails(lz_serializer_register(ctx, NULL, NULL));
    nothing(lz_serializer_find(ctx, NULL));
    fails(lz_context_load_plugin(ctx, NULL));
    LZ_CHECK_INT(lz_context_plugins(ctx, NULL, 4), 0);
    lz_buffer_destroy(&buffer);

    lz_value_t *object = lz_value_object(), *array = lz_value_array();
    fails(lz_value_object_set(object, NULL, lz_value_int(1)));
    fails(lz_value_object_set(object, "k", NULL));
    fails(lz_value_object_set_string(object, "k", NULL));
    fails(lz_value_array_append(array, NULL));
    nothing(lz_value_get(object, NULL));
    lz_value_destroy(&object);
    lz_value_destroy(&array);
    lz_context_destroy(&ctx);
}

// refused checks a call that waits, given a timeout of -2: LZ_EINVAL at
// once, the detail naming the timeout.
#define refused(call)                                                       \
    do {                                                                    \
        LZ_CHECK_INT((call), LZ_EINVAL);                                    \
        LZ_CHECK(strstr(lz_last_error(), "timeout -2 ms") != NULL);         \
    } while (0)
#define refused_null(call)                                                  \
    do {                                                                    \
        LZ_CHECK((call) == NULL);                                           \
        refused(lz_last_error_code());                                      \
    } while (0)

// Taken as -1, a timeout of -2 waited forever, or took the message already
// waiting, or waited zmq.request_timeout: here each receive has a message
// waiting, which a later receive still gets, and nothing is sent.
LZ_TEST(timeouts_below_minus_one_are_refused) {
    lz_context_t *ctx = LZ_TEST_CONTEXT("zmq.linger=0", "zmq.request_timeout=200");
    char endpoint[128], bytes[8], topic[8];
    size_t size = sizeof bytes, topic_size = sizeof topic;
    lz_pull_t *pull = lz_pull_new(ctx, lz_test_inproc_endpoint(endpoint, sizeof endpoint));
    lz_push_t *push = lz_push_new(ctx, endpoint);
    LZ_CHECK_INT(lz_pull_on_default(pull, handler, NULL), LZ_OK);
    LZ_CHECK_INT(lz_push_send_bytes(push, "1", 1), LZ_OK);
    refused_null(lz_pull_recv(pull, -2));
    refused(lz_pull_recv_bytes(pull, bytes, &size, -2));
    refused(lz_pull_dispatch(pull, -2));
    LZ_CHECK_INT(lz_pull_recv_bytes(pull, bytes, &size, 5000), LZ_OK);
    lz_push_destroy(&push);
    lz_pull_destroy(&pull);

    lz_pub_t *pub = lz_pub_new(ctx, lz_test_inproc_endpoint(endpoint, sizeof endpoint));
    lz_sub_t *sub = lz_sub_new(ctx, endpoint);
    LZ_CHECK_INT(lz_sub_on_default(sub, handler, NULL), LZ_OK);
    LZ_CHECK_INT(lz_sub_subscribe(sub, "t"), LZ_OK);
    if (lz_test_sub_joined(pub, sub, "t")) {
        LZ_CHECK_INT(lz_pub_publish_bytes(pub, "t", "1", 1), LZ_OK);
        refused_null(lz_sub_recv(sub, -2));
        refused(lz_sub_recv_bytes(sub, topic, &topic_size, bytes, &size, -2));
        refused(lz_sub_dispatch(sub, -2));
        lz_message_t *msg = lz_sub_recv(sub, 5000);
        LZ_CHECK(msg != NULL);
        lz_message_destroy(&msg);
    }
    lz_sub_destroy(&sub);
    lz_pub_destroy(&pub);

    lz_pair_t *a = NULL, *b = NULL;
    LZ_CHECK_INT(lz_pair_pipe(ctx, &a, &b), LZ_OK);
    LZ_CHECK_INT(lz_pair_send_bytes(a, "1", 1), LZ_OK);
    refused_null(lz_pair_recv(b, -2));
    lz_message_t *msg = lz_pair_recv(b, 5000);
    LZ_CHECK(msg != NULL);
    lz_message_destroy(&msg);
    lz_pair_destroy(&a);
    lz_pair_destroy(&b);

    lz_router_t *router = lz_router_new(ctx, lz_test_inproc_endpoint(endpoint, sizeof endpoint));
    lz_dealer_t *dealer = lz_dealer_new(ctx, endpoint, NULL);
    lz_value_t *reply = NULL;
    refused(lz_dealer_request(dealer, NULL, &reply, -2));
    refused(lz_dealer_send(dealer, NULL, -2, NULL, NULL, NULL));
    LZ_CHECK_INT(lz_dealer_send(dealer, NULL, 5000, NULL, NULL, NULL), LZ_OK);
    refused_null(lz_router_recv(router, -2));
    lz_router_request_t *request = lz_router_recv(router, 5000);
    LZ_CHECK(request != NULL);
    lz_router_request_destroy(&request);
    LZ_CHECK(lz_router_recv(router, 100) == NULL); // the refused sends sent nothing
    lz_dealer_destroy(&dealer);
    lz_router_destroy(&router);

    lz_client_t *client = lz_client_new(ctx, lz_test_inproc_endpoint(endpoint, sizeof endpoint));
    refused(lz_client_request(client, "a", NULL, &reply, -2));
    refused(lz_client_request_async(client, "a", NULL, -2, client_callback, NULL));
    lz_client_destroy(&client);
    lz_lock_t *lock = lz_lock_new(ctx, endpoint, "name", 1000);
    refused(lz_lock_acquire(lock, -2));
    LZ_CHECK(!lz_lock_held(lock));
    lz_lock_destroy(&lock);
    lz_context_destroy(&ctx);
}

LZ_TEST_MAIN(LZ_CASE(no_object_at_all), LZ_CASE(objects_with_null_arguments),
             LZ_CASE(timeouts_below_minus_one_are_refused))

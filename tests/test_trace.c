/* Tracing (src/core/trace.c): traceparent checks, spans for request/reply
 * (a request made inside a handler is the handler's span's child), for
 * push/pull, incoming W3C traceparents from a plain ZeroMQ peer, error
 * statuses, names cut between characters, the log sink, nothing at all
 * with tracing off, and replacing the span function while it runs. */
#include <pthread.h>
#include <time.h>
#include <zmq.h>

#include "core/envelope.h"
#include "core/error.h"
#include "core/trace.h"
#include "lz_spans.h"
#include "lz_test.h"

// find returns the span of kind named name (the first), or NULL.
static const seen_span_t *find(lz_span_kind_t kind, const char *name) {
    for (int i = 0; i < span_count(); i++)
        if (seen[i].kind == kind && strcmp(seen[i].name, name) == 0) return &seen[i];
    fprintf(stderr, "  no span %d %s among %d\n", (int)kind, name, span_count());
    return NULL;
}

// traced_context: tracing on, spans collected afresh, envelopes in
// serializer (json writes them as text, others as a value tree).
static lz_context_t *traced_context_with(const char *serializer) {
    forget_spans();
    char setting[64];
    snprintf(setting, sizeof setting, "serialization.default=%s", serializer);
    lz_context_t *ctx = LZ_TEST_CONTEXT("zmq.linger=0", "tracing.enabled=true", "zmq.request_retries=0", setting);
    LZ_CHECK_INT(lz_context_on_span(ctx, on_span, NULL), LZ_OK);
    return ctx;
}

static lz_context_t *traced_context(void) { return traced_context_with("json"); }

static bool is_hex(const char *text, size_t len) {
    if (strlen(text) != len) return false;
    for (size_t i = 0; i < len; i++)
        if (!strchr("0123456789abcdef", text[i])) return false;
    return true;
}

LZ_TEST(traceparents_are_checked) {
    static const char *const bad[] = {
        "", "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7",       // short
        "00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01",        // upper case
        "00-00000000000000000000000000000000-00f067aa0ba902b7-01",        // zero trace id
        "00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01",        // zero parent id
        "ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",        // version ff
        "00_4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",        // separator
        "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-extra",  // 00 is exactly 55
        "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-0g",        // flags
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        LZ_CHECK_INT(lz_trace_adopt(bad[i]), LZ_EINVAL);
        LZ_CHECK(strstr(lz_last_error(), "lz_trace_adopt") != NULL);
    }
    LZ_CHECK(lz_trace_current() == NULL);
    const char *good = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
    LZ_CHECK_INT(lz_trace_adopt(good), LZ_OK);
    LZ_CHECK_STR(lz_trace_current(), good);
    // A later version's extra fields are allowed; its first 55 characters are kept.
    LZ_CHECK_INT(lz_trace_adopt("01-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-00-future"), LZ_OK);
    LZ_CHECK_STR(lz_trace_current(), "01-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-00");
    LZ_CHECK_INT(lz_trace_adopt(NULL), LZ_OK);
    LZ_CHECK(lz_trace_current() == NULL);
    LZ_CHECK_INT(lz_context_on_span(NULL, on_span, NULL), LZ_EINVAL);
    LZ_CHECK_STR(lz_span_name(NULL), "");
    LZ_CHECK_INT((int)lz_span_start_ns(NULL), 0);
}

typedef struct nested {
    lz_client_t *client;             // to the "double" server
    char current[64];                // lz_trace_current() inside the handler
} nested_t;

static int twice(const lz_message_t *request, lz_value_t **reply, void *arg) {
    *reply = lz_value_int(2 * lz_value_get_int(lz_message_value(request)));
    return 0;
}

// add_doubled asks the other server to double a, inside its own span.
static int add_doubled(const lz_message_t *request, lz_value_t **reply, void *arg) {
    nested_t *n = arg;
    snprintf(n->current, sizeof n->current, "%s", lz_trace_current() ? lz_trace_current() : "");
    lz_value_t *a = lz_value_int(lz_value_find_int(lz_message_value(request), "a", 0)), *doubled = NULL;
    int rc = lz_client_request(n->client, "double", a, &doubled, 5000);
    lz_value_destroy(&a);
    if (rc) return rc;
    *reply = lz_value_int(lz_value_get_int(doubled) + lz_value_find_int(lz_message_value(request), "b", 0));
    lz_value_destroy(&doubled);
    return 0;
}

LZ_TEST(a_request_and_the_request_its_handler_makes_share_a_trace) {
    lz_context_t *ctx = traced_context();
    lz_server_t *doubler = lz_server_new(ctx, "tcp://127.0.0.1:*"), *adder = lz_server_new(ctx, "tcp://127.0.0.1:*");
    lz_node_set_name(lz_server_node(adder), "adder");
    nested_t nested = {.client = lz_client_new(ctx, lz_node_endpoint(lz_server_node(doubler)))};
    lz_server_on(doubler, "double", twice, NULL);
    lz_server_on(adder, "add", add_doubled, &nested);
    LZ_CHECK_INT(lz_server_start(doubler), LZ_OK);
    LZ_CHECK_INT(lz_server_start(adder), LZ_OK);
    lz_client_t *client = lz_client_new(ctx, lz_node_endpoint(lz_server_node(adder)));
    lz_value_t *data = lz_value_from_json("{\"a\":20,\"b\":2}", 14), *reply = NULL;
    LZ_CHECK_INT(lz_client_request(client, "add", data, &reply, 5000), LZ_OK);
    LZ_CHECK_INT(lz_value_get_int(reply), 42);
    LZ_TEST_WAIT_UNTIL(span_count() >= 4, 5000); // server spans end after their reply is sent
    LZ_CHECK_INT(span_count(), 4);

    const seen_span_t *call = find(LZ_SPAN_CLIENT, "add"), *served = find(LZ_SPAN_SERVER, "add");
    const seen_span_t *inner = find(LZ_SPAN_CLIENT, "double"), *doubled = find(LZ_SPAN_SERVER, "double");
    LZ_CHECK(call && served && inner && doubled);
    if (call && served && inner && doubled) {
        LZ_CHECK(is_hex(call->trace_id, 32) && is_hex(call->span_id, 16));
        LZ_CHECK_STR(call->parent_id, ""); // the trace's first span
        check_child(served, call);
        check_child(inner, served);
        check_child(doubled, inner);
        LZ_CHECK_STR(nested.current, served->traceparent); // the handler ran inside its span
        LZ_CHECK(strncmp(served->traceparent, "00-", 3) == 0 && strcmp(served->traceparent + 52, "-01") == 0);
        LZ_CHECK_STR(served->node, "adder");
        LZ_CHECK_STR(served->id, call->id); // the request id, on both sides
        LZ_CHECK(strlen(call->id) == 36 && call->id[8] == '-' && call->id[14] == '4'); // a UUID v4
        LZ_CHECK(call->status == LZ_OK && served->status == LZ_OK);
        // The client's span holds the server's, which holds the inner request.
        LZ_CHECK(call->start_ns <= served->start_ns && inner->end_ns <= served->end_ns);
        LZ_CHECK(served->start_ns <= inner->start_ns && call->end_ns >= inner->end_ns);
    }
    LZ_CHECK(lz_trace_current() == NULL); // nothing left behind on this thread
    lz_value_destroy(&reply);
    lz_value_destroy(&data);
    lz_client_destroy(&client);
    lz_client_destroy(&nested.client);
    lz_server_destroy(&adder);
    lz_server_destroy(&doubler);
    lz_context_destroy(&ctx);
}

LZ_TEST(failures_are_the_spans_status) {
    lz_context_t *ctx = traced_context();
    lz_server_t *server = lz_server_new(ctx, "tcp://127.0.0.1:*");
    LZ_CHECK_INT(lz_server_start(server), LZ_OK);
    lz_client_t *client = lz_client_new(ctx, lz_node_endpoint(lz_server_node(server)));
    lz_value_t *reply = NULL;
    LZ_CHECK_INT(lz_client_request(client, "nope", NULL, &reply, 5000), LZ_EREMOTE);
    lz_value_destroy(&reply);
    LZ_TEST_WAIT_UNTIL(span_count() >= 2, 5000);
    const seen_span_t *call = find(LZ_SPAN_CLIENT, "nope"), *served = find(LZ_SPAN_SERVER, "nope");
    LZ_CHECK(call && call->status == LZ_EREMOTE);
    LZ_CHECK(served && served->status == LZ_ENOTFOUND);
    lz_server_destroy(&server);
    // Nobody answers now: the request's span ends with its timeout.
    LZ_CHECK_INT(lz_client_request(client, "late", NULL, &reply, 200), LZ_ETIMEOUT);
    call = find(LZ_SPAN_CLIENT, "late");
    LZ_CHECK(call && call->status == LZ_ETIMEOUT && call->end_ns - call->start_ns >= 150 * 1000000LL);
    lz_client_destroy(&client);
    lz_context_destroy(&ctx);
}

// A pusher under an adopted parent (a trace that came from elsewhere),
// its task's envelope, and the puller's handler span.
static int note_task(const lz_message_t *msg, void *arg) {
    snprintf(arg, 64, "%s", lz_value_find_string(lz_message_envelope(msg), "traceparent", ""));
    return 0;
}

LZ_TEST(tasks_carry_their_trace_to_the_worker) {
    const char *outside = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
    for (int pass = 0; pass < 3; pass++) { // untraced, traced json, traced msgpack
        bool traced = pass > 0;
        lz_context_t *ctx = traced ? traced_context_with(pass == 1 ? "json" : "msgpack") : LZ_TEST_CONTEXT("zmq.linger=0");
        if (!traced) LZ_CHECK_INT(lz_context_on_span(ctx, on_span, NULL), LZ_OK);
        forget_spans();
        char endpoint[128], carried[64] = "unset";
        lz_test_inproc_endpoint(endpoint, sizeof endpoint);
        lz_pull_t *pull = lz_pull_new(ctx, NULL);
        lz_push_t *push = lz_push_new(ctx, NULL);
        LZ_CHECK_INT(lz_node_bind(lz_pull_node(pull), endpoint), LZ_OK);
        LZ_CHECK_INT(lz_node_connect(lz_push_node(push), endpoint), LZ_OK);
        LZ_CHECK_INT(lz_pull_on(pull, "resize", note_task, carried), LZ_OK);
        LZ_CHECK_INT(lz_trace_adopt(outside), LZ_OK);
        lz_value_t *data = lz_value_int(7);
        LZ_CHECK_INT(lz_push_send(push, "resize", data, 0), LZ_OK);
        LZ_CHECK_INT(lz_trace_adopt(NULL), LZ_OK);
        LZ_CHECK_INT(lz_pull_dispatch(pull, 5000), 1);
        if (!traced) {
            LZ_CHECK_STR(carried, ""); // no traceparent sent, no span made
            LZ_CHECK_INT(span_count(), 0);
        } else {
            const seen_span_t *sent = find(LZ_SPAN_PRODUCER, "resize"), *handled = find(LZ_SPAN_CONSUMER, "resize");
            LZ_CHECK(sent && handled);
            if (sent && handled) {
                LZ_CHECK_STR(sent->trace_id, "4bf92f3577b34da6a3ce929d0e0e4736");
                LZ_CHECK_STR(sent->parent_id, "00f067aa0ba902b7");
                LZ_CHECK_STR(carried, sent->traceparent);
                check_child(handled, sent);
                LZ_CHECK_STR(handled->id, sent->id);
                LZ_CHECK_INT((int)strlen(sent->id), 36);
            }
        }
        lz_value_destroy(&data);
        lz_push_destroy(&push);
        lz_pull_destroy(&pull);
        lz_context_destroy(&ctx);
    }
}

// envelope_keys: the keys of an envelope encode wrote with codec, decoded,
// in their order and joined by commas.
static void envelope_keys(const char *codec, bool task, lz_span_t *span, char *out, size_t size) {
    const lz_serializer_t *serializer = lz_serializer_builtin(codec);
    lz_buffer_t *buf = lz_buffer_new();
    lz_value_t *data = lz_value_int(7), *envelope = NULL;
    LZ_CHECK_INT(task ? lz__envelope_encode_task(serializer, "resize", data, 2, span, buf)
                      : lz__envelope_encode_request(serializer, "add", data, "r-1", span, buf),
                 LZ_OK);
    LZ_CHECK_INT(lz_serializer_decode(serializer, lz_buffer_data(buf), lz_buffer_size(buf), &envelope), LZ_OK);
    out[0] = '\0';
    for (size_t i = 0; i < lz_value_size(envelope); i++)
        snprintf(out + strlen(out), size - strlen(out), "%s%s", i ? "," : "", lz_value_key_at(envelope, i));
    LZ_CHECK_STR(lz_value_find_string(envelope, "traceparent", ""), span ? span->traceparent : "");
    lz_value_destroy(&envelope);
    lz_value_destroy(&data);
    lz_buffer_destroy(&buf);
}

// A traced envelope has its traceparent just before "data" whatever the
// codec: json writes it as text, msgpack from a value tree (which put it
// after "data").
LZ_TEST(traced_envelopes_put_the_traceparent_just_before_data) {
    lz_span_t span = {.active = true, .traceparent = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"};
    static const char *const codecs[] = {"json", "msgpack"};
    char keys[128];
    for (size_t i = 0; i < 2; i++) {
        envelope_keys(codecs[i], true, &span, keys, sizeof keys);
        LZ_CHECK_STR(keys, "type,priority,timestamp,task_id,traceparent,data");
        envelope_keys(codecs[i], false, &span, keys, sizeof keys);
        LZ_CHECK_STR(keys, "type,timestamp,request_id,traceparent,data");
        envelope_keys(codecs[i], true, NULL, keys, sizeof keys);
        LZ_CHECK_STR(keys, "type,priority,timestamp,task_id,data");
        envelope_keys(codecs[i], false, NULL, keys, sizeof keys);
        LZ_CHECK_STR(keys, "type,timestamp,request_id,data");
    }
}

static char logged[512]; // under seen_lock
static void on_log(lz_log_level_t level, const char *component, const char *message, void *arg) {
    (void)arg;
    pthread_mutex_lock(&seen_lock);
    if (level == LZ_LOG_INFO && strcmp(component, "trace") == 0) snprintf(logged, sizeof logged, "%s", message);
    pthread_mutex_unlock(&seen_lock);
}

static bool log_has(const char *want, const char *also) {
    pthread_mutex_lock(&seen_lock);
    bool has = strncmp(logged, want, strlen(want)) == 0 && strstr(logged, also) != NULL;
    if (!has && logged[0]) fprintf(stderr, "  logged: %s\n", logged);
    pthread_mutex_unlock(&seen_lock);
    return has;
}

static int echo(const lz_message_t *request, lz_value_t **reply, void *arg) {
    *reply = lz_value_copy(lz_message_value(request));
    return 0;
}

// request_from_plain_peer sends one request envelope from a plain libzmq
// REQ socket, as a Python service would, and waits for the reply.
static void request_from_plain_peer(lz_context_t *ctx, const char *endpoint, const char *traceparent) {
    void *req = lz_test_plain_socket(lz_context_zmq(ctx), ZMQ_REQ, 5000, endpoint);
    char text[256];
    int len = snprintf(text, sizeof text,
                       "{\"type\":\"echo\",\"timestamp\":1.5,\"request_id\":\"py-1\",\"traceparent\":\"%s\",\"data\":3}",
                       traceparent);
    LZ_CHECK_INT(zmq_send(req, text, (size_t)len, 0), len);
    LZ_CHECK(zmq_recv(req, text, sizeof text, 0) > 0);
    zmq_close(req);
}

// Text cut to fit a name buffer keeps whole characters, so span
// functions, OTLP and Prometheus get UTF-8.
LZ_TEST(names_are_cut_between_characters) {
    static const struct {
        const char *in, *out; // into 8 bytes: 7 and the NUL
    } cases[] = {
        {"abcdefg", "abcdefg"},
        {"abcdefgh", "abcdefg"},
        {"abcdef\xc3\xa9", "abcdef"},                // U+00E9 across the cut
        {"abcde\xc3\xa9", "abcde\xc3\xa9"},           // ... and just fitting
        {"abcde\xe2\x9c\x93", "abcde"},              // U+2713
        {"abcd\xf0\x9f\x99\x82", "abcd"},            // U+1F642
        {"abc\xf0\x9f\x99\x82x", "abc\xf0\x9f\x99\x82"},
        {"", ""},
        {NULL, ""},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char out[8];
        lz__copy_text(out, sizeof out, cases[i].in);
        LZ_CHECK_STR(out, cases[i].out);
    }

    // A task type one byte too long for a span name loses its last character whole.
    lz_context_t *ctx = traced_context();
    char endpoint[128], type[80];
    lz_pull_t *pull = lz_pull_new(ctx, lz_test_inproc_endpoint(endpoint, sizeof endpoint));
    lz_push_t *push = lz_push_new(ctx, endpoint);
    memset(type, 'a', 61);
    strcpy(type + 61, "\xe2\x9c\x93");
    lz_value_t *data = lz_value_int(7);
    LZ_CHECK_INT(lz_push_send(push, type, data, 0), LZ_OK);
    type[61] = '\0';
    LZ_CHECK(find(LZ_SPAN_PRODUCER, type) != NULL);
    lz_value_destroy(&data);
    lz_push_destroy(&push);
    lz_pull_destroy(&pull);
    lz_context_destroy(&ctx);
}

LZ_TEST(incoming_traceparents_are_continued_and_logged) {
    lz_context_t *ctx = LZ_TEST_CONTEXT("zmq.linger=0", "tracing.enabled=true", "tracing.log=true");
    LZ_CHECK_INT(lz_context_on_span(ctx, on_span, NULL), LZ_OK);
    LZ_CHECK_INT(lz_logger_to_callback(lz_context_logger(ctx), on_log, NULL), LZ_OK);
    forget_spans();
    lz_server_t *server = lz_server_new(ctx, "tcp://127.0.0.1:*");
    lz_server_on(server, "echo", echo, NULL);
    LZ_CHECK_INT(lz_server_start(server), LZ_OK);
    const char *endpoint = lz_node_endpoint(lz_server_node(server));

    request_from_plain_peer(ctx, endpoint, "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01");
    LZ_TEST_WAIT_UNTIL(span_count() >= 1, 5000);
    const seen_span_t *served = find(LZ_SPAN_SERVER, "echo");
    LZ_CHECK(served != NULL);
    if (served) {
        LZ_CHECK_STR(served->trace_id, "0af7651916cd43dd8448eb211c80319c");
        LZ_CHECK_STR(served->parent_id, "b7ad6b7169203331");
        LZ_CHECK_STR(served->id, "py-1");
        char want[256];
        snprintf(want, sizeof want, "span server echo trace_id=0af7651916cd43dd8448eb211c80319c span_id=%s "
                 "parent_id=b7ad6b7169203331 node=server id=py-1 duration_us=", served->span_id);
        // The record is written right after the span function's call.
        LZ_TEST_WAIT_UNTIL(log_has(want, " status=ok"), 2000);
        LZ_CHECK(log_has(want, " status=ok"));
    }
    // A malformed traceparent is ignored: the server starts a trace of its own.
    request_from_plain_peer(ctx, endpoint, "00-0AF7651916CD43DD8448EB211C80319C-b7ad6b7169203331-01");
    LZ_TEST_WAIT_UNTIL(span_count() >= 2, 5000);
    LZ_CHECK(span_count() == 2 && seen[1].parent_id[0] == '\0' && is_hex(seen[1].trace_id, 32));
    lz_server_destroy(&server);
    lz_context_destroy(&ctx);
}

/* ---- replacing the span function ---- */

static void *push_one(void *push) {
    lz_value_t *data = lz_value_int(1);
    LZ_CHECK_INT(lz_push_send(push, "job", data, 0), LZ_OK); // its span ends on this thread
    lz_value_destroy(&data);
    return NULL;
}

// The first call of held_span is held until released; a second one, on
// another thread while the first is held, replaces the function from inside.
typedef struct held {
    lz_context_t *ctx;
    atomic_bool inside, release, returned; // the held call's progress
    atomic_bool swapped;                   // lz_context_on_span returned
    bool returned_first;                   // ... after the held call had
} held_t;

static void swap_to_none(held_t *held) {
    LZ_CHECK_INT(lz_context_on_span(held->ctx, NULL, NULL), LZ_OK);
    held->returned_first = atomic_load(&held->returned);
    atomic_store(&held->swapped, true);
}

static void *swap_to_none_thread(void *held) {
    swap_to_none(held);
    return NULL;
}

static void held_span(const lz_span_t *span, void *arg) {
    (void)span;
    held_t *held = arg;
    if (atomic_exchange(&held->inside, true)) {
        swap_to_none(held);
        return;
    }
    LZ_TEST_WAIT_UNTIL(atomic_load(&held->release), 5000);
    atomic_store(&held->returned, true);
}

// lz_context_on_span returns only once the function it replaces has
// returned on every other thread (its caller may free the arg), made from
// a plain thread or from inside the function on another one.
LZ_TEST(replacing_the_span_function_waits_for_its_calls) {
    for (int from_inside = 0; from_inside < 2; from_inside++) {
        lz_context_t *ctx = LZ_TEST_CONTEXT("zmq.linger=0", "tracing.enabled=true");
        held_t held = {.ctx = ctx};
        LZ_CHECK_INT(lz_context_on_span(ctx, held_span, &held), LZ_OK);
        char endpoint[128];
        lz_pull_t *pull = lz_pull_new(ctx, lz_test_inproc_endpoint(endpoint, sizeof endpoint));
        lz_push_t *push = lz_push_new(ctx, endpoint), *other = lz_push_new(ctx, endpoint);
        pthread_t sender, swapper;
        pthread_create(&sender, NULL, push_one, push);
        LZ_TEST_WAIT_UNTIL(atomic_load(&held.inside), 5000);
        LZ_CHECK(atomic_load(&held.inside));
        if (from_inside)
            pthread_create(&swapper, NULL, push_one, other); // its span's call swaps
        else
            pthread_create(&swapper, NULL, swap_to_none_thread, &held);
        // Nothing shows the swap waiting: it is given the time to return, which it must not take.
        LZ_TEST_WAIT_UNTIL(atomic_load(&held.swapped), 200);
        LZ_CHECK(!atomic_load(&held.swapped));
        atomic_store(&held.release, true);
        pthread_join(swapper, NULL);
        pthread_join(sender, NULL);
        LZ_CHECK(held.swapped && held.returned_first);
        atomic_store(&held.inside, false);
        push_one(push); // goes to no function now
        LZ_CHECK(!atomic_load(&held.inside));
        lz_push_destroy(&other);
        lz_push_destroy(&push);
        lz_pull_destroy(&pull);
        lz_context_destroy(&ctx);
    }
}

// Two threads inside the span function, each replacing it from there: a
// swap waits neither for its own call nor for one that is itself swapping,
// so both return.
typedef struct self_replacing {
    lz_context_t *ctx;
    atomic_int inside, replaced;
} self_replacing_t;

static void replace_self(const lz_span_t *span, void *arg) {
    (void)span;
    self_replacing_t *r = arg;
    atomic_fetch_add(&r->inside, 1);
    LZ_TEST_WAIT_UNTIL(atomic_load(&r->inside) == 2, 5000);
    LZ_CHECK_INT(lz_context_on_span(r->ctx, NULL, NULL), LZ_OK);
    atomic_fetch_add(&r->replaced, 1);
}

LZ_TEST(the_span_function_may_replace_itself) {
    lz_context_t *ctx = LZ_TEST_CONTEXT("zmq.linger=0", "tracing.enabled=true");
    self_replacing_t r = {.ctx = ctx};
    LZ_CHECK_INT(lz_context_on_span(ctx, replace_self, &r), LZ_OK);
    char endpoint[128];
    lz_pull_t *pull = lz_pull_new(ctx, lz_test_inproc_endpoint(endpoint, sizeof endpoint));
    lz_push_t *pushes[2] = {lz_push_new(ctx, endpoint), lz_push_new(ctx, endpoint)};
    pthread_t senders[2];
    for (int i = 0; i < 2; i++) pthread_create(&senders[i], NULL, push_one, pushes[i]);
    LZ_TEST_WAIT_UNTIL(atomic_load(&r.replaced) == 2, 5000);
    LZ_CHECK_INT(atomic_load(&r.replaced), 2);
    if (atomic_load(&r.replaced) != 2) return; // the senders are stuck: nothing can be torn down
    for (int i = 0; i < 2; i++) {
        pthread_join(senders[i], NULL);
        lz_push_destroy(&pushes[i]);
    }
    lz_pull_destroy(&pull);
    lz_context_destroy(&ctx);
}

/* ---- a wall clock that steps ---- */

// The wall clock as this thread reads it is wall_step_ns behind the real
// one (an operator's date, NTP's step): a stand-in for clock_gettime, the
// library's calls included, that passes every clock but CLOCK_REALTIME on.
static _Thread_local int64_t wall_step_ns;
static int (*real_clock_gettime)(clockid_t, struct timespec *);

static void find_real_clock_gettime(void) { lz_test_next_function(&real_clock_gettime, "clock_gettime"); }

int clock_gettime(clockid_t clock, struct timespec *ts) {
    static pthread_once_t once = PTHREAD_ONCE_INIT;
    pthread_once(&once, find_real_clock_gettime);
    int rc = real_clock_gettime(clock, ts);
    if (rc == 0 && clock == CLOCK_REALTIME && wall_step_ns) {
        int64_t ns = (int64_t)ts->tv_sec * 1000000000 + ts->tv_nsec - wall_step_ns;
        *ts = (struct timespec){.tv_sec = ns / 1000000000, .tv_nsec = ns % 1000000000};
    }
    return rc;
}

// step_back sets the wall clock of the handler's thread back a second,
// inside the server's span.
static int step_back(const lz_message_t *request, lz_value_t **reply, void *arg) {
    (void)request;
    (void)arg;
    wall_step_ns = 1000000000;
    *reply = lz_value_int(1);
    return 0;
}

// A span's duration is the monotonic clock's: the server's span, whose
// handler stepped the wall clock back, does not end before it started.
LZ_TEST(a_wall_clock_step_does_not_end_a_span_before_its_start) {
    lz_context_t *ctx = traced_context();
    lz_server_t *server = lz_server_new(ctx, "tcp://127.0.0.1:*");
    lz_server_on(server, "step", step_back, NULL);
    LZ_CHECK_INT(lz_server_start(server), LZ_OK);
    lz_client_t *client = lz_client_new(ctx, lz_node_endpoint(lz_server_node(server)));
    lz_value_t *reply = NULL;
    LZ_CHECK_INT(lz_client_request(client, "step", NULL, &reply, 5000), LZ_OK);
    LZ_TEST_WAIT_UNTIL(span_count() >= 2, 5000);
    const seen_span_t *served = find(LZ_SPAN_SERVER, "step");
    LZ_CHECK(served && served->end_ns >= served->start_ns && served->end_ns - served->start_ns < 1000000000);
    lz_value_destroy(&reply);
    lz_client_destroy(&client);
    lz_server_destroy(&server);
    lz_context_destroy(&ctx);
}

LZ_TEST_MAIN(LZ_CASE(traceparents_are_checked), LZ_CASE(a_request_and_the_request_its_handler_makes_share_a_trace),
             LZ_CASE(failures_are_the_spans_status), LZ_CASE(tasks_carry_their_trace_to_the_worker),
             LZ_CASE(traced_envelopes_put_the_traceparent_just_before_data),
             LZ_CASE(names_are_cut_between_characters), LZ_CASE(incoming_traceparents_are_continued_and_logged),
             LZ_CASE(replacing_the_span_function_waits_for_its_calls), LZ_CASE(the_span_function_may_replace_itself),
             LZ_CASE(a_wall_clock_step_does_not_end_a_span_before_its_start))

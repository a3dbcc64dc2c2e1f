/* Push/pull: a pusher spreads tasks round-robin over connected pullers;
 * a puller routes each task by its type to a handler on its worker pool. */
#include <limits.h>
#include <stdlib.h>
#include <string.h>

#include "core/context.h"
#include "core/dispatch.h"
#include "core/envelope.h"
#include "core/error.h"
#include "core/hooks.h"
#include "core/node.h"
#include "core/scratch.h"
#include "core/trace.h"
#include "liberzmq/pushpull.h"
#include "patterns/pubsub.h"

struct lz_push {
    lz_node_t node;
};

struct lz_pull {
    lz_node_t node;
    lz_dispatcher_t dispatcher;
    lz_dead_letter_fn dead_letter_fn; // NULL: publish on dead_letter_pub, if set
    void *dead_letter_arg;
    lz_pub_t *dead_letter_pub;
    char *dead_letter_topic;
};

/* ---- pusher ------------------------------------------------------------- */

lz_push_t *lz_push_new(lz_context_t *ctx, const char *endpoints) {
    lz_push_t *push = calloc(1, sizeof *push);
    if (!push) return lz__fail_null(LZ_ENOMEM, "push: out of memory");
    if (lz__node_init(&push->node, ctx, ZMQ_PUSH, "push", '>', endpoints) != LZ_OK) {
        free(push);
        return NULL;
    }
    return push;
}

void lz_push_destroy(lz_push_t **push_p) {
    if (!push_p || !*push_p) return;
    lz__node_close(&(*push_p)->node);
    free(*push_p);
    *push_p = NULL;
}

lz_node_t *lz_push_node(lz_push_t *push) { return push ? &push->node : NULL; }

int lz_push_send_bytes(lz_push_t *push, const void *data, size_t size) {
    if (!push || (!data && size)) return lz__fail(LZ_EINVAL, "push: NULL argument");
    return lz__node_send_one(&push->node, data, size);
}

int lz_push_send(lz_push_t *push, const char *type, const lz_value_t *data, int priority) {
    if (!push) return lz__fail(LZ_EINVAL, "push: NULL pusher");
    int rc = lz__hooks_send(&push->node, type ? type : "default", data);
    if (rc != LZ_OK) return rc;
    if (lz_serializer_flags(push->node.serializer) & LZ_SERIALIZER_OPAQUE) {
        // An opaque codec carries the bytes alone: there is no envelope for the type.
        size_t size;
        const void *bytes = lz_value_get_bytes(data, &size);
        if (!bytes) return lz__fail(LZ_EVALIDATION, "push: serializer '%s' sends bytes or strings only, not %s",
                                    lz_serializer_name(push->node.serializer), lz_value_type_name(lz_value_type(data)));
        return lz_push_send_bytes(push, bytes, size);
    }
    lz_buffer_t *buffer = lz__scratch_buffer();
    if (!buffer) return lz__fail(LZ_ENOMEM, "push: out of memory");
    lz_span_t span;
    lz__span_begin(&span, &push->node, LZ_SPAN_PRODUCER, type ? type : "default", NULL);
    rc = lz__envelope_encode_task(push->node.serializer, type, data, priority, &span, buffer);
    if (rc != LZ_OK)
        rc = lz__node_error(&push->node, rc, "cannot encode task '%s': %s", type ? type : "default", lz_last_error());
    else
        rc = lz_push_send_bytes(push, lz_buffer_data(buffer), lz_buffer_size(buffer));
    lz__span_end(&span, rc);
    return rc;
}

/* ---- puller ------------------------------------------------------------- */

// one_frame: a task is one frame; anything else is malformed.
static int one_frame(const lz_frames_t *frames) {
    return frames->total == 1 ? LZ_OK : lz__fail(LZ_EPROTOCOL, "expected one frame per task, got %zu", frames->total);
}

// decode_task is the puller's decoder (see lz_take_fn): out is an lz_message_t **.
static int decode_task(lz_node_t *node, lz_frames_t *frames, void *out) {
    if (one_frame(frames) != LZ_OK) return LZ_EPROTOCOL;
    int rc = lz__envelope_decode_task(node->serializer, &frames->part[0], lz__frame_size(frames, 0), out);
    // A decoded task took the frame (lz__frames_release then skips it);
    // after a failure the frame may still hold its bytes.
    if (rc == LZ_OK) frames->settled |= 1u;
    return rc;
}

lz_pull_t *lz_pull_new(lz_context_t *ctx, const char *endpoints) {
    lz_pull_t *pull = calloc(1, sizeof *pull);
    if (!pull) return lz__fail_null(LZ_ENOMEM, "pull: out of memory");
    if (lz__node_init(&pull->node, ctx, ZMQ_PULL, "pull", '@', endpoints) != LZ_OK) {
        free(pull);
        return NULL;
    }
    lz__dispatcher_init(&pull->dispatcher, &pull->node, decode_task, false);
    lz_live_t *live = pull->node.live;
    if (lz__dispatcher_set_retry(&pull->dispatcher, LZ_LIVE(live, task_max_retries), LZ_LIVE(live, task_retry_delay)) !=
        LZ_OK) {
        lz_pull_destroy(&pull);
        return NULL;
    }
    return pull;
}

void lz_pull_destroy(lz_pull_t **pull_p) {
    if (!pull_p || !*pull_p) return;
    if (lz__dispatcher_may_destroy(&(*pull_p)->dispatcher, "lz_pull_destroy") != LZ_OK) return;
    lz__dispatcher_fini(&(*pull_p)->dispatcher);
    lz__node_close(&(*pull_p)->node);
    free((*pull_p)->dead_letter_topic);
    free(*pull_p);
    *pull_p = NULL;
}

lz_node_t *lz_pull_node(lz_pull_t *pull) { return pull ? &pull->node : NULL; }

int lz_pull_on(lz_pull_t *pull, const char *type, lz_handler_fn handler, void *arg) {
    if (!pull || !type) return lz__fail(LZ_EINVAL, "pull: NULL argument");
    return lz__dispatcher_on(&pull->dispatcher, type, handler, arg, NULL);
}

int lz_pull_on_default(lz_pull_t *pull, lz_handler_fn handler, void *arg) {
    if (!pull) return lz__fail(LZ_EINVAL, "pull: NULL puller");
    return lz__dispatcher_on(&pull->dispatcher, NULL, handler, arg, NULL);
}

/* ---- retries and dead letters ------------------------------------------ */

int lz_pull_set_retry(lz_pull_t *pull, int max_retries, int delay_ms) {
    if (!pull || max_retries < 0 || max_retries > 100 || delay_ms < 0 || delay_ms > INT_MAX / 100)
        return lz__fail(LZ_EINVAL, "pull: NULL puller, or retries outside 0..100 or delay outside 0..%d ms", INT_MAX / 100);
    return lz__dispatcher_set_retry(&pull->dispatcher, max_retries, delay_ms);
}

// original_task is the task as it came: its envelope with its data, or,
// for a task that had none, its type and data.
static lz_value_t *original_task(const lz_message_t *task) {
    const lz_value_t *envelope = lz_message_envelope(task);
    lz_value_t *original = envelope ? lz_value_copy(envelope) : lz_value_object();
    if (!original) return NULL;
    if ((envelope || lz_value_object_set_string(original, "type", lz_message_type(task)) == LZ_OK) &&
        lz_value_object_set(original, "data", lz_value_copy(lz_message_value(task))) == LZ_OK)
        return original;
    lz_value_destroy(&original);
    return NULL;
}

static lz_value_t *dead_letter_new(const lz_message_t *task, const char *error, int failures) {
    lz_value_t *letter = lz_value_object();
    if (letter && lz_value_object_set(letter, "original_task", original_task(task)) == LZ_OK &&
        lz_value_object_set_string(letter, "final_error", error) == LZ_OK &&
        lz_value_object_set_int(letter, "retry_count", failures) == LZ_OK &&
        lz_value_object_set_double(letter, "failed_at", lz__now_seconds()) == LZ_OK)
        return letter;
    lz_value_destroy(&letter);
    return NULL;
}

// give_up is the puller's dead-letter sink (lz_give_up_fn). A stop hands
// it every retry still waiting, in turn: there the publisher does not
// wait for room (lz__pub_publish_now), a letter it has none for is logged,
// not left to hold the stop for a send_timeout each. The task is counted
// once, in dead_letters, before this runs: a letter that cannot be built
// or sent is logged here, not counted again (its publisher counts a send
// it could not make in its own metrics).
static void give_up(void *owner, const lz_message_t *task, const char *error, int failures) {
    lz_pull_t *pull = owner;
    bool stopping = atomic_load(&pull->dispatcher.stopping);
    lz_value_t *letter = dead_letter_new(task, error, failures);
    if (!letter) {
        lz__node_log_drop(&pull->node, "out of memory writing the dead letter of '%s'", lz_message_type(task));
        return;
    }
    if (pull->dead_letter_fn)
        pull->dead_letter_fn(letter, task, pull->dead_letter_arg);
    else if ((stopping ? lz__pub_publish_now : lz_pub_publish)(pull->dead_letter_pub, pull->dead_letter_topic, letter) !=
             LZ_OK)
        lz__node_log_drop(&pull->node, "cannot publish the dead letter of '%s': %s", lz_message_type(task),
                          lz_last_error());
    lz_value_destroy(&letter);
}

// set_dead_letter installs one sink: a function, or a publisher and topic.
// give_up reads them on a dispatching thread: they change as its settings.
static int set_dead_letter(lz_pull_t *pull, lz_dead_letter_fn fn, void *arg, lz_pub_t *pub, const char *topic) {
    char *copy = NULL;
    if (pub && !(copy = strdup(topic ? topic : "dead_letter"))) return lz__fail(LZ_ENOMEM, "pull: out of memory");
    int rc = lz__dispatcher_settings_begin(&pull->dispatcher, "set the dead-letter sink");
    if (rc != LZ_OK) {
        free(copy);
        return rc;
    }
    lz__dispatcher_set_give_up(&pull->dispatcher, fn || pub ? give_up : NULL, pull);
    free(pull->dead_letter_topic);
    pull->dead_letter_fn = fn;
    pull->dead_letter_arg = arg;
    pull->dead_letter_pub = pub;
    pull->dead_letter_topic = copy;
    lz__dispatcher_settings_end(&pull->dispatcher);
    return LZ_OK;
}

int lz_pull_on_dead_letter(lz_pull_t *pull, lz_dead_letter_fn fn, void *arg) {
    return pull ? set_dead_letter(pull, fn, arg, NULL, NULL) : lz__fail(LZ_EINVAL, "pull: NULL puller");
}

// A topic that is not text is refused here, once, rather than by every
// letter's publish (lz_pub_publish), each of them logged and lost.
int lz_pull_set_dead_letter(lz_pull_t *pull, lz_pub_t *pub, const char *topic) {
    if (!pull) return lz__fail(LZ_EINVAL, "pull: NULL puller");
    if (pub && topic && !lz__topic_text(topic, strlen(topic)))
        return lz__fail(LZ_EINVAL, "pull: dead-letter topic is not UTF-8 text");
    return set_dead_letter(pull, NULL, NULL, pub, topic);
}

int lz_pull_start(lz_pull_t *pull, int workers) {
    if (!pull || workers < 0) return lz__fail(LZ_EINVAL, "pull: NULL puller or negative worker count");
    return lz__dispatcher_start(&pull->dispatcher, workers ? workers : pull->node.settings->handler_max_concurrency);
}

int lz_pull_stop(lz_pull_t *pull) { return pull ? lz__dispatcher_stop(&pull->dispatcher) : LZ_OK; }

int lz_pull_fd(lz_pull_t *pull, int *fd) {
    return pull ? lz__dispatcher_fd(&pull->dispatcher, fd) : lz__fail(LZ_EINVAL, "pull: NULL puller");
}

int lz_pull_next_retry_ms(lz_pull_t *pull, int *ms) {
    if (!pull || !ms) return lz__fail(LZ_EINVAL, "pull: NULL puller or ms");
    *ms = lz__dispatcher_next_retry(&pull->dispatcher);
    return LZ_OK;
}

int lz_pull_dispatch(lz_pull_t *pull, int timeout_ms) {
    return pull ? lz__dispatcher_dispatch(&pull->dispatcher, timeout_ms) : lz__fail(LZ_EINVAL, "pull: NULL puller");
}

lz_message_t *lz_pull_recv(lz_pull_t *pull, int timeout_ms) {
    return pull ? lz__dispatcher_recv(&pull->dispatcher, timeout_ms) : lz__fail_null(LZ_EINVAL, "pull: NULL puller");
}

// Where lz_pull_recv_bytes wants a task's bytes, and how many it had.
typedef struct task_bytes {
    void *data;
    size_t capacity, size;
} task_bytes_t;

static int take_task_bytes(lz_node_t *node, lz_frames_t *frames, void *out) {
    (void)node;
    if (one_frame(frames) != LZ_OK) return LZ_EPROTOCOL;
    task_bytes_t *task = out;
    task->size = lz__frames_copy(frames, 0, task->data, task->capacity);
    return LZ_OK;
}

int lz_pull_recv_bytes(lz_pull_t *pull, void *data, size_t *size, int timeout_ms) {
    if (!pull || !size || (!data && *size)) return lz__fail(LZ_EINVAL, "pull: NULL argument");
    task_bytes_t task = {data, *size, 0};
    int rc = lz__dispatcher_take(&pull->dispatcher, timeout_ms, take_task_bytes, &task);
    if (rc == LZ_OK) *size = task.size;
    return rc;
}

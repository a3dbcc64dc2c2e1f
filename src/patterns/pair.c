/* Pair: an exclusive two-way pipe, mostly between threads over inproc://.
 * One frame per message: the serialized value. lz_pair_pipe makes both
 * ends on a fresh inproc address in one call. */
#include <stdio.h>
#include <stdlib.h>

#include "core/envelope.h"
#include "core/error.h"
#include "core/node.h"
#include "liberzmq/pair.h"

struct lz_pair {
    lz_node_t node;
};

lz_pair_t *lz_pair_new(lz_context_t *ctx, const char *endpoints) {
    lz_pair_t *pair = calloc(1, sizeof *pair);
    if (!pair) return lz__fail_null(LZ_ENOMEM, "lz_pair_new: out of memory");
    if (lz__node_init(&pair->node, ctx, ZMQ_PAIR, "pair", '@', endpoints) < 0) {
        free(pair);
        return NULL;
    }
    return pair;
}

int lz_pair_pipe(lz_context_t *ctx, lz_pair_t **a_p, lz_pair_t **b_p) {
    if (!ctx || !a_p || !b_p) return lz__fail(LZ_EINVAL, "lz_pair_pipe: NULL argument");
    char url[96] = "@"; // bound by a, connected to by b
    lz__inproc_endpoint(url + 1, sizeof url - 1, "pair");
    lz_pair_t *a = lz_pair_new(ctx, url);
    if (!a) return lz_last_error_code();
    url[0] = '>';
    lz_pair_t *b = lz_pair_new(ctx, url);
    if (!b) {
        int rc = lz_last_error_code();
        lz_pair_destroy(&a);
        return rc;
    }
    *a_p = a;
    *b_p = b;
    return LZ_OK;
}

void lz_pair_destroy(lz_pair_t **pair_p) {
    if (!pair_p || !*pair_p) return;
    lz__node_close(&(*pair_p)->node);
    free(*pair_p);
    *pair_p = NULL;
}

lz_node_t *lz_pair_node(lz_pair_t *pair) { return pair ? &pair->node : NULL; }

int lz_pair_send_bytes(lz_pair_t *pair, const void *data, size_t size) {
    if (!pair || (!data && size)) return lz__fail(LZ_EINVAL, "lz_pair_send_bytes: NULL argument");
    lz_frame_t frame = {data, size};
    return lz__node_send(&pair->node, &frame, 1);
}

int lz_pair_send(lz_pair_t *pair, const lz_value_t *value) {
    if (!pair) return lz__fail(LZ_EINVAL, "lz_pair_send: pair is NULL");
    lz_buffer_t *buffer = lz_buffer_new();
    if (!buffer) return lz__fail(LZ_ENOMEM, "pair: out of memory");
    lz_value_t *null_value = value ? NULL : lz_value_null();
    int rc = lz_serializer_encode(pair->node.serializer, value ? value : null_value, buffer);
    lz_value_destroy(&null_value);
    if (rc == LZ_OK) rc = lz_pair_send_bytes(pair, lz_buffer_data(buffer), lz_buffer_size(buffer));
    lz_buffer_destroy(&buffer);
    return rc;
}

// to_message moves the frame into a message and decodes it in place (a raw
// value borrows the frame, which the message keeps).
static lz_message_t *to_message(lz_pair_t *pair, zmq_msg_t *frame, size_t size) {
    lz_message_t *msg = lz__message_new();
    if (!msg) return NULL;
    lz__message_take_payload(msg, frame);
    lz_value_t *value = NULL;
    if (lz_serializer_decode(pair->node.serializer, zmq_msg_data(&msg->payload), size, &value) < 0) {
        lz__node_drop(&pair->node, "payload does not decode: %s", lz_last_error());
        lz_message_destroy(&msg);
        return NULL;
    }
    lz_value_destroy(&msg->value);
    msg->value = value;
    return msg;
}

// The node lock is held for slices of a receive, as a dispatcher does
// (dispatch.c): a send from another thread, which pair.h allows while one
// thread receives, then waits at most a slice instead of using the libzmq
// socket at the same time as the receive (libzmq sockets are not thread
// safe).
#define PAIR_RECV_SLICE_MS 50

// recv_locked receives one message into *f within timeout_ms (-1: no
// limit, 0: only what is queued), taking the node lock one slice at a time;
// like the dispatcher's recv_sliced it counts the slices it waited out.
static int recv_locked(lz_pair_t *pair, lz_frames_t *f, int timeout_ms) {
    for (int waited = 0;;) {
        int slice = timeout_ms < 0 || timeout_ms - waited > PAIR_RECV_SLICE_MS ? PAIR_RECV_SLICE_MS
                                                                             : timeout_ms - waited;
        lz__bias_lock(&pair->node.lock);
        int rc = pair->node.socket ? lz__node_recv(&pair->node, f, slice)
                                   : lz__fail(LZ_ECLOSED, "%s: closed", pair->node.name);
        lz__bias_unlock(&pair->node.lock);
        waited += slice;
        if (rc != LZ_ETIMEOUT || timeout_ms == 0) return rc;
        if (timeout_ms > 0 && waited >= timeout_ms)
            return lz__fail(LZ_ETIMEOUT, "%s: no message within %d ms", pair->node.name, timeout_ms);
    }
}

lz_message_t *lz_pair_recv(lz_pair_t *pair, int timeout_ms) {
    if (!pair) return lz__fail_null(LZ_EINVAL, "lz_pair_recv: pair is NULL");
    for (;;) {
        lz_frames_t f;
        if (recv_locked(pair, &f, timeout_ms) < 0) return NULL;
        lz_message_t *msg = f.count == 1 ? to_message(pair, &f.part[0], lz__frame_size(&f, 0)) : NULL;
        if (f.count != 1) lz__node_drop(&pair->node, "message with %zu frames, expected 1", f.total);
        lz__frames_close(&f);
        if (msg) return msg;
    }
}

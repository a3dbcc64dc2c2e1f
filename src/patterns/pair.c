/* Pair: an exclusive two-way pipe, mostly between threads over inproc://.
 * One frame per message: the serialized value. lz_pair_pipe makes both
 * ends on a fresh inproc address in one call. */
#include <stdio.h>
#include <stdlib.h>

#include "core/envelope.h"
#include "core/error.h"
#include "core/hooks.h"
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
    int rc = lz__hooks_send(&pair->node, "", value);
    if (rc != LZ_OK) return rc;
    lz_buffer_t *buffer = lz_buffer_new();
    if (!buffer) return lz__fail(LZ_ENOMEM, "pair: out of memory");
    rc = lz__node_encode(&pair->node, value, buffer);
    if (rc == LZ_OK) rc = lz_pair_send_bytes(pair, lz_buffer_data(buffer), lz_buffer_size(buffer));
    lz_buffer_destroy(&buffer);
    return rc;
}

// take_message makes the one frame a message and decodes it in place,
// then runs the receive hooks on it.
static int take_message(lz_node_t *node, lz_frames_t *f, void *out) {
    if (f->total != 1) return lz__fail(LZ_EPROTOCOL, "message with %zu frames, expected 1", f->total);
    lz_message_t *msg = lz__message_decode(node->serializer, &f->part[0], lz__frame_size(f, 0));
    if (!msg && lz_last_error_code() == LZ_ENOMEM) return LZ_ENOMEM; // not the message's fault
    if (!msg) return lz__fail(LZ_EPROTOCOL, "payload does not decode: %s", lz_last_error());
    if (!lz__hooks_admit(node, &msg)) return LZ__TAKE_DROPPED;
    *(lz_message_t **)out = msg;
    return LZ_OK;
}

// The receive holds the node lock only while it reads (lz__node_take):
// pair.h allows a send from another thread while one thread receives.
lz_message_t *lz_pair_recv(lz_pair_t *pair, int timeout_ms) {
    if (!pair) return lz__fail_null(LZ_EINVAL, "lz_pair_recv: pair is NULL");
    lz_message_t *msg = NULL;
    return lz__node_take(&pair->node, timeout_ms, NULL, take_message, &msg) == LZ_OK ? msg : NULL;
}

/* Internal: a node's hooks ("middleware", node.h): functions run on each
 * value it sends and each message it receives, which may refuse them. */
#ifndef LZ_CORE_HOOKS_H
#define LZ_CORE_HOOKS_H

#include <stdbool.h>

#include "core/error.h"
#include "core/node.h"

int lz__hooks_send_slow(lz_node_t *node, const char *key, const lz_value_t *value);
int lz__hooks_receive_slow(lz_node_t *node, const lz_message_t *msg);

// lz__hooks_send runs node's send hooks on value (key: topic, task type or
// action, "" for a pair). LZ_OK, or the refusal's code (LZ_EVALIDATION when
// a hook returned a positive number) with the detail "<node>: '<key>'
// refused: <why>", counted in errors. Nodes without hooks pay one test.
static inline int lz__hooks_send(lz_node_t *node, const char *key, const lz_value_t *value) {
    return node->hooks ? lz__hooks_send_slow(node, key, value) : LZ_OK;
}

// lz__hooks_receive runs node's receive hooks on msg: LZ_OK, or the
// refusal's code with the detail "'<key>' refused: <why>" (the caller
// drops the message, or answers a request with the error).
static inline int lz__hooks_receive(lz_node_t *node, const lz_message_t *msg) {
    return node->hooks ? lz__hooks_receive_slow(node, msg) : LZ_OK;
}

// lz__hooks_admit runs node's receive hooks on *msg: true when they take
// it; else the message is dropped (destroyed, counted in inbound_dropped,
// logged at most once a second) and *msg set to NULL.
static inline bool lz__hooks_admit(lz_node_t *node, lz_message_t **msg) {
    if (lz__hooks_receive(node, *msg) == LZ_OK) return true;
    lz__node_drop(node, "dropped a refused message: %s", lz_last_error());
    lz_message_destroy(msg);
    return false;
}

// lz__hooks_free frees node's hooks (at close).
void lz__hooks_free(lz_node_t *node);

#endif

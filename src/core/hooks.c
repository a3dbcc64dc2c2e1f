/* Node hooks: two short lists of (function, argument) run in the order
 * they were added. They are set up before traffic and read without a lock,
 * like a node's serializer. */
#include "core/hooks.h"

#include <stdlib.h>
#include <string.h>

#include "core/envelope.h"
#include "core/error.h"
#include "liberzmq/schema.h"
#include "serial/value.h"

typedef struct hook {
    union {
        lz_send_hook_fn send;
        lz_receive_hook_fn receive;
    } fn;
    void *arg;
} hook_t;

// A key's schema (lz_node_set_schema); key NULL: the default.
typedef struct keyed_schema {
    char *key;
    const lz_schema_t *schema;
} keyed_schema_t;

struct lz_hooks {
    hook_t *send, *receive;
    size_t send_count, receive_count;
    keyed_schema_t *schemas; // checked by two hooks of their own, added with the first
    size_t schema_count;
    bool schemas_hooked;     // those two hooks are in the lists
};

static int add(lz_node_t *node, hook_t **list, size_t *count, hook_t hook) {
    hook_t *grown = realloc(*list, (*count + 1) * sizeof *grown);
    if (!grown) return lz__fail(LZ_ENOMEM, "%s: out of memory", node->name);
    *list = grown;
    grown[(*count)++] = hook;
    return LZ_OK;
}

// hooks_of returns node's hooks, made on first use.
static struct lz_hooks *hooks_of(lz_node_t *node) {
    if (!node->hooks && !(node->hooks = calloc(1, sizeof *node->hooks)))
        return lz__fail_null(LZ_ENOMEM, "%s: out of memory", node->name);
    return node->hooks;
}

int lz_node_on_send(lz_node_t *node, lz_send_hook_fn fn, void *arg) {
    if (!node || !fn) return lz__fail(LZ_EINVAL, "lz_node_on_send: NULL node or function");
    struct lz_hooks *h = hooks_of(node);
    return h ? add(node, &h->send, &h->send_count, (hook_t){.fn.send = fn, .arg = arg}) : LZ_ENOMEM;
}

int lz_node_on_receive(lz_node_t *node, lz_receive_hook_fn fn, void *arg) {
    if (!node || !fn) return lz__fail(LZ_EINVAL, "lz_node_on_receive: NULL node or function");
    struct lz_hooks *h = hooks_of(node);
    return h ? add(node, &h->receive, &h->receive_count, (hook_t){.fn.receive = fn, .arg = arg}) : LZ_ENOMEM;
}

// refused turns a hook's non-zero result into the error its caller sees.
// The hook's own detail (lz_set_error, or what failed in it) says why; a
// sender's detail names the node, as every send error does, while a
// receive's goes into the node's own log line or error reply.
static int refused(const lz_node_t *sender, const char *key, int rc) {
    int code = rc < 0 ? rc : LZ_EVALIDATION;
    const char *why = *lz_last_error() ? lz_last_error() : lz_strerror(code);
    if (sender) return lz__fail(code, "%s: '%s' refused: %s", sender->name, key, why);
    return lz__fail(code, "'%s' refused: %s", key, why);
}

int lz__hooks_send_slow(lz_node_t *node, const char *key, const lz_value_t *value) {
    const struct lz_hooks *h = node->hooks;
    for (size_t i = 0; i < h->send_count; i++) {
        lz__error_clear();
        int rc = h->send[i].fn.send(node, key, value, h->send[i].arg);
        if (rc != 0) {
            LZ_COUNT(node, errors);
            return refused(node, key, rc);
        }
    }
    return LZ_OK;
}

int lz__hooks_receive_slow(lz_node_t *node, const lz_message_t *msg) {
    const struct lz_hooks *h = node->hooks;
    for (size_t i = 0; i < h->receive_count; i++) {
        lz__error_clear();
        int rc = h->receive[i].fn.receive(node, msg, h->receive[i].arg);
        if (rc != 0) return refused(NULL, lz_message_topic(msg), rc);
    }
    return LZ_OK;
}

/* ---- schemas ------------------------------------------------------------ */

static const lz_schema_t *schema_for(const struct lz_hooks *h, const char *key) {
    const lz_schema_t *fallback = NULL;
    for (size_t i = 0; i < h->schema_count; i++) {
        if (!h->schemas[i].key) fallback = h->schemas[i].schema;
        else if (strcmp(h->schemas[i].key, key) == 0) return h->schemas[i].schema;
    }
    return fallback;
}

static int check_schema(const struct lz_hooks *h, const char *key, const lz_value_t *value) {
    const lz_schema_t *schema = schema_for(h, key);
    if (!schema) return LZ_OK;
    return lz_schema_validate(schema, value ? value : &lz__value_null_constant); // absent data is sent as null
}

static int schema_on_send(lz_node_t *node, const char *key, const lz_value_t *value, void *arg) {
    (void)node;
    return check_schema(arg, key, value);
}

static int schema_on_receive(lz_node_t *node, const lz_message_t *msg, void *arg) {
    (void)node;
    return check_schema(arg, lz_message_topic(msg), lz_message_value(msg));
}

// replace_schema gives key a new schema if it has one already.
static bool replace_schema(struct lz_hooks *h, const char *key, const lz_schema_t *schema) {
    for (size_t i = 0; i < h->schema_count; i++) {
        const char *k = h->schemas[i].key;
        if ((!k && !key) || (k && key && strcmp(k, key) == 0)) {
            h->schemas[i].schema = schema;
            return true;
        }
    }
    return false;
}

int lz_node_set_schema(lz_node_t *node, const char *key, const lz_schema_t *schema) {
    if (!node || !schema) return lz__fail(LZ_EINVAL, "lz_node_set_schema: NULL node or schema");
    struct lz_hooks *h = hooks_of(node);
    if (!h) return LZ_ENOMEM;
    if (replace_schema(h, key, schema)) return LZ_OK;
    if (!h->schemas_hooked) {
        // Out of memory between the two, a later call adds the send hook
        // again: a second identical check, never a missing one.
        int rc = lz_node_on_send(node, schema_on_send, h);
        if (rc == LZ_OK) rc = lz_node_on_receive(node, schema_on_receive, h);
        if (rc != LZ_OK) return rc;
        h->schemas_hooked = true;
    }
    keyed_schema_t *grown = realloc(h->schemas, (h->schema_count + 1) * sizeof *grown);
    char *copy = key ? strdup(key) : NULL;
    if (!grown || (key && !copy)) {
        free(copy);
        if (grown) h->schemas = grown;
        return lz__fail(LZ_ENOMEM, "%s: out of memory", node->name);
    }
    h->schemas = grown;
    grown[h->schema_count++] = (keyed_schema_t){copy, schema};
    return LZ_OK;
}

void lz__hooks_free(lz_node_t *node) {
    if (!node->hooks) return;
    for (size_t i = 0; i < node->hooks->schema_count; i++) free(node->hooks->schemas[i].key);
    free(node->hooks->schemas);
    free(node->hooks->send);
    free(node->hooks->receive);
    free(node->hooks);
    node->hooks = NULL;
}

/* A policy plugin: "audit" watches every node of the context. It refuses
 * to send under a denied key prefix (LZ_AUDIT_DENY_PREFIX, default
 * "internal.": a topic, task type or action), counts what is sent,
 * refused and received and the spans that end, and logs the totals when
 * the context is destroyed:
 *   LIBERZMQ_PLUGINS__LOAD=build/examples/plugins/audit.so lz pub ...
 * docs/plugins.md walks through it. */
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "liberzmq.h"

// One per context that loads the plugin (lz_plugin_set_data): hooks of
// several threads count at once, so the counters are atomic.
typedef struct audit {
    char *deny_prefix;
    atomic_ulong sent, refused, received, spans;
} audit_t;

static int on_send(lz_node_t *node, const char *key, const lz_value_t *value, void *arg) {
    audit_t *audit = arg;
    (void)node;
    (void)value;
    if (*audit->deny_prefix && strncmp(key, audit->deny_prefix, strlen(audit->deny_prefix)) == 0) {
        audit->refused++;
        // The sender gets LZ_EVALIDATION and "<node>: '<key>' refused: <this>".
        return lz_set_error(LZ_EVALIDATION, "audit: keys under '%s' stay inside", audit->deny_prefix);
    }
    audit->sent++;
    return 0;
}

static int on_receive(lz_node_t *node, const lz_message_t *msg, void *arg) {
    audit_t *audit = arg;
    (void)node;
    (void)msg;
    audit->received++;
    return 0;
}

static void on_span(const lz_span_t *span, void *arg) {
    audit_t *audit = arg;
    (void)span;
    audit->spans++;
}

// on_node adds both hooks to every node: a node only runs the ones that
// apply to it (a subscriber never sends). Hooks go on before the node's
// constructor returns, so no message passes unwatched.
static int on_node(lz_node_t *node, const char *kind, void *arg) {
    (void)kind;
    int rc = lz_node_on_send(node, on_send, arg);
    return rc == LZ_OK ? lz_node_on_receive(node, on_receive, arg) : rc;
}

static int audit_init(lz_plugin_t *plugin) {
    const char *prefix = getenv("LZ_AUDIT_DENY_PREFIX");
    audit_t *audit = calloc(1, sizeof *audit);
    if (!audit || !(audit->deny_prefix = strdup(prefix ? prefix : "internal."))) {
        free(audit);
        return lz_set_error(LZ_ENOMEM, "out of memory");
    }
    int rc = lz_plugin_on_node(plugin, NULL, on_node, audit);
    if (rc == LZ_OK) rc = lz_plugin_on_span(plugin, on_span, audit);
    if (rc != LZ_OK) { // a failed init gets no fini: free what it made
        free(audit->deny_prefix);
        free(audit);
        return rc;
    }
    lz_plugin_set_data(plugin, audit);
    lz_plugin_log(plugin, LZ_LOG_DEBUG, "refusing keys under '%s'", audit->deny_prefix);
    return 0;
}

// audit_fini runs when the context is destroyed, after its last node.
static void audit_fini(lz_plugin_t *plugin) {
    audit_t *audit = lz_plugin_data(plugin);
    lz_plugin_log(plugin, LZ_LOG_INFO, "%lu sent, %lu refused, %lu received, %lu spans", atomic_load(&audit->sent),
                  atomic_load(&audit->refused), atomic_load(&audit->received), atomic_load(&audit->spans));
    free(audit->deny_prefix);
    free(audit);
}

LZ_PLUGIN_DEFINE("audit", "1.0.0", audit_init, audit_fini);

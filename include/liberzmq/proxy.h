/* liberzmq proxies: the two ZeroMQ devices as library calls.
 *
 * A forwarder (XSUB frontend, XPUB backend) joins many publishers to many
 * subscribers; subscriptions travel upstream to the publishers as libzmq's
 * own proxy sends them: a topic's first subscribe, and its unsubscribe when
 * its last subscriber drops it or goes (however often each subscribed it).
 * The forwarder reads every subscriber's subscribes, so a guarded one knows
 * who is behind each connection. A queue (ROUTER frontend, DEALER backend)
 * joins many clients to many servers, spreading requests over the servers
 * and routing replies back. Either can copy all traffic to a capture socket
 * (PUB) and be paused, resumed and stopped from any thread. */
#ifndef LIBERZMQ_PROXY_H
#define LIBERZMQ_PROXY_H

#include <stdint.h>

#include "context.h"
#include "node.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct lz_proxy lz_proxy_t;

typedef enum lz_proxy_kind {
    LZ_PROXY_FORWARDER = 0, // XSUB frontend (publishers connect) / XPUB backend (subscribers connect)
    LZ_PROXY_QUEUE = 1      // ROUTER frontend (clients connect) / DEALER backend (servers connect)
} lz_proxy_kind_t;

// lz_proxy_new creates a proxy of kind with its sockets on the given
// endpoint lists (see node.h; default side: bind for all three). capture
// may be NULL; otherwise every message passing either way is also
// published there (multipart, as it crossed). Nothing moves until
// lz_proxy_start. NULL on failure with the detail set.
lz_proxy_t *lz_proxy_new(lz_context_t *ctx, lz_proxy_kind_t kind, const char *frontend,
                         const char *backend, const char *capture);

// lz_proxy_destroy stops the proxy if running, closes its sockets, frees
// *proxy_p and sets it to NULL. NULL is a no-op.
void lz_proxy_destroy(lz_proxy_t **proxy_p);

// The proxy's sockets, for lz_node_endpoint and lz_node_metrics (the
// counters hold no proxied traffic: libzmq moves it; lz_proxy_statistics
// counts that). Do not bind, connect
// or use the socket while the proxy runs. capture is NULL without one.
lz_node_t *lz_proxy_frontend(lz_proxy_t *proxy);
lz_node_t *lz_proxy_backend(lz_proxy_t *proxy);
lz_node_t *lz_proxy_capture(lz_proxy_t *proxy);

// lz_proxy_start runs the proxy on its own thread, and returns once the
// thread takes commands. A stopped proxy starts again at once, on the
// sockets (and their peers) it had; a message it had taken in but not
// passed on at the stop (its destination had no room) goes out first,
// whole. Thread safe.
// LZ_ESTATE if running or being stopped, LZ_ECLOSED if the thread ended
// before it was ready (the frontend node logged why), LZ_EIO if no thread
// could be started, another code on a libzmq failure; nothing runs after
// a failure.
int lz_proxy_start(lz_proxy_t *proxy);

// lz_proxy_pause holds traffic (messages wait in libzmq's queues, up to the
// high water marks); lz_proxy_resume lets it flow again. Both hand the
// command to the proxy thread and return; it acts on it within
// microseconds. lz_proxy_stop ends the thread and waits for it; messages
// not moved yet wait in the sockets, and the proxy may be started again
// at once. Thread safe; LZ_ESTATE if not running. Pause,
// resume and statistics give LZ_ECLOSED when the proxy's thread has ended
// on a libzmq failure (the frontend node logs it, "proxy ended: ..."); stop
// then still joins it, and a start runs it again.
int lz_proxy_pause(lz_proxy_t *proxy);
int lz_proxy_resume(lz_proxy_t *proxy);
int lz_proxy_stop(lz_proxy_t *proxy);

// What a proxy moved, as libzmq's proxy counts it (a multipart message is
// one message; bytes are all its frames'). frontend_* are the frontend
// socket's: received from publishers or clients, sent back to them
// (subscriptions' replies for a forwarder: none; replies for a queue);
// backend_* the backend socket's (for a forwarder, received counts the
// subscribes and unsubscribes that went up: a topic's first and last).
typedef struct lz_proxy_stats {
    uint64_t frontend_messages_received, frontend_bytes_received;
    uint64_t frontend_messages_sent, frontend_bytes_sent;
    uint64_t backend_messages_received, backend_bytes_received;
    uint64_t backend_messages_sent, backend_bytes_sent;
} lz_proxy_stats_t;

// lz_proxy_statistics fills *stats with what the proxy has moved since it
// was last started (libzmq's STATISTICS command, answered by the proxy
// thread between messages). Thread safe. LZ_EINVAL for NULL arguments,
// LZ_ESTATE if the proxy is not running, LZ_ECLOSED if its thread has
// ended on a libzmq error (which the frontend node logged), LZ_ETIMEOUT if
// it has not answered within 5 s; *stats is untouched on failure.
int lz_proxy_statistics(lz_proxy_t *proxy, lz_proxy_stats_t *stats);

#ifdef __cplusplus
}
#endif
#endif

/* liberzmq nodes: what every pattern object (publisher, subscriber, pusher,
 * puller, server, client...) has in common. Each pattern type gives its
 * node with lz_<type>_node(); these functions then work on any of them.
 *
 * Endpoint lists, accepted by every constructor: comma-separated URLs, each
 * prefixed '@' to bind or '>' to connect ("@tcp://0.0.0.0:5556,>ipc:///tmp/a").
 * Without a prefix the pattern's natural side is used (publisher, puller and
 * server bind; subscriber, pusher and client connect). NULL means none yet
 * (lz_node_bind, lz_node_connect add them later), except for a client, a
 * dealer or a lock, whose endpoints are all given when they are made: an
 * empty list is LZ_EINVAL there.
 * A tcp URL must end in ":PORT" (0 to 65535, or '*' to bind a free one)
 * after a host that is not empty, an IPv6 one in brackets
 * ("tcp://[::1]:5556"); anything else is LZ_EINVAL, also for a connect,
 * which libzmq would otherwise accept and never complete. The list is
 * applied in order; a constructor whose list has an endpoint that fails
 * returns NULL with that endpoint's error and keeps none of the others: an
 * inproc name it bound before is free again when it returns, so a retry
 * (the list mended) may bind it at once. Destroying a node frees its inproc
 * names at once too; a tcp port or an ipc path is let go by libzmq's own
 * threads shortly after. */
#ifndef LIBERZMQ_NODE_H
#define LIBERZMQ_NODE_H

#include "message.h"
#include "metrics.h"
#include "value.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct lz_node lz_node_t;

// lz_node_bind binds to url, one endpoint without a prefix, not a list
// (tcp://host:port, tcp://host:* for a free port, ipc://path,
// inproc://name); a tcp host is an IP address, an interface name ("lo",
// "eth0") or '*', never resolved as a host name ("localhost" fails: no
// such device, and the detail says so). LZ_EINVAL for a malformed URL;
// LZ_ECONNECTION with the libzmq reason on other failures, which also count
// in failed_bind_count. A failure leaves the endpoints bound or connected
// before as they were. Thread safe. LZ_ESTATE on the nodes of a client, a
// dealer or a proxy, whose sockets their own threads run: give those every
// endpoint when creating them.
int lz_node_bind(lz_node_t *node, const char *url);

// lz_node_connect connects to url; libzmq reconnects by itself
// (zmq.reconnect_interval). LZ_EINVAL for a malformed URL. Thread safe.
// LZ_ESTATE on a client's, a dealer's or a proxy's node, as lz_node_bind.
int lz_node_connect(lz_node_t *node, const char *url);

// lz_node_endpoint returns the last endpoint bound, resolved
// ("tcp://127.0.0.1:41234" after binding "tcp://127.0.0.1:*"), or "" if
// none. Owned by the node; valid until the next bind. Thread safe.
const char *lz_node_endpoint(lz_node_t *node);

// lz_node_set_serializer chooses the codec by registry name; the default is
// serialization.default. LZ_ENOTFOUND for an unknown name. Set it before
// traffic flows; not synchronised with concurrent sends.
int lz_node_set_serializer(lz_node_t *node, const char *name);

// lz_node_serializer_name returns the current codec's name. Borrowed.
const char *lz_node_serializer_name(const lz_node_t *node);

// lz_node_set_name names the node in logs and metrics (default: the
// pattern, "pub", "sub"...). Copied, up to 63 bytes: a longer name is cut
// before the UTF-8 character that would not fit whole.
int lz_node_set_name(lz_node_t *node, const char *name);
const char *lz_node_name(const lz_node_t *node);

// lz_node_metrics fills *out with the node's counters. Thread safe.
int lz_node_metrics(const lz_node_t *node, lz_metrics_t *out);

// Hooks ("middleware"): functions a node runs on every value it sends and
// every message it receives, in the order they were added, for the
// cross-cutting checks of a service (validation, auditing, rate limits,
// logging). Add them before the node carries traffic (before start, or the
// first send or receive): the lists are read without a lock. A hook runs
// on the thread that sends or receives, must be thread safe when several
// do, and must not block. It must not destroy its node: a subscriber's or
// puller's destroy from its receive hook is refused (logged, LZ_ESTATE),
// as from its handlers. It refuses by returning non-zero: a negative
// lz_error_t, or any positive number for LZ_EVALIDATION; lz_set_error
// (error.h) in it says why. docs/hooks.md has examples.

// lz_send_hook_fn sees value before it is encoded. key is the topic
// (lz_pub_publish), the task type (lz_push_send, "default" when NULL), the
// action (lz_client_request and its async form) or "" (lz_pair_send,
// lz_dealer_send and lz_dealer_request).
// value and key are borrowed for the call; value may be NULL (null data).
typedef int (*lz_send_hook_fn)(lz_node_t *node, const char *key, const lz_value_t *value, void *arg);

// lz_receive_hook_fn sees a decoded message before any handler or caller
// does: subscribers and pullers (handlers, lz_sub_recv, lz_pull_recv;
// not the _bytes forms, which decode nothing), servers (each request, ping
// excepted), routers (lz_router_recv: topic "", lz_message_id the request
// id) and pairs (lz_pair_recv). msg is borrowed for the call.
typedef int (*lz_receive_hook_fn)(lz_node_t *node, const lz_message_t *msg, void *arg);

// lz_node_on_send adds a send hook; arg is passed along, not owned. A
// refused send returns the hook's code with the detail "<node>: '<key>'
// refused: <why>", sends nothing and counts in errors. LZ_EINVAL for a
// NULL node or fn, LZ_ENOMEM.
int lz_node_on_send(lz_node_t *node, lz_send_hook_fn fn, void *arg);

// lz_node_on_receive adds a receive hook. A refused message is dropped and
// counted in inbound_dropped (and logged, at most once a second), as a
// malformed one is; a refused request is answered with an error reply
// carrying the hook's code and the detail "'<key>' refused: <why>", so the
// client learns why at once.
// LZ_EINVAL for a NULL node or fn, LZ_ENOMEM.
int lz_node_on_receive(lz_node_t *node, lz_receive_hook_fn fn, void *arg);

// lz_node_zmq_socket returns the libzmq socket for options liberzmq does not
// cover. It is not thread safe: use it only while no other thread uses the node.
// Leave ZMQ_RCVTIMEO alone: liberzmq sets it for each timed receive and
// remembers the value it set.
void *lz_node_zmq_socket(lz_node_t *node);

#ifdef __cplusplus
}
#endif
#endif

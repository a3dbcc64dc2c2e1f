/* liberzmq nodes: what every pattern object (publisher, subscriber, pusher,
 * puller, server, client...) has in common. Each pattern type gives its
 * node with lz_<type>_node(); these functions then work on any of them.
 *
 * Endpoint lists, accepted by every constructor: comma-separated URLs, each
 * prefixed '@' to bind or '>' to connect ("@tcp://0.0.0.0:5556,>ipc:///tmp/a").
 * Without a prefix the pattern's natural side is used (publisher, puller and
 * server bind; subscriber, pusher and client connect). NULL means none yet.
 * A tcp URL must end in ":PORT" (0 to 65535, or '*' to bind a free one)
 * after a host that is not empty, an IPv6 one in brackets
 * ("tcp://[::1]:5556"); anything else is LZ_EINVAL, also for a connect,
 * which libzmq would otherwise accept and never complete. */
#ifndef LIBERZMQ_NODE_H
#define LIBERZMQ_NODE_H

#include "metrics.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct lz_node lz_node_t;

// lz_node_bind binds to url (tcp://host:port, tcp://host:* for a free port,
// ipc://path, inproc://name); a tcp host is an IP address, an interface name
// ("lo", "eth0") or '*', never resolved as a host name ("localhost" fails:
// no such device, and the detail says so). LZ_EINVAL for a malformed URL;
// LZ_ECONNECTION with the libzmq reason on other failures, which also count
// in failed_bind_count. Thread safe. LZ_ESTATE
// on the nodes of a client, a dealer or a proxy, whose sockets their own
// threads run: give those every endpoint when creating them.
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
// pattern, "pub", "sub"...). Copied.
int lz_node_set_name(lz_node_t *node, const char *name);
const char *lz_node_name(const lz_node_t *node);

// lz_node_metrics fills *out with the node's counters. Thread safe.
int lz_node_metrics(const lz_node_t *node, lz_metrics_t *out);

// lz_node_zmq_socket returns the libzmq socket for options liberzmq does not
// cover. It is not thread safe: use it only while no other thread uses the node.
// Leave ZMQ_RCVTIMEO alone: liberzmq sets it for each timed receive and
// remembers the value it set.
void *lz_node_zmq_socket(lz_node_t *node);

#ifdef __cplusplus
}
#endif
#endif

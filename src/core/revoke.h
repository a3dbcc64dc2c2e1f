/* Internal: cutting live connections that a reload's access rules refuse.
 * ZMTP authenticates a peer once, at its handshake; a socket the ZAP
 * handler guards keeps a table of its connections (by descriptor, from the
 * monitor's ACCEPTED, CONNECTED and DISCONNECTED events) with the identity
 * each one's first message shows (ZMQ_SRCFD, "User-Id"), so that a reload
 * can judge them all again and shut down the ones now refused. */
#ifndef LZ_CORE_REVOKE_H
#define LZ_CORE_REVOKE_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <zmq.h>

#include "core/security.h"

typedef struct lz_node lz_node_t;
typedef struct lz_conn lz_conn_t;

// A node's table of connections. Embedded in the node; inert
// (every call returns at once) until lz__conns_guard arms it.
typedef struct lz_conns {
    // Entries whose messages must be looked at: connections up whose
    // identity is not known yet (once the receive path drains, those that
    // wait for a drain too: it calls lz__conns_drained only while this is
    // not 0), and numbers a cut connection had, whose queued messages are
    // to be dropped (whichever connection has the number now) until a
    // drain proves none is left. The receive path reads only this while it
    // is 0.
    atomic_uint looks;
    atomic_int mode;      // the node's lz_secure_mode_t once guarded, else LZ_SECURE_UNSET
    pthread_mutex_t lock; // guards the entries (the monitor thread, receivers, a reload)
    lz_conn_t *slots;     // indexed by descriptor
    size_t capacity;
    unsigned doubt;      // messages a connection that ended can have left queued (revoke.c's top)
    uint64_t accepts;    // ACCEPTED (and CONNECTED) events recorded (each entry keeps the count at its own)
    uint64_t drain_from; // accepts as the receive path last found nothing queued (lz__conns_drained)
    uint64_t drained;    // the largest drain_from used: what entries up to it left is forgotten
    bool drains;         // the receive path has called lz__conns_drained (revoke.c's update_looked)
    unsigned cuts_left;  // entries whose cut connection's leftovers may still come (revoke.c's settle_cut)
} lz_conns_t;

// lz__conns_init readies an inert table; lz__conns_fini frees it (no
// other thread may use it any more).
void lz__conns_init(lz_conns_t *conns);
void lz__conns_fini(lz_conns_t *conns);

// lz__conns_guard arms the table for a node that became a CURVE server, a
// PLAIN server or a socket under ZAP (mode), before its first bind. inbound_hwm
// bounds what a connection that ended can still have queued (0: no bound),
// see lz__conns_look. Other modes leave it inert. Any thread.
void lz__conns_guard(lz_conns_t *conns, lz_secure_mode_t mode, int inbound_hwm);

// lz__conns_disarm makes the table inert and empty again, for a node whose
// first endpoint failed: its mode is unsettled (node.c), so the next one
// guards it anew. Any thread.
void lz__conns_disarm(lz_conns_t *conns);

// lz__conns_opened records a connection the socket accepted (ACCEPTED) or
// made (CONNECTED: only a socket the access rules judge with no mechanism
// of its own, LZ_SECURE_ZAP, is guarded and connects; the ZAP handler
// judged that connection's handshake as it judges an accepted one's),
// lz__conns_disconnected one that ended (DISCONNECTED). On the context's
// monitor thread; the event's value is the descriptor.
void lz__conns_opened(lz_conns_t *conns, int fd);
void lz__conns_disconnected(lz_conns_t *conns, int fd);

// lz__conns_forget empties the table when the node's socket closes.
void lz__conns_forget(lz_conns_t *conns);

// lz__conns_looking: the receive path's test, whether a received message
// must go through lz__conns_look. One relaxed load.
static inline bool lz__conns_looking(lz_conns_t *conns) {
    return __builtin_expect(atomic_load_explicit(&conns->looks, memory_order_relaxed) != 0, 0);
}

// lz__conns_drained tells the table that a receive on the node's socket
// found nothing queued (libzmq said EAGAIN). Every message received before
// it was looked at as it came (lz__conns_look), so the connections whose
// number the table had seen go to a later one (its ACCEPTED) by the
// previous such call have nothing left to come: the connections now on
// those numbers learn who they are from their next message, and a cut
// connection whose socket that call had seen gone (closed, or its number
// another's) has left nothing: its number is no longer looked at (revoke.c's
// top says why). Only from the receive path, right after that receive, by the
// socket's one reader at a time; only while lz__conns_looking (before its
// first call, and while nothing is looked at, nothing waits for one).
// Takes the table's lock.
void lz__conns_drained(lz_conns_t *conns);

// lz__conns_look looks at a message received on node (its first frame):
// true when it is to be dropped, its sender refused by the policy in force
// (what a cut connection still had queued); otherwise it may teach its
// connection's identity. It counts and logs the drop (inbound_dropped).
// Thread safe.
bool lz__conns_look(lz_node_t *node, zmq_msg_t *first);

// lz__conns_look_at is lz__conns_look for a message that came by descriptor
// fd, whose "User-Id" and "Peer-Address" property(msg, name) reads (only
// when its connection is looked at; NULL: none). Tests drive the table
// through it with messages of their own.
typedef const char *lz_msg_property_fn(const void *msg, const char *name);
bool lz__conns_look_at(lz_node_t *node, int fd, const void *msg, lz_msg_property_fn *property);

// lz__conns_judge judges every live connection of node again by now (the
// policy just installed; before, the one it replaced) and cuts, with
// shutdown(2) on libzmq's descriptor, each that now is refused, and each
// whose identity no message has shown yet (it authenticates again at its
// reconnect). Each cut is counted in connections_cut and logged (component
// "audit"). Returns how many it cut. On the monitor thread, after it has
// read the node's pending events.
size_t lz__conns_judge(lz_node_t *node, const lz_security_t *now, const lz_security_t *before);

#endif

/* Cutting live connections a reload's access rules refuse. A guarded
 * socket's incoming connections are kept by descriptor: the monitor's
 * ACCEPTED opens an entry, DISCONNECTED closes it, and the first message a
 * connection sends shows who it is (its ZAP user id: a CURVE key, a PLAIN
 * user name). A reload that may refuse someone admitted before judges every
 * open entry again; one now refused, or one whose identity no message has
 * shown, is shut down (shutdown(2): libzmq owns the descriptor, sees the
 * connection end and tears it down as any other), and its peer's reconnect
 * goes through the ZAP handler, which refuses a revoked peer for good.
 *
 * Descriptor numbers are reused, so two rules keep a wrong identity from
 * sticking to a connection. A cut checks that the descriptor is still the
 * socket the ACCEPTED event saw (its inode), so it never shuts down
 * anything else. And messages a connection that ended left queued carry
 * its old descriptor number: after a reuse, a message teaches the new
 * connection's identity only once it cannot be such a leftover (it names
 * someone else than the old connection, or more messages came than the old
 * one could have queued); until then the connection counts as unknown,
 * which a reload cuts: the worst case is an admitted peer reconnecting.
 * What a cut connection left queued is dropped whenever it comes: its
 * number stays looked at, through the connections that reuse it, each
 * message judged by its own User-Id. */
#include "core/revoke.h"

#include <limits.h>
#include <netdb.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>

#include "core/context.h"
#include "core/node.h"

enum { CONN_FREE = 0, CONN_OPEN, CONN_GONE, CONN_CUT };

struct lz_conn {
    unsigned char state;
    bool known;      // user is what its messages show (or, under ZAP, nothing is to be shown)
    bool looked;     // counted in the table's looks
    bool after_cut;  // a connection with this number was cut: what it left queued may still come
    unsigned doubt;  // messages still to see before one may teach user (see the top)
    ino_t inode;     // the socket's, when accepted: 0 when it could not be read
    char *user;      // the ZAP user id, once known
    char *previous;  // the user id of the connection this descriptor had before, while in doubt
};

void lz__conns_init(lz_conns_t *conns) {
    memset(conns, 0, sizeof *conns);
    atomic_init(&conns->looks, 0);
    atomic_init(&conns->mode, LZ_SECURE_UNSET);
    pthread_mutex_init(&conns->lock, NULL);
}

static void conn_clear(lz_conn_t *conn) {
    free(conn->user);
    free(conn->previous);
    memset(conn, 0, sizeof *conn);
}

void lz__conns_forget(lz_conns_t *conns) {
    pthread_mutex_lock(&conns->lock);
    for (size_t i = 0; i < conns->capacity; i++) conn_clear(&conns->slots[i]);
    atomic_store(&conns->looks, 0);
    pthread_mutex_unlock(&conns->lock);
}

void lz__conns_fini(lz_conns_t *conns) {
    lz__conns_forget(conns);
    free(conns->slots);
    conns->slots = NULL;
    conns->capacity = 0;
    pthread_mutex_destroy(&conns->lock);
}

void lz__conns_guard(lz_conns_t *conns, lz_secure_mode_t mode, int inbound_hwm) {
    if (!lz__security_mode_server(mode) && mode != LZ_SECURE_ZAP) return;
    pthread_mutex_lock(&conns->lock);
    // What a connection that ended can still have queued: its pipe's high
    // water mark, and the message its engine was pushing when it filled.
    conns->doubt = inbound_hwm > 0 && inbound_hwm < INT_MAX ? (unsigned)inbound_hwm + 1 : UINT_MAX;
    pthread_mutex_unlock(&conns->lock);
    atomic_store(&conns->mode, mode);
}

static lz_secure_mode_t guarded_mode(lz_conns_t *conns) { return atomic_load(&conns->mode); }

static void set_looked(lz_conns_t *conns, lz_conn_t *conn, bool looked) {
    if (conn->looked == looked) return;
    conn->looked = looked;
    if (looked) atomic_fetch_add_explicit(&conns->looks, 1, memory_order_relaxed);
    else atomic_fetch_sub_explicit(&conns->looks, 1, memory_order_relaxed);
}

// slot returns fd's entry, growing the table to hold it; NULL when out of
// memory (that connection then goes unwatched). Lock held.
static lz_conn_t *slot(lz_conns_t *conns, int fd) {
    if ((size_t)fd < conns->capacity) return &conns->slots[fd];
    size_t capacity = conns->capacity ? conns->capacity : 64;
    while (capacity <= (size_t)fd) capacity *= 2;
    lz_conn_t *grown = realloc(conns->slots, capacity * sizeof *grown);
    if (!grown) return NULL;
    memset(grown + conns->capacity, 0, (capacity - conns->capacity) * sizeof *grown);
    conns->slots = grown;
    conns->capacity = capacity;
    return &grown[fd];
}

static ino_t socket_inode(int fd) {
    struct stat st;
    return fstat(fd, &st) == 0 && S_ISSOCK(st.st_mode) ? st.st_ino : 0;
}

void lz__conns_accepted(lz_conns_t *conns, int fd) {
    lz_secure_mode_t mode = guarded_mode(conns);
    if (fd < 0 || mode == LZ_SECURE_UNSET) return;
    pthread_mutex_lock(&conns->lock);
    lz_conn_t *conn = slot(conns, fd);
    if (conn) {
        bool reused = conn->state != CONN_FREE;
        char *previous = conn->known ? conn->user : NULL;
        if (!previous) free(conn->user);
        free(conn->previous);
        *conn = (lz_conn_t){
            .state = CONN_OPEN,
            .known = mode == LZ_SECURE_ZAP, // nothing to learn: a NULL peer is judged by its address alone
            .looked = conn->looked,
            .after_cut = conn->after_cut,
            .doubt = reused ? conns->doubt : 0,
            .inode = socket_inode(fd),
            .previous = previous,
        };
        set_looked(conns, conn, !conn->known || conn->after_cut);
    }
    pthread_mutex_unlock(&conns->lock);
}

void lz__conns_disconnected(lz_conns_t *conns, int fd) {
    if (fd < 0 || guarded_mode(conns) == LZ_SECURE_UNSET) return;
    pthread_mutex_lock(&conns->lock);
    // A cut entry stays cut.
    lz_conn_t *conn = (size_t)fd < conns->capacity ? &conns->slots[fd] : NULL;
    if (conn && conn->state == CONN_OPEN) {
        conn->state = CONN_GONE;
        set_looked(conns, conn, conn->after_cut);
    }
    pthread_mutex_unlock(&conns->lock);
}

// learn takes user as the connection's identity, unless the message may be
// one its descriptor's previous connection left queued (see the top).
static void learn(lz_conns_t *conns, lz_conn_t *conn, const char *user) {
    bool maybe_previous = !conn->previous || strcmp(user, conn->previous) == 0;
    if (conn->doubt && maybe_previous && --conn->doubt) return;
    conn->user = strdup(user);
    if (!conn->user) return; // looked at again with its next message
    conn->known = true;
    set_looked(conns, conn, conn->after_cut);
}

bool lz__conns_look(lz_node_t *node, zmq_msg_t *first) {
    lz_conns_t *conns = &node->conns;
    lz_secure_mode_t mode = guarded_mode(conns);
    int fd = zmq_msg_get(first, ZMQ_SRCFD);
    const char *refusal = NULL, *address = NULL;
    pthread_mutex_lock(&conns->lock);
    lz_conn_t *conn = fd >= 0 && (size_t)fd < conns->capacity ? &conns->slots[fd] : NULL;
    if (conn && conn->looked) {
        // The message's own metadata names its sender, whichever
        // connection of this descriptor number it came by.
        const char *user = zmq_msg_gets(first, "User-Id");
        address = zmq_msg_gets(first, "Peer-Address");
        if (user || mode == LZ_SECURE_ZAP) {
            lz_security_t *policy = lz__context_policy(node->ctx);
            refusal = lz__security_judge_peer(policy, NULL, mode, user, address);
            lz__security_destroy(&policy);
        }
        if (!refusal && user && conn->state == CONN_OPEN && !conn->known) learn(conns, conn, user);
    }
    pthread_mutex_unlock(&conns->lock);
    if (refusal)
        lz__node_drop(node, "dropped a message from refused peer %s: %s", address ? address : "(no address)", refusal);
    return refusal != NULL;
}

// peer_address writes the address of the peer on fd into buf as libzmq
// writes a ZAP request's (getnameinfo's numeric form: "localhost" for ipc,
// "fe80::1%eth0" for a link-local peer), so both are judged alike; "" when
// it cannot be read, which address rules refuse.
static void peer_address(int fd, char *buf, size_t size) {
    struct sockaddr_storage addr;
    socklen_t len = sizeof addr;
    buf[0] = '\0';
    if (getpeername(fd, (struct sockaddr *)&addr, &len) != 0 ||
        getnameinfo((struct sockaddr *)&addr, len, buf, (socklen_t)size, NULL, 0, NI_NUMERICHOST) != 0)
        buf[0] = '\0';
}

static const char *mechanism_name(lz_secure_mode_t mode) {
    return mode == LZ_SECURE_CURVE_SERVER    ? "CURVE"
           : mode == LZ_SECURE_PLAIN_SERVER  ? "PLAIN"
           : mode == LZ_SECURE_GSSAPI_SERVER ? "GSSAPI"
                                             : "NULL";
}

// cut shuts the connection down and says so in the audit log.
static void cut(lz_node_t *node, lz_conn_t *conn, int fd, const char *address, const char *refusal) {
    lz_conns_t *conns = &node->conns;
    lz_secure_mode_t mode = guarded_mode(conns);
    shutdown(fd, SHUT_RDWR);
    conn->state = CONN_CUT;
    conn->after_cut = true;
    set_looked(conns, conn, true);
    const char *mechanism = mechanism_name(mode);
    LZ_LOG(node->log, LZ_LOG_WARNING, "audit", "cut peer %s mechanism %s %s %s on %s: %s",
           *address ? address : "(no address)", mechanism, lz__security_credential_label(mechanism),
           conn->user ? conn->user : "-", node->name, refusal);
    // Counted after the audit line, so whoever sees the count (a watched
    // file's reload runs on another thread) also finds the line written.
    LZ_COUNT(node, connections_cut);
}

size_t lz__conns_judge(lz_node_t *node, const lz_security_t *now, const lz_security_t *before) {
    lz_conns_t *conns = &node->conns;
    lz_secure_mode_t mode = guarded_mode(conns);
    if (mode == LZ_SECURE_UNSET) return 0;
    size_t count = 0;
    pthread_mutex_lock(&conns->lock);
    for (size_t fd = 0; fd < conns->capacity; fd++) {
        lz_conn_t *conn = &conns->slots[fd];
        // Still the socket accepted? Else it ended and its descriptor went
        // on to something else, which is none of ours to cut.
        if (conn->state != CONN_OPEN || !conn->inode || socket_inode((int)fd) != conn->inode) continue;
        char address[NI_MAXHOST];
        peer_address((int)fd, address, sizeof address);
        const char *user = conn->known ? conn->user : NULL;
        const char *refusal = lz__security_judge_peer(now, before, mode, user, address);
        if (!refusal) continue;
        cut(node, conn, (int)fd, address, refusal);
        count++;
    }
    pthread_mutex_unlock(&conns->lock);
    return count;
}

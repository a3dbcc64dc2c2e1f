/* Cutting live connections a reload's access rules refuse. A guarded
 * socket's connections are kept by descriptor: the monitor's ACCEPTED
 * opens an entry (and CONNECTED, for a socket the access rules judge with
 * no mechanism of its own, the one guarded socket that may connect: the
 * ZAP handler judges its own connections too), DISCONNECTED closes it,
 * and the first message a connection sends shows who it is (its ZAP user
 * id: a CURVE key, a PLAIN user name). ACCEPTED below stands for both: the
 * reasoning about descriptor numbers holds for a connection made as for
 * one accepted. A reload that may refuse someone admitted before judges every
 * open entry again; one now refused, or one whose identity no message has
 * shown, is shut down (shutdown(2): libzmq owns the descriptor, sees the
 * connection end and tears it down as any other), and its peer's reconnect
 * goes through the ZAP handler, which refuses a revoked peer for good.
 *
 * Descriptor numbers are reused, so a wrong identity must not stick to a
 * connection. A cut checks that the descriptor is still the socket the
 * ACCEPTED event saw (its inode), so it never shuts down anything else, and
 * so does a message before it teaches: a later connection's, read before
 * the monitor saw this one end, carries the same number. Messages the
 * connections that ended left queued carry their numbers too, so a number
 * keeps what its earlier connections may have left: a pipe's worth each,
 * and the user id they showed, when each showed the same. A message
 * teaches a connection on a reused number only if it cannot be one of
 * those: it names someone else than they did, or it makes a run of
 * messages naming one user id longer than they can have left. One that
 * cannot be taught so (they showed several user ids or none and may have
 * left more than a pipe's worth; they showed none and its messages named
 * two; or a pipe's worth and one more did not do) counts as unknown, which
 * a reload cuts: the worst case is an admitted peer reconnecting.
 *
 * That lasts until the receiver has read what they left (lz__conns_drained).
 * libzmq closes a connection's descriptor only after its engine has handed
 * its pipe all it decoded, so the number's next ACCEPTED comes after the
 * earlier connections' last messages were queued; and a receive that
 * finds nothing has processed libzmq's pending commands (the wake-ups of
 * those pipes among them) and found every pipe empty. Once a receive begun
 * after the monitor read the ACCEPTED of the connection now on a number
 * finds nothing, every message the number's earlier connections left was
 * received, and looked at as it was: its connection learns from its next
 * message. A DISCONNECTED proves nothing: libzmq sends it before the
 * engine's last hand-over (stream_engine_base_t::error). What a cut
 * connection left queued is dropped whenever it comes: its number stays
 * looked at, through the connections that reuse it, each message judged by
 * its own User-Id, until the same proof says it all came. The cut socket
 * seen gone from the number (another socket there at the number's next
 * ACCEPTED, or at a drain: closed, so after its last hand-over), a receive
 * begun after that which finds nothing has received all it left. */
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
    bool known;        // user is what its messages show (or, under ZAP, nothing is to be shown)
    bool learns;       // a message may still teach user (see learn)
    bool looked;       // counted in the table's looks
    bool after_cut;    // a connection with this number was cut: what it left queued may still come
    uint64_t cut_gone; // accepts when the cut socket was seen gone from the number (0: not yet; inode is its)
    unsigned queued;   // messages the number's earlier connections may still have queued (0: none)
    unsigned run;      // messages in a row naming queued_by (or first), each maybe one of theirs
    uint64_t order;    // its ACCEPTED's place in the table's accepts: a drain from there on forgets queued
    ino_t inode;       // the socket's, when accepted: 0 when it could not be read
    char *user;        // the ZAP user id, once known
    char *queued_by;   // the user id all those earlier connections showed, when each showed that one
    char *first;       // without queued_by: the user id this connection's first message named
};

void lz__conns_init(lz_conns_t *conns) {
    memset(conns, 0, sizeof *conns);
    atomic_init(&conns->looks, 0);
    atomic_init(&conns->mode, LZ_SECURE_UNSET);
    pthread_mutex_init(&conns->lock, NULL);
}

static void conn_clear(lz_conn_t *conn) {
    free(conn->user);
    free(conn->queued_by);
    free(conn->first);
    memset(conn, 0, sizeof *conn);
}

void lz__conns_forget(lz_conns_t *conns) {
    pthread_mutex_lock(&conns->lock);
    for (size_t i = 0; i < conns->capacity; i++) conn_clear(&conns->slots[i]);
    conns->cuts_left = 0;
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

void lz__conns_disarm(lz_conns_t *conns) {
    atomic_store(&conns->mode, LZ_SECURE_UNSET);
    lz__conns_forget(conns);
}

static lz_secure_mode_t guarded_mode(lz_conns_t *conns) { return atomic_load(&conns->mode); }

static void set_looked(lz_conns_t *conns, lz_conn_t *conn, bool looked) {
    if (conn->looked == looked) return;
    conn->looked = looked;
    if (looked) atomic_fetch_add_explicit(&conns->looks, 1, memory_order_relaxed);
    else atomic_fetch_sub_explicit(&conns->looks, 1, memory_order_relaxed);
}

// update_looked looks at conn's messages while they may teach it, while it
// waits for a drain to learn (see the top) on a node whose receive path
// drains (elsewhere nothing would end the wait, and every message would
// pay for the look), and after a cut.
static void update_looked(lz_conns_t *conns, lz_conn_t *conn) {
    bool unknown = conn->state == CONN_OPEN && !conn->known && conn->inode;
    bool waits = conns->drains && conn->queued;
    set_looked(conns, conn, conn->after_cut || (unknown && (conn->learns || waits)));
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

static unsigned add_capped(unsigned a, unsigned b) { return a > UINT_MAX - b ? UINT_MAX : a + b; }

// remember_ended makes the entry of a connection that ended part of what
// the number's next connection must doubt: it may have left a pipe's worth.
// saw_next: its ACCEPTED came after it had ended, when the next connection
// had the number already, so what it learned may be that one's.
static void remember_ended(lz_conns_t *conns, lz_conn_t *conn, bool saw_next) {
    char *user = conn->known && !saw_next ? conn->user : NULL;
    if (!conn->queued) {
        conn->queued_by = user;
    } else if (!user || !conn->queued_by || strcmp(user, conn->queued_by) != 0) {
        free(conn->queued_by); // several user ids, or one not known
        conn->queued_by = NULL;
    }
    if (conn->user != conn->queued_by) free(conn->user);
    conn->user = NULL;
    free(conn->first);
    conn->first = NULL;
    conn->queued = add_capped(conn->queued, conns->doubt);
}

// may_learn: whether a message can show who conn is, on a number whose
// earlier connections may have left some (see teaches): one naming someone
// else than they all showed, or a run too long to be theirs, if they are
// no more than one connection's.
static bool may_learn(const lz_conns_t *conns, const lz_conn_t *conn) {
    return conn->queued_by || (conn->queued <= conns->doubt && conn->queued < UINT_MAX);
}

void lz__conns_opened(lz_conns_t *conns, int fd) {
    lz_secure_mode_t mode = guarded_mode(conns);
    if (fd < 0 || mode == LZ_SECURE_UNSET) return;
    pthread_mutex_lock(&conns->lock);
    lz_conn_t *conn = slot(conns, fd);
    if (conn) {
        ino_t inode = socket_inode(fd);
        if (conn->state != CONN_FREE) remember_ended(conns, conn, inode == conn->inode);
        bool known = mode == LZ_SECURE_ZAP; // nothing to learn: a NULL peer is judged by its address alone
        uint64_t order = ++conns->accepts;
        // Another socket than the cut one on its number: that one was closed (the same: this is its own
        // ACCEPTED, read late).
        bool cut_socket_gone = conn->after_cut && !conn->cut_gone && inode != conn->inode;
        *conn = (lz_conn_t){
            .state = CONN_OPEN,
            .known = known,
            .learns = !known && inode && may_learn(conns, conn), // one never judged needs no name
            .looked = conn->looked,
            .after_cut = conn->after_cut,
            .cut_gone = cut_socket_gone ? order : conn->cut_gone,
            .queued = conn->queued,
            .order = order,
            .inode = inode,
            .queued_by = conn->queued_by,
        };
        update_looked(conns, conn);
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
        update_looked(conns, conn);
    }
    pthread_mutex_unlock(&conns->lock);
}

static void stop_learning(lz_conns_t *conns, lz_conn_t *conn) {
    conn->learns = false;
    update_looked(conns, conn);
}

// teaches: whether a message naming user surely is conn's own, not one its
// number's earlier connections left queued (see the top). A run of
// messages naming their one user id, or when they showed none the one
// conn's first message named, longer than they can have left holds one of
// conn's own. Once no run can get so long any more (a second user id, or
// more than one connection can leave), conn learns nothing.
static bool teaches(lz_conns_t *conns, lz_conn_t *conn, const char *user) {
    if (!conn->queued) return true;
    if (conn->queued_by && strcmp(user, conn->queued_by) != 0) return true;
    if (!conn->queued_by && !conn->first) conn->first = strdup(user);
    const char *run_of = conn->queued_by ? conn->queued_by : conn->first;
    if (!run_of) return false; // out of memory: counted from the next one
    if (strcmp(user, run_of) != 0) {
        stop_learning(conns, conn);
        return false;
    }
    if (++conn->run > conn->queued) return true;
    if (conn->run > conns->doubt) stop_learning(conns, conn);
    return false;
}

// learn takes user, a message's on fd, as conn's identity once the message
// cannot be another connection's: one of those before it on the number,
// or one after it, read before the monitor saw it end.
static void learn(lz_conns_t *conns, lz_conn_t *conn, int fd, const char *user) {
    if (!teaches(conns, conn, user) || !conn->inode || socket_inode(fd) != conn->inode) return;
    conn->user = strdup(user);
    if (!conn->user) return; // looked at again with its next message
    conn->known = true;
    stop_learning(conns, conn);
}

// forget_queued: nothing the number's earlier connections sent is queued
// any more, so a message on it is conn's own (see the top).
static void forget_queued(lz_conn_t *conn) {
    free(conn->queued_by);
    free(conn->first);
    conn->queued_by = conn->first = NULL;
    conn->queued = conn->run = 0;
    conn->learns = conn->state == CONN_OPEN && !conn->known && conn->inode;
}

// settle_cut ends the look at a cut connection's number once a receive
// begun after its socket was seen gone (at accepts cut_gone, which from
// has reached) found nothing queued: all it left was received (see the
// top). Until then it looks whether the socket is gone now, which the next
// such receive proves. Lock held.
static void settle_cut(lz_conns_t *conns, lz_conn_t *conn, int fd, uint64_t from) {
    if (conn->cut_gone && conn->cut_gone <= from) {
        conn->after_cut = false;
        conn->cut_gone = 0;
        conns->cuts_left--;
    } else if (!conn->cut_gone && socket_inode(fd) != conn->inode) {
        conn->cut_gone = conns->accepts; // from reaches it at the next call
    }
}

void lz__conns_drained(lz_conns_t *conns) {
    pthread_mutex_lock(&conns->lock);
    // Read by the previous call, so before this receive began. Each entry's
    // queued is forgotten by the first drain that may; the first drain of
    // all also starts looking at the connections that wait for one.
    uint64_t from = conns->drain_from;
    if (from > conns->drained || !conns->drains || conns->cuts_left) {
        conns->drains = true;
        for (size_t fd = 0; fd < conns->capacity; fd++) {
            lz_conn_t *conn = &conns->slots[fd];
            if (conn->queued && conn->order <= from) forget_queued(conn);
            if (conn->after_cut) settle_cut(conns, conn, (int)fd, from);
            update_looked(conns, conn);
        }
        conns->drained = from;
    }
    conns->drain_from = conns->accepts;
    pthread_mutex_unlock(&conns->lock);
}

static const char *msg_property(const void *msg, const char *name) { return zmq_msg_gets(msg, name); }

bool lz__conns_look(lz_node_t *node, zmq_msg_t *first) {
    return lz__conns_look_at(node, zmq_msg_get(first, ZMQ_SRCFD), first, msg_property);
}

bool lz__conns_look_at(lz_node_t *node, int fd, const void *msg, lz_msg_property_fn *property) {
    lz_conns_t *conns = &node->conns;
    lz_secure_mode_t mode = guarded_mode(conns);
    const char *refusal = NULL, *address = NULL;
    pthread_mutex_lock(&conns->lock);
    lz_conn_t *conn = fd >= 0 && (size_t)fd < conns->capacity ? &conns->slots[fd] : NULL;
    if (conn && conn->looked) {
        // The message's own metadata names its sender, whichever
        // connection of this descriptor number it came by.
        const char *user = property(msg, "User-Id");
        address = property(msg, "Peer-Address");
        if (user || mode == LZ_SECURE_ZAP) {
            lz_security_t *policy = lz__context_policy(node->ctx);
            refusal = lz__security_judge_peer(policy, NULL, mode, user, address);
            lz__security_destroy(&policy);
        }
        if (!refusal && user && conn->state == CONN_OPEN && conn->learns) learn(conns, conn, fd, user);
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

// cut shuts the connection down and says so in the audit log, the user id
// escaped as the handler's own audit lines show it: a peer chose it.
static void cut(lz_node_t *node, lz_conn_t *conn, int fd, const char *address, const char *refusal) {
    lz_conns_t *conns = &node->conns;
    lz_secure_mode_t mode = guarded_mode(conns);
    shutdown(fd, SHUT_RDWR);
    conn->state = CONN_CUT;
    if (!conn->after_cut) conns->cuts_left++;
    conn->after_cut = true;
    conn->cut_gone = 0; // to be seen gone anew: this socket, closed, has left all the number's earlier ones did
    update_looked(conns, conn);
    const char *mechanism = mechanism_name(mode);
    char user[LZ_PLAIN_TEXT_MAX * 4 + 1]; // a ZAP user id: at most a PLAIN name's length (security.c's reply)
    if (conn->user) lz__security_escape(conn->user, strlen(conn->user), user, sizeof user);
    LZ_LOG(node->log, LZ_LOG_WARNING, "audit", "cut peer %s mechanism %s %s %s on %s: %s",
           *address ? address : "(no address)", mechanism, lz__security_credential_label(mechanism),
           conn->user ? user : "-", node->name, refusal);
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

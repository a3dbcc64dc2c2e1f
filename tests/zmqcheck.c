/* zmqcheck: makes libzmq's rule "a socket is used by one thread at a time"
 * something ThreadSanitizer checks. Linked into every program of the
 * LZ_TSAN build (lz_program in CMakeLists.txt), where its zmq_* functions
 * stand in for libzmq's: each call that takes a socket writes, at its start
 * and at its end, to a byte that stands for that socket (a cell made on
 * the socket's first call, dropped at zmq_close), around libzmq's own
 * function. Calls made
 * under the node's lock, or otherwise ordered (thread start and join,
 * atomics), are ordered for TSan too; two threads in libzmq with one socket
 * at once, or one after the other with nothing ordering them, is reported
 * as a data race on the cell, with both call stacks. tests/tsan.supp hides
 * races inside libzmq (race:libzmq.so.5); these accesses are ours, so no
 * suppression covers them. libzmq's I/O threads reach a socket only
 * through its mailbox, so only what the application does is modelled.
 * poll(2) on the socket's ZMQ_FD (lz__node_wait) is not a use of the socket. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE // RTLD_NEXT
#endif
#include <dlfcn.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdlib.h>
#include <zmq.h>

typedef struct cell {
    volatile char used;
} cell_t;

#define SLOTS (1u << 16)
static _Atomic(uintptr_t) keys[SLOTS];
static _Atomic(cell_t *) cells[SLOTS];

static unsigned slot_of(const void *s) { return (unsigned)(((uintptr_t)s >> 4) * 2654435761u) & (SLOTS - 1); }

// find_slot: socket s's slot, claimed on its first use (SLOTS: the table is full).
static unsigned find_slot(const void *s) {
    for (unsigned i = slot_of(s), n = 0; n < SLOTS; i = (i + 1) & (SLOTS - 1), n++) {
        uintptr_t key = atomic_load_explicit(&keys[i], memory_order_relaxed);
        // A free slot is claimed; a lost claim leaves the winner in key.
        if (key == 0)
            atomic_compare_exchange_strong_explicit(&keys[i], &key, (uintptr_t)s, memory_order_relaxed,
                                                    memory_order_relaxed);
        if (key == 0 || key == (uintptr_t)s) return i;
    }
    return SLOTS;
}

// cell_of: the cell of socket s, made on its first use. (Not at zmq_socket:
// test_client has its own zmq_socket, for fault injection.)
static cell_t *cell_of(const void *s) {
    unsigned i = s ? find_slot(s) : SLOTS;
    if (i == SLOTS) return NULL;
    cell_t *c = atomic_load_explicit(&cells[i], memory_order_acquire);
    if (!c) {
        cell_t *made = calloc(1, sizeof *made), *none = NULL;
        c = atomic_compare_exchange_strong_explicit(&cells[i], &none, made, memory_order_acq_rel, memory_order_acquire)
                ? made
                : (free(made), none);
    }
    return c;
}

// forget_socket: a socket libzmq makes later at the same address starts
// with a fresh cell, with no history. The old cell stays allocated, since
// TSan may still report on it.
static void forget_socket(const void *s) {
    unsigned i = find_slot(s);
    if (i < SLOTS) atomic_store_explicit(&cells[i], NULL, memory_order_release);
}

// The two writes: separate functions so reports name them.
__attribute__((noinline)) static void zmqcheck_socket_enter(cell_t *c) {
    if (c) c->used = 1;
}
__attribute__((noinline)) static void zmqcheck_socket_leave(cell_t *c) {
    if (c) c->used = 0;
}

static __typeof__(&zmq_send) real_zmq_send;
static __typeof__(&zmq_send_const) real_zmq_send_const;
static __typeof__(&zmq_recv) real_zmq_recv;
static __typeof__(&zmq_setsockopt) real_zmq_setsockopt;
static __typeof__(&zmq_getsockopt) real_zmq_getsockopt;
static __typeof__(&zmq_bind) real_zmq_bind;
static __typeof__(&zmq_connect) real_zmq_connect;
static __typeof__(&zmq_unbind) real_zmq_unbind;
static __typeof__(&zmq_disconnect) real_zmq_disconnect;
static __typeof__(&zmq_socket_monitor) real_zmq_socket_monitor;
static __typeof__(&zmq_close) real_zmq_close;
static __typeof__(&zmq_msg_send) real_zmq_msg_send;
static __typeof__(&zmq_msg_recv) real_zmq_msg_recv;
static __typeof__(&zmq_poll) real_zmq_poll;
static __typeof__(&zmq_proxy_steerable) real_zmq_proxy_steerable;

// libzmq's own functions, found past ours. dlsym returns an object
// pointer; POSIX guarantees the conversion, stored through a void * view.
#define RESOLVE(name) (*(void **)&real_##name = dlsym(RTLD_NEXT, #name))
__attribute__((constructor)) static void resolve(void) {
    RESOLVE(zmq_send);
    RESOLVE(zmq_send_const);
    RESOLVE(zmq_recv);
    RESOLVE(zmq_setsockopt);
    RESOLVE(zmq_getsockopt);
    RESOLVE(zmq_bind);
    RESOLVE(zmq_connect);
    RESOLVE(zmq_unbind);
    RESOLVE(zmq_disconnect);
    RESOLVE(zmq_socket_monitor);
    RESOLVE(zmq_close);
    RESOLVE(zmq_msg_send);
    RESOLVE(zmq_msg_recv);
    RESOLVE(zmq_poll);
    RESOLVE(zmq_proxy_steerable);
}

// WRAP defines name as libzmq's, inside the enter and leave of the socket
// its parameters call s.
#define WRAP(ret, name, params, args)                                                                          \
    ret name params {                                                                                          \
        __typeof__(&name) real = real_##name;                                                                  \
        cell_t *c = cell_of(s);                                                                                \
        zmqcheck_socket_enter(c);                                                                              \
        ret r = real args;                                                                                     \
        zmqcheck_socket_leave(c);                                                                              \
        return r;                                                                                              \
    }

WRAP(int, zmq_send, (void *s, const void *buf, size_t len, int flags), (s, buf, len, flags))
WRAP(int, zmq_send_const, (void *s, const void *buf, size_t len, int flags), (s, buf, len, flags))
WRAP(int, zmq_recv, (void *s, void *buf, size_t len, int flags), (s, buf, len, flags))
WRAP(int, zmq_setsockopt, (void *s, int option, const void *value, size_t len), (s, option, value, len))
WRAP(int, zmq_getsockopt, (void *s, int option, void *value, size_t *len), (s, option, value, len))
WRAP(int, zmq_bind, (void *s, const char *addr), (s, addr))
WRAP(int, zmq_connect, (void *s, const char *addr), (s, addr))
WRAP(int, zmq_unbind, (void *s, const char *addr), (s, addr))
WRAP(int, zmq_disconnect, (void *s, const char *addr), (s, addr))
WRAP(int, zmq_socket_monitor, (void *s, const char *addr, int events), (s, addr, events))
WRAP(int, zmq_msg_send, (zmq_msg_t *msg, void *s, int flags), (msg, s, flags))
WRAP(int, zmq_msg_recv, (zmq_msg_t *msg, void *s, int flags), (msg, s, flags))

// zmq_close: the last use; no leave (libzmq's reaper owns it afterwards).
int zmq_close(void *s) {
    zmqcheck_socket_enter(cell_of(s));
    int r = real_zmq_close(s);
    forget_socket(s);
    return r;
}

// zmq_poll uses every socket item (it reads each one's events). It is
// zmqcheck_poll under a weak name: a test that injects faults into zmq_poll
// (test_proxy) defines its own and passes the calls it lets through here.
int zmqcheck_poll(zmq_pollitem_t *items, int nitems, long timeout);
int zmq_poll(zmq_pollitem_t *items, int nitems, long timeout) __attribute__((weak, alias("zmqcheck_poll")));
int zmqcheck_poll(zmq_pollitem_t *items, int nitems, long timeout) {
    __typeof__(&zmq_poll) real = real_zmq_poll;
    for (int i = 0; i < nitems; i++) zmqcheck_socket_enter(cell_of(items[i].socket));
    int r = real(items, nitems, timeout);
    for (int i = 0; i < nitems; i++) zmqcheck_socket_leave(cell_of(items[i].socket));
    return r;
}

// A proxy owns its sockets for as long as it runs.
int zmq_proxy_steerable(void *frontend, void *backend, void *capture, void *control) {
    __typeof__(&zmq_proxy_steerable) real = real_zmq_proxy_steerable;
    void *socks[4] = {frontend, backend, capture, control};
    for (int i = 0; i < 4; i++) zmqcheck_socket_enter(cell_of(socks[i]));
    int r = real(frontend, backend, capture, control);
    for (int i = 0; i < 4; i++) zmqcheck_socket_leave(cell_of(socks[i]));
    return r;
}

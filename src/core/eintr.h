/* Internal: libzmq calls restarted after a signal.
 *
 * A signal caught on a thread makes the libzmq call it is in fail with
 * EINTR, having done nothing: not only a receive that waits, but also a
 * send, bind, connect, monitor set-up or ZMQ_EVENTS look that does not,
 * since each of these first reads the socket's command mailbox and gives
 * up there. Programs
 * catch signals (a Ctrl-C handler, SIGCHLD from a child, a profiler's
 * SIGPROF), so a caller of ours must not see their node fail to bind, and
 * the exchanges with our own threads must not break half-way: a stop never
 * sent left lz_context_destroy joining a thread that never ended, and an
 * answer left unread was taken for the next request's. Such calls are
 * restarted until they succeed or fail for another reason. Our threads
 * block the usual signals (see thread.h) but not SIGPROF, so they restart
 * theirs too. A restarted receive's ZMQ_RCVTIMEO, or a poll's timeout,
 * starts again: used where that is harmless. */
#ifndef LZ_CORE_EINTR_H
#define LZ_CORE_EINTR_H

#include <errno.h>
#include <zmq.h>

// LZ_EINTR_RESTART sets rc to call's result, calling it again while it
// fails (a negative result) with EINTR.
#define LZ_EINTR_RESTART(rc, call)                                                                                     \
    do {                                                                                                               \
        (rc) = (call);                                                                                                 \
    } while ((rc) < 0 && zmq_errno() == EINTR)

#endif

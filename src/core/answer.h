/* Internal: a caller waiting for the answer of one of our own threads on
 * an inproc control pipe (the proxy's thread, the context's monitor). The
 * thread may end without answering, and the wait must then end too. */
#ifndef LZ_CORE_ANSWER_H
#define LZ_CORE_ANSWER_H

#include <stdatomic.h>
#include <stddef.h>

// lz__receive_answer receives the next frame on socket into buf, as
// zmq_recv does (size bytes at most), from the thread that sets *ended
// once it answers no more. socket's ZMQ_RCVTIMEO is a slice: after each,
// and after a signal (eintr.h), it looks again whether the thread has
// ended. It waits up to timeout_ms (-1: for as long as the thread runs).
// Returns the frame's size, or LZ_ECLOSED (the thread ended without
// answering), LZ_ETIMEOUT, or LZ_EZMQ (zmq_errno() says why). Sets no
// detail: the caller names what it waited for. An answer the thread sent
// before it set *ended is taken: inproc has it in the pipe by then.
int lz__receive_answer(void *socket, void *buf, size_t size, const atomic_bool *ended, int timeout_ms);

#endif

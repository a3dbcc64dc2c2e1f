/* Waiting for the answer of one of our own threads that may end first
 * (answer.h). */
#include "core/answer.h"

#include <errno.h>
#include <stdbool.h>
#include <zmq.h>

#include "core/eintr.h"
#include "core/node.h"
#include "liberzmq/error.h"

int lz__receive_answer(void *socket, void *buf, size_t size, const atomic_bool *ended, int timeout_ms) {
    int64_t deadline = lz__now_ms() + timeout_ms;
    for (;;) {
        // Looked at before the receive: an answer given before the thread
        // ended is then in the pipe, and a receive that does not wait still
        // takes it. Looked at after a failed receive, an answer that came
        // between the two would be lost.
        if (atomic_load(ended)) {
            int got;
            LZ_EINTR_RESTART(got, zmq_recv(socket, buf, size, ZMQ_DONTWAIT)); // waits for nothing
            return got >= 0 ? got : LZ_ECLOSED;
        }
        int got = zmq_recv(socket, buf, size, 0);
        if (got >= 0) return got;
        // A slice's end or a signal (a restart would start a full slice
        // again, and a storm of signals would starve the look at ended).
        if (zmq_errno() != EAGAIN && zmq_errno() != EINTR) return LZ_EZMQ;
        if (timeout_ms >= 0 && lz__now_ms() >= deadline) return LZ_ETIMEOUT;
    }
}

/* Internal: a wakeup is an eventfd one thread signals to end another's
 * poll(2) or zmq_poll: worker or caller threads handing work to an I/O
 * thread that owns a socket, a stop, a reader waiting outside its node's
 * lock (lz__node_wait). */
#ifndef LZ_CORE_WAKEUP_H
#define LZ_CORE_WAKEUP_H

#include <stdint.h>
#include <sys/eventfd.h>
#include <unistd.h>

// lz__wakeup_open: a new wakeup, or -1 with errno set.
static inline int lz__wakeup_open(void) { return eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC); }

static inline void lz__wakeup_signal(int fd) {
    uint64_t one = 1;
    // A full counter (never in practice) still leaves the fd readable.
    if (write(fd, &one, sizeof one) < 0) return;
}

// lz__wakeup_drain makes the wakeup unreadable again, however many signals
// it had.
static inline void lz__wakeup_drain(int fd) {
    uint64_t n;
    if (read(fd, &n, sizeof n) < 0) return;
}

static inline void lz__wakeup_close(int *fd) {
    if (*fd >= 0) close(*fd);
    *fd = -1;
}

#endif

/* Internal: setting a libzmq socket's integer options, the one call every
 * place that configures a socket shares. */
#ifndef LZ_CORE_SOCKOPT_H
#define LZ_CORE_SOCKOPT_H

#include <zmq.h>

// lz__sockopt_int sets option to value on socket: 0, or -1 with zmq_errno()
// set, as zmq_setsockopt.
static inline int lz__sockopt_int(void *socket, int option, int value) {
    return zmq_setsockopt(socket, option, &value, sizeof value);
}

#endif

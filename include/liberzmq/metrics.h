/* liberzmq metrics: counters every node keeps, summed per context.
 * The names are the MessageBus seed's, so dashboards built for the Python
 * services read ours unchanged. */
#ifndef LIBERZMQ_METRICS_H
#define LIBERZMQ_METRICS_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

// A snapshot of counters. Every field only grows, except active_connections.
typedef struct lz_metrics {
    uint64_t messages_sent;        // messages handed to libzmq
    uint64_t messages_received;    // messages read from libzmq (good or not)
    uint64_t bytes_sent;           // payload bytes (all frames) sent
    uint64_t bytes_received;       // payload bytes (all frames) received
    uint64_t errors;               // failures of any kind, incl. handler errors
    uint64_t outbound_dropped;     // messages we could not send (HWM, timeout, cooldown, peer gone)
    uint64_t inbound_dropped;      // received messages rejected: bad frames, undecodable
    uint64_t backpressure_events;  // sends refused by a full high water mark
    uint64_t failed_bind_count;    // bind attempts that failed
    int64_t active_connections;    // peers connected now (from the socket monitor)
    uint64_t request_timeouts;     // requests that ran out of time
    uint64_t retries;              // requests sent again
    uint64_t socket_rebuilds;      // sockets closed and opened again after a failure
    uint64_t late_replies;         // replies that came after their request was done
    uint64_t handshake_failures;   // peers refused or failing the security handshake (security.h)
    uint64_t task_retries;         // retries planned for tasks whose handler failed (pushpull.h)
    uint64_t dead_letters;         // tasks handed to the dead-letter sink after their last failure
    uint64_t config_reloads;       // the context's configuration reloads applied (context.h); nodes count 0
    uint64_t config_reload_errors; // reloads refused: a bad file, a bad value, an unreadable keys file
    uint64_t connections_cut;      // live connections a reload's access rules cut (security.h)
} lz_metrics_t;

// lz_metrics_to_json writes m as one JSON object into buf (at most size
// bytes including the NUL) and returns the length it needs, like snprintf,
// or a negative lz_error_t. Thread safe.
int lz_metrics_to_json(const lz_metrics_t *m, char *buf, size_t size);

// lz_metrics_add adds every counter of b to a (for summing nodes).
void lz_metrics_add(lz_metrics_t *a, const lz_metrics_t *b);

#ifdef __cplusplus
}
#endif
#endif

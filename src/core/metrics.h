/* Internal: the list of monotonic metric counters, so summing, snapshots
 * and JSON rendering are each written once. active_connections, the one
 * gauge, is handled beside them. */
#ifndef LZ_CORE_METRICS_H
#define LZ_CORE_METRICS_H

#define LZ_METRIC_COUNTERS(X)                                                   \
    X(messages_sent) X(messages_received) X(bytes_sent) X(bytes_received)       \
    X(errors) X(outbound_dropped) X(inbound_dropped) X(backpressure_events)     \
    X(failed_bind_count) X(request_timeouts) X(retries) X(socket_rebuilds)      \
    X(late_replies) X(handshake_failures) X(task_retries) X(dead_letters)       \
    X(config_reloads) X(config_reload_errors) X(connections_cut)

#endif

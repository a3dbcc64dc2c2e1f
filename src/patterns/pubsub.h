/* Internal: what other patterns need of the publisher. */
#ifndef LZ_PATTERNS_PUBSUB_H
#define LZ_PATTERNS_PUBSUB_H

#include "liberzmq/pubsub.h"

// lz__pub_publish_now is lz_pub_publish without waiting for room: where a
// subscriber's queue is full (XPUB_NODROP) it fails at once with
// LZ_EAGAIN, counted in backpressure_events and outbound_dropped, instead
// of waiting zmq.send_timeout. For a puller's stop, which hands every
// retry still waiting to the dead-letter publisher in turn: a subscriber
// that reads nothing would hold the stop for a send_timeout per letter.
int lz__pub_publish_now(lz_pub_t *pub, const char *topic, const lz_value_t *value);

#endif

/* liberzmq: ZeroMQ messaging made simple, fast and dependable.
 * The umbrella header; each concept also has its own. */
#ifndef LIBERZMQ_H
#define LIBERZMQ_H

#define LZ_VERSION_MAJOR 0
#define LZ_VERSION_MINOR 1
#define LZ_VERSION_PATCH 0
#define LZ_VERSION_STRING "0.1.0"

#include "liberzmq/error.h"
#include "liberzmq/config.h"
#include "liberzmq/log.h"
#include "liberzmq/metrics.h"
#include "liberzmq/value.h"
#include "liberzmq/serializer.h"
#include "liberzmq/protobuf.h"
#include "liberzmq/schema.h"
#include "liberzmq/context.h"
#include "liberzmq/message.h"
#include "liberzmq/node.h"
#include "liberzmq/pubsub.h"
#include "liberzmq/pushpull.h"
#include "liberzmq/reqrep.h"
#include "liberzmq/lock.h"
#include "liberzmq/dealer.h"
#include "liberzmq/pair.h"
#include "liberzmq/proxy.h"
#include "liberzmq/security.h"
#include "liberzmq/prometheus.h"
#include "liberzmq/trace.h"
#include "liberzmq/plugin.h"

#ifdef __cplusplus
extern "C" {
#endif

// lz_version returns LZ_VERSION_STRING of the library actually linked.
const char *lz_version(void);

#ifdef __cplusplus
}
#endif
#endif

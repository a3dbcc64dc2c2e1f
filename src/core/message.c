/* Received messages: construction, accessors and destruction. The payload
 * frame is moved in from the receive, so raw payloads are never copied. */
#include <stdlib.h>
#include <string.h>

#include "core/envelope.h"
#include "core/error.h"

lz_message_t *lz__message_new(void) {
    lz_message_t *msg = calloc(1, sizeof *msg);
    if (!msg) return lz__fail_null(LZ_ENOMEM, "message: out of memory");
    msg->topic = msg->topic_inline;
    msg->id = "";
    return msg;
}

void lz_message_destroy(lz_message_t **msg_p) {
    lz_message_t *msg = msg_p ? *msg_p : NULL;
    if (!msg) return;
    if (!msg->value_in_envelope) lz_value_destroy(&msg->value);
    lz_value_destroy(&msg->envelope);
    if (msg->topic != msg->topic_inline) free(msg->topic);
    if (msg->has_payload) zmq_msg_close(&msg->payload);
    free(msg);
    *msg_p = NULL;
}

const char *lz_message_topic(const lz_message_t *msg) { return msg ? msg->topic : ""; }
const char *lz_message_type(const lz_message_t *msg) { return lz_message_topic(msg); }
const lz_value_t *lz_message_envelope(const lz_message_t *msg) { return msg ? msg->envelope : NULL; }
const char *lz_message_id(const lz_message_t *msg) { return msg ? msg->id : ""; }
int64_t lz_message_priority(const lz_message_t *msg) { return msg ? msg->priority : 0; }
double lz_message_timestamp(const lz_message_t *msg) { return msg ? msg->timestamp : 0; }

const lz_value_t *lz_message_value(const lz_message_t *msg) { return msg ? msg->value : NULL; }

const void *lz_message_payload(const lz_message_t *msg, size_t *size) {
    if (!msg || !msg->has_payload) {
        if (size) *size = 0;
        return NULL;
    }
    if (size) *size = zmq_msg_size((zmq_msg_t *)&msg->payload);
    return zmq_msg_data((zmq_msg_t *)&msg->payload);
}

/* The envelope: what each pattern puts on the wire (docs/protocol.md).
 * Frames follow the Python LiberZMQ byte for byte where it defines them,
 * so Python and C services interoperate; extensions ride as extra keys. */
#include "core/envelope.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>

#include "core/error.h"
#include "serial/value.h"

/* ---- small shared pieces ------------------------------------------------ */

double lz__now_seconds(void) {
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

// A per-thread xorshift generator seeded from the kernel: ids must be
// unique, not secret, and getrandom per id would cost a system call.
static uint64_t next_random(void) {
    static _Thread_local uint64_t state;
    while (state == 0)
        if (getrandom(&state, sizeof state, 0) != (ssize_t)sizeof state) state = (uint64_t)time(NULL) | 1;
    state ^= state << 13;
    state ^= state >> 7;
    state ^= state << 17;
    return state;
}

void lz__uuid4(char out[37]) {
    uint64_t hi = next_random(), lo = next_random();
    hi = (hi & ~UINT64_C(0xF000)) | UINT64_C(0x4000);                   // version 4
    lo = (lo & ~(UINT64_C(0xC) << 60)) | (UINT64_C(0x8) << 60);         // variant 10
    snprintf(out, 37, "%08x-%04x-%04x-%04x-%012llx", (unsigned)(hi >> 32), (unsigned)(hi >> 16) & 0xFFFF,
             (unsigned)hi & 0xFFFF, (unsigned)(lo >> 48), (unsigned long long)(lo & UINT64_C(0xFFFFFFFFFFFF)));
}

bool lz__utf8_valid(const void *data, size_t size) {
    const unsigned char *p = data, *end = p + size;
    while (p < end) {
        unsigned c = *p++;
        if (c < 0x80) continue;
        size_t n = c >= 0xF0 && c <= 0xF4 ? 3 : c >= 0xE0 ? 2 : c >= 0xC2 && c < 0xE0 ? 1 : 0;
        if (n == 0 || (size_t)(end - p) < n) return false;
        unsigned cp = c & (0x3F >> n);
        for (size_t i = 0; i < n; i++, p++) {
            if ((*p & 0xC0) != 0x80) return false;
            cp = (cp << 6) | (*p & 0x3F);
        }
        // Overlong forms, surrogates and values past U+10FFFF are not UTF-8.
        if ((n == 2 && cp < 0x800) || (n == 3 && (cp < 0x10000 || cp > 0x10FFFF)) ||
            (cp >= 0xD800 && cp <= 0xDFFF))
            return false;
    }
    return true;
}

static int set_topic(lz_message_t *msg, const void *data, size_t size) {
    if (memchr(data, '\0', size) || !lz__utf8_valid(data, size))
        return lz__fail(LZ_EPROTOCOL, "topic is not UTF-8 text");
    if (size >= sizeof msg->topic_inline) {
        msg->topic = malloc(size + 1);
        if (!msg->topic) {
            msg->topic = msg->topic_inline;
            return lz__fail(LZ_ENOMEM, "message: out of memory");
        }
    }
    memcpy(msg->topic, data, size);
    msg->topic[size] = '\0';
    return LZ_OK;
}

// take_payload moves frame into a new message and decodes it.
static int take_payload(const lz_serializer_t *serializer, zmq_msg_t *frame, lz_message_t **out,
                        lz_value_t **decoded) {
    lz_message_t *msg = lz__message_new();
    if (!msg) return LZ_ENOMEM;
    zmq_msg_init(&msg->payload);
    zmq_msg_move(&msg->payload, frame);
    msg->has_payload = true;
    int rc = lz_serializer_decode(serializer, zmq_msg_data(&msg->payload), zmq_msg_size(&msg->payload), decoded);
    if (rc != LZ_OK) {
        lz_message_destroy(&msg);
        return rc;
    }
    *out = msg;
    return LZ_OK;
}

static int fail_message(lz_message_t **msg_p, int rc) {
    lz_message_destroy(msg_p);
    return rc;
}

// lift_envelope keeps object as the message's envelope and makes its member
// "data" (or null) the message's value, and reads the optional fields.
static int lift_envelope(lz_message_t *msg, lz_value_t *object, const char *id_key) {
    msg->envelope = object;
    msg->value = lz__value_object_take(object, "data");
    if (!msg->value && !(msg->value = lz_value_null())) return lz__fail(LZ_ENOMEM, "message: out of memory");
    msg->id = lz_value_find_string(object, id_key, "");
    msg->priority = lz_value_find_int(object, "priority", 0);
    msg->timestamp = lz_value_find_double(object, "timestamp", 0);
    return LZ_OK;
}

/* ---- pub/sub ----------------------------------------------------------- */

int lz__envelope_decode_pub(const lz_serializer_t *serializer, zmq_msg_t *topic, zmq_msg_t *payload,
                            lz_message_t **out) {
    lz_value_t *value = NULL;
    int rc = take_payload(serializer, payload, out, &value);
    if (rc != LZ_OK) return rc;
    (*out)->value = value;
    rc = set_topic(*out, zmq_msg_data(topic), zmq_msg_size(topic));
    return rc == LZ_OK ? LZ_OK : fail_message(out, rc);
}

/* ---- tasks ------------------------------------------------------------- */

// encode_with_data encodes object after placing the caller's data in it
// under "data" without copying, then takes it back out: the caller's value
// is borrowed, never owned. "data" is created as null first, so placing the
// borrowed value only replaces a member and cannot fail (a failing set would
// free the item, here the caller's).
static int encode_with_data(const lz_serializer_t *serializer, lz_value_t *object, const lz_value_t *data,
                            lz_buffer_t *out) {
    lz_value_t *null_data = lz_value_null();
    int rc = null_data ? lz_value_object_set(object, "data", null_data) : lz__fail(LZ_ENOMEM, "envelope: out of memory");
    bool placed = rc == LZ_OK && data && lz_value_object_set(object, "data", (lz_value_t *)data) == LZ_OK;
    if (rc == LZ_OK) rc = lz_serializer_encode(serializer, object, out);
    if (placed) lz__value_object_take(object, "data"); // whatever the result: it is the caller's
    lz_value_destroy(&object);
    return rc;
}

int lz__envelope_encode_task(const lz_serializer_t *serializer, const char *type, const lz_value_t *data,
                             int priority, lz_buffer_t *out) {
    char task_id[37];
    lz__uuid4(task_id);
    lz_value_t *task = lz_value_object();
    if (!task || lz_value_object_set_string(task, "type", type ? type : "default") != LZ_OK ||
        lz_value_object_set_int(task, "priority", priority) != LZ_OK ||
        lz_value_object_set_double(task, "timestamp", lz__now_seconds()) != LZ_OK ||
        lz_value_object_set_string(task, "task_id", task_id) != LZ_OK) {
        lz_value_destroy(&task);
        return lz__fail(LZ_ENOMEM, "envelope: out of memory");
    }
    return encode_with_data(serializer, task, data, out);
}

int lz__envelope_decode_task(const lz_serializer_t *serializer, zmq_msg_t *frame, lz_message_t **out) {
    lz_value_t *value = NULL;
    int rc = take_payload(serializer, frame, out, &value);
    if (rc != LZ_OK) return rc;
    lz_message_t *msg = *out;
    if (lz_serializer_flags(serializer) & LZ_SERIALIZER_OPAQUE) {
        msg->value = value; // raw: no envelope, default handler
        return LZ_OK;
    }
    const char *type = lz_value_find_string(value, "type", NULL);
    if (!type) {
        // Not a LiberZMQ task (a plain peer's JSON): the whole value is data.
        msg->value = value;
        rc = set_topic(msg, "unknown", 7);
    } else {
        rc = set_topic(msg, type, strlen(type));
        if (rc == LZ_OK) rc = lift_envelope(msg, value, "task_id");
        else lz_value_destroy(&value);
    }
    return rc == LZ_OK ? LZ_OK : fail_message(out, rc);
}

/* ---- request/reply ----------------------------------------------------- */

int lz__envelope_encode_request(const lz_serializer_t *serializer, const char *action, const lz_value_t *data,
                                const char *request_id, lz_buffer_t *out) {
    lz_value_t *request = lz_value_object();
    if (!request || lz_value_object_set_string(request, "type", action) != LZ_OK ||
        lz_value_object_set_double(request, "timestamp", lz__now_seconds()) != LZ_OK ||
        lz_value_object_set_string(request, "request_id", request_id) != LZ_OK) {
        lz_value_destroy(&request);
        return lz__fail(LZ_ENOMEM, "envelope: out of memory");
    }
    return encode_with_data(serializer, request, data, out);
}

int lz__envelope_decode_request(const lz_serializer_t *serializer, zmq_msg_t *frame, lz_message_t **out) {
    lz_value_t *value = NULL;
    int rc = take_payload(serializer, frame, out, &value);
    if (rc != LZ_OK) return rc;
    const char *action = lz_value_find_string(value, "type", NULL);
    if (!action) action = lz_value_find_string(value, "action", NULL);
    if (!action) {
        lz_value_destroy(&value);
        return fail_message(out, lz__fail(LZ_EPROTOCOL, "request has no \"type\" (action) string"));
    }
    rc = set_topic(*out, action, strlen(action));
    if (rc == LZ_OK) rc = lift_envelope(*out, value, "request_id");
    else lz_value_destroy(&value);
    return rc == LZ_OK ? LZ_OK : fail_message(out, rc);
}

int lz__envelope_encode_error(const lz_serializer_t *serializer, int code, const char *message,
                              const char *request_type, lz_buffer_t *out) {
    lz_value_t *reply = lz_value_object();
    int rc = reply ? LZ_OK : LZ_ENOMEM;
    if (rc == LZ_OK) rc = lz_value_object_set_string(reply, "status", "error");
    if (rc == LZ_OK) rc = lz_value_object_set_string(reply, "message", message ? message : lz_strerror(code));
    if (rc == LZ_OK) rc = lz_value_object_set_string(reply, "request_type", request_type ? request_type : "");
    if (rc == LZ_OK) rc = lz_value_object_set_string(reply, "code", lz_error_name(code));
    if (rc == LZ_OK) rc = lz_value_object_set_string(reply, "error", lz_strerror(code));
    if (rc == LZ_OK) rc = lz_serializer_encode(serializer, reply, out);
    lz_value_destroy(&reply);
    return rc == LZ_ENOMEM ? lz__fail(rc, "envelope: out of memory") : rc;
}

bool lz__envelope_is_error(const lz_value_t *reply) {
    const char *status = lz_value_find_string(reply, "status", NULL);
    return status && strcmp(status, "error") == 0;
}

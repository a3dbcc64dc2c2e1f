/* Error codes, their descriptions, and the per-thread detail message. */
#include "core/error.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <zmq.h>

#include "serial/utf8.h"

static _Thread_local char last_detail[LZ_DETAIL_MAX];
static _Thread_local int last_code;

typedef struct { int code; const char *name; const char *text; } error_entry_t;

static const error_entry_t errors[] = {
    {LZ_OK, "LZ_OK", "success"},
    {LZ_EINVAL, "LZ_EINVAL", "invalid argument"},
    {LZ_ENOMEM, "LZ_ENOMEM", "out of memory"},
    {LZ_ECONFIG, "LZ_ECONFIG", "configuration error"},
    {LZ_ECONNECTION, "LZ_ECONNECTION", "connection error"},
    {LZ_ETIMEOUT, "LZ_ETIMEOUT", "timed out"},
    {LZ_ESERIALIZATION, "LZ_ESERIALIZATION", "serialization error"},
    {LZ_EVALIDATION, "LZ_EVALIDATION", "validation error"},
    {LZ_ECLOSED, "LZ_ECLOSED", "closed"},
    {LZ_EPROTOCOL, "LZ_EPROTOCOL", "protocol error: malformed message"},
    {LZ_ENOTFOUND, "LZ_ENOTFOUND", "not found"},
    {LZ_EAGAIN, "LZ_EAGAIN", "resource temporarily unavailable (high water mark reached)"},
    {LZ_EREMOTE, "LZ_EREMOTE", "the peer replied with an error"},
    {LZ_ESTATE, "LZ_ESTATE", "operation not allowed in the current state"},
    {LZ_EIO, "LZ_EIO", "input/output error"},
    {LZ_EUNREACHABLE, "LZ_EUNREACHABLE", "peer unreachable"},
    {LZ_EZMQ, "LZ_EZMQ", "libzmq error"},
    {LZ_EBUSY, "LZ_EBUSY", "busy: held by another owner"},
};

static const error_entry_t *find(int code) {
    for (size_t i = 0; i < sizeof errors / sizeof errors[0]; i++)
        if (errors[i].code == code) return &errors[i];
    return NULL;
}

const char *lz_strerror(int code) {
    const error_entry_t *e = find(code);
    return e ? e->text : "unknown error";
}

const char *lz_error_name(int code) {
    const error_entry_t *e = find(code);
    return e ? e->name : "LZ_EUNKNOWN";
}

const char *lz_last_error(void) { return last_detail; }

int lz_last_error_code(void) { return last_code; }

size_t lz__vformat(char *out, size_t size, const char *format, va_list args) {
    int n = vsnprintf(out, size, format, args);
    if (n < 0) n = 0, out[0] = '\0'; // an encoding error: nothing to trust
    if ((size_t)n < size) return (size_t)n;
    size_t len = lz__utf8_prefix(out, size - 1);
    out[len] = '\0';
    return len;
}

size_t lz__format(char *out, size_t size, const char *format, ...) {
    va_list args;
    va_start(args, format);
    size_t len = lz__vformat(out, size, format, args);
    va_end(args);
    return len;
}

void lz__copy_text(char *out, size_t size, const char *text) {
    if (!text) text = "";
    size_t len = strnlen(text, size);
    if (len == size) len = lz__utf8_prefix(text, size - 1); // too long: no character cut in two
    memcpy(out, text, len);
    out[len] = '\0';
}

// record formats into a scratch buffer first: callers add context to the
// previous failure by passing lz_last_error() itself as an argument.
static void record(int code, const char *format, va_list args) {
    char detail[LZ_DETAIL_MAX];
    lz__vformat(detail, sizeof detail, format, args);
    memcpy(last_detail, detail, sizeof detail);
    last_code = code;
}

int lz__fail(int code, const char *format, ...) {
    va_list args;
    va_start(args, format);
    record(code, format, args);
    va_end(args);
    return code;
}

int lz_set_error(int code, const char *format, ...) {
    va_list args;
    va_start(args, format);
    record(code, format ? format : "", args);
    va_end(args);
    return code;
}

void lz__error_clear(void) {
    last_detail[0] = '\0';
    last_code = LZ_OK;
}

void *lz__fail_null(int code, const char *format, ...) {
    va_list args;
    va_start(args, format);
    record(code, format, args);
    va_end(args);
    return NULL;
}

int lz__zmq_error_code(int err) {
    switch (err) {
    case EAGAIN: return LZ_EAGAIN;
    case ETERM: return LZ_ECLOSED;
    case ENOTSOCK: return LZ_ECLOSED;
    case EHOSTUNREACH: return LZ_EUNREACHABLE;
    case EINVAL: case EPROTONOSUPPORT: case ENOCOMPATPROTO: return LZ_EINVAL;
    case ENOMEM: return LZ_ENOMEM;
    case EADDRINUSE: case EADDRNOTAVAIL: case ENODEV: case ECONNREFUSED: return LZ_ECONNECTION;
    case EMSGSIZE: return LZ_EVALIDATION;
    case EINTR: return LZ_EIO;
    default: return LZ_EZMQ;
    }
}

int lz__fail_zmq(const char *what) {
    int err = zmq_errno();
    return lz__fail(lz__zmq_error_code(err), "%s: %s", what, zmq_strerror(err));
}

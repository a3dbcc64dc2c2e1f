/* Internal error reporting: every failure path sets the calling thread's
 * detail message and returns its code in one call. */
#ifndef LZ_CORE_ERROR_H
#define LZ_CORE_ERROR_H

#include <stdarg.h>
#include <stddef.h>

#include "liberzmq/error.h"

// The longest detail message kept, NUL included.
#define LZ_DETAIL_MAX 512

// lz__fail sets the thread's last error to code and the formatted detail,
// and returns code, so failure paths read `return lz__fail(LZ_EINVAL, ...)`.
int lz__fail(int code, const char *format, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 2, 3)))
#endif
    ;

// lz__fail_null is lz__fail for constructors: it returns NULL.
void *lz__fail_null(int code, const char *format, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 2, 3)))
#endif
    ;

// lz__format is snprintf for text that may end up in JSON (an error reply,
// a log line), whose writer refuses half a character: text too long for
// out (size > 0 bytes) is cut before the first character that would not
// fit whole. Returns the length written. The thread's detail is cut so.
size_t lz__format(char *out, size_t size, const char *format, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 3, 4)))
#endif
    ;

// lz__vformat is lz__format with a va_list.
size_t lz__vformat(char *out, size_t size, const char *format, va_list args);

// lz__copy_text copies text (NULL: "") into out, size (> 0) bytes with its
// NUL. Text too long is cut before the first character that does not fit
// whole, so UTF-8 stays UTF-8 (a cut sequence would make node and span
// names, and the labels and JSON that carry them, invalid). The one copy of
// node names and span fields.
void lz__copy_text(char *out, size_t size, const char *text);

// lz__error_clear forgets the thread's last error, so what a handler
// records can be told from what came before it.
void lz__error_clear(void);

// lz__fail_zmq maps the current zmq_errno() to an lz_error_t (EAGAIN ->
// LZ_EAGAIN, ETERM -> LZ_ECLOSED, EHOSTUNREACH -> LZ_EUNREACHABLE, EINVAL /
// EPROTONOSUPPORT -> LZ_EINVAL, ...), records "<what>: <zmq_strerror>" and
// returns the code.
int lz__fail_zmq(const char *what);

// lz__zmq_error_code maps an errno value from libzmq to an lz_error_t.
int lz__zmq_error_code(int err);

#endif

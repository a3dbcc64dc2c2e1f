/* liberzmq logging: levels, targets (stderr, file, syslog, callback) and
 * formats (human text, JSON lines). A disabled level costs one load and one
 * compare: use LZ_LOG, which checks the level before formatting anything. */
#ifndef LIBERZMQ_LOG_H
#define LIBERZMQ_LOG_H

#include <stdarg.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef enum lz_log_level {
    LZ_LOG_TRACE = 0,
    LZ_LOG_DEBUG = 1,
    LZ_LOG_INFO = 2,
    LZ_LOG_WARNING = 3,
    LZ_LOG_ERROR = 4,
    LZ_LOG_CRITICAL = 5,
    LZ_LOG_OFF = 6
} lz_log_level_t;

typedef enum lz_log_format { LZ_LOG_TEXT = 0, LZ_LOG_JSON = 1 } lz_log_format_t;

typedef struct lz_logger lz_logger_t;

// A log callback receives each record at or above the logger's level. It is
// called on the thread that logged, possibly several at once: it must be
// thread safe. component is "pub", "sub", "config"...; message is formatted
// and both are valid only during the call.
typedef void (*lz_log_fn)(lz_log_level_t level, const char *component,
                          const char *message, void *arg);

// lz_logger_new returns a logger writing text records at INFO and above to
// stderr, or NULL when out of memory. A context creates its own from its
// configuration (keys logging.*); this is for use without a context.
lz_logger_t *lz_logger_new(void);

// lz_logger_destroy closes the logger's file or syslog connection, frees
// *logger_p and sets it to NULL. NULL is a no-op.
void lz_logger_destroy(lz_logger_t **logger_p);

// lz_logger_set_level sets the lowest level written. Thread safe.
void lz_logger_set_level(lz_logger_t *logger, lz_log_level_t level);

// lz_logger_level returns the lowest level written. Thread safe, lock free.
lz_log_level_t lz_logger_level(const lz_logger_t *logger);

// lz_logger_set_format chooses text ("2026-11-21T12:00:00.123Z INFO  pub: ...")
// or JSON lines ({"ts":..., "level":..., "component":..., "msg":...}). Either
// way a record is one line: text records escape control characters and line
// separators in the component and message ("\n", "\u001b"). Thread safe.
void lz_logger_set_format(lz_logger_t *logger, lz_log_format_t format);

// Target setters; each replaces the previous target. Thread safe.
// lz_logger_to_stderr: standard error (the default).
// lz_logger_to_file: append to path (created 0644); LZ_EIO if it cannot be opened.
// lz_logger_to_syslog: syslog(3) with ident (NULL: "liberzmq"); levels mapped.
// lz_logger_to_callback: fn(arg) gets every record; fn NULL is LZ_EINVAL.
int lz_logger_to_stderr(lz_logger_t *logger);
int lz_logger_to_file(lz_logger_t *logger, const char *path);
int lz_logger_to_syslog(lz_logger_t *logger, const char *ident);
int lz_logger_to_callback(lz_logger_t *logger, lz_log_fn fn, void *arg);

// lz_logger_write formats and writes one record if level is enabled. Records
// from concurrent threads never interleave. Thread safe. A NULL logger is a no-op.
// Out of memory, a record still goes to a callback, a file or stderr (not
// to syslog, whose glibc drops it too), but one whose message is longer
// than about 1000 bytes is cut, " [cut: out of memory]" at its end.
void lz_logger_write(lz_logger_t *logger, lz_log_level_t level,
                     const char *component, const char *format, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 4, 5)))
#endif
    ;
void lz_logger_vwrite(lz_logger_t *logger, lz_log_level_t level,
                      const char *component, const char *format, va_list args);

// lz_log_level_parse reads "trace", "DEBUG", "info", "warning"/"warn",
// "error", "critical", "off" (any case). Returns LZ_EINVAL for anything else.
int lz_log_level_parse(const char *text, lz_log_level_t *out);

// lz_log_level_name returns "TRACE".."CRITICAL", "OFF". Static string.
const char *lz_log_level_name(lz_log_level_t level);

// LZ_LOG checks the level first, so arguments are not even evaluated when
// the level is disabled.
#define LZ_LOG(logger, level, component, ...)                               \
    do {                                                                    \
        if ((logger) && (level) >= lz_logger_level(logger))                 \
            lz_logger_write((logger), (level), (component), __VA_ARGS__);   \
    } while (0)

#ifdef __cplusplus
}
#endif
#endif

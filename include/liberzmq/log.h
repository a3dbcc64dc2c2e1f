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
// *logger_p and sets it to NULL. NULL is a no-op. No other thread may be
// writing to it (or inside its callback) meanwhile.
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
// lz_logger_to_file: append to path (created 0644); LZ_EIO if it cannot be
//   opened, LZ_EINVAL for a path longer than PATH_MAX - 40 (room for the
//   rotation's names). Rotated as logging.max_file_size and backup_count
//   say (docs/configuration.md); a full file no longer at path (removed,
//   moved away by logrotate or another writer) is left for the one at path.
// lz_logger_to_syslog: the local syslog daemon (/dev/log) with ident (NULL:
//   "liberzmq"), facility LOG_USER, levels mapped; records formatted as
//   syslog(3) formats them, but sent over the logger's own connection, so
//   each logger keeps its own ident (openlog, closelog and setlogmask do not
//   apply). No daemon listening is no error: records are dropped until one is.
// lz_logger_to_callback: fn(arg) gets every record; fn NULL is LZ_EINVAL.
// A setter returns only once every call of the callback it replaced has
// returned, on every thread (calls begun later go to the new target), so
// the old callback's arg may be freed then. Called from inside a callback
// of the same logger, it does not wait at all (its own call could not end
// first): calls on other threads may still run, so free nothing there;
// the next setter from outside a callback waits for them. A callback must
// not wait for a thread that is calling a setter of its logger. A reload
// that replaces a callback (logging.target changed) does not wait for it
// either: the next setter call does.
int lz_logger_to_stderr(lz_logger_t *logger);
int lz_logger_to_file(lz_logger_t *logger, const char *path);
int lz_logger_to_syslog(lz_logger_t *logger, const char *ident);
int lz_logger_to_callback(lz_logger_t *logger, lz_log_fn fn, void *arg);

// lz_logger_write formats and writes one record if level is enabled. Records
// from concurrent threads never interleave. Thread safe. A NULL logger is a no-op.
// Out of memory, a record still goes to a callback, a file or stderr (not
// to syslog, as glibc's syslog(3) drops it too), but one whose message is longer
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

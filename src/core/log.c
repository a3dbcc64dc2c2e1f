/* The logger: an atomic level checked before any formatting, one mutex so
 * records never interleave, text or JSON-lines records, and the stderr,
 * rotating file, syslog and callback targets. */
#include "core/log.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <syslog.h>
#include <time.h>
#include <unistd.h>

#include "core/error.h"

// Python's RotatingFileHandler defaults, as logging.max_file_size/backup_count.
#define DEFAULT_MAX_FILE_SIZE 10485760
#define DEFAULT_BACKUP_COUNT 5

struct lz_logger {
    atomic_int level;  // read on every LZ_LOG, so lock free
    atomic_int format;
    pthread_mutex_t lock; // guards the target below and serializes records
    lz_log_target_t target;
    FILE *file;
    char *path;
    int64_t max_file_size;
    int backup_count;
    char *ident; // syslog keeps the pointer, so it must outlive openlog
    lz_log_fn fn;
    void *arg;
};

static const char *const level_names[] = {"TRACE", "DEBUG", "INFO", "WARNING",
                                          "ERROR", "CRITICAL", "OFF"};

const char *lz_log_level_name(lz_log_level_t level) {
    if ((int)level < LZ_LOG_TRACE || level > LZ_LOG_OFF) return "UNKNOWN";
    return level_names[level];
}

int lz_log_level_parse(const char *text, lz_log_level_t *out) {
    if (!text || !out) return lz__fail(LZ_EINVAL, "log: level text and out are required");
    for (int i = LZ_LOG_TRACE; i <= LZ_LOG_OFF; i++) {
        if (strcasecmp(text, level_names[i]) == 0) {
            *out = (lz_log_level_t)i;
            return LZ_OK;
        }
    }
    if (strcasecmp(text, "warn") == 0) {
        *out = LZ_LOG_WARNING;
        return LZ_OK;
    }
    return lz__fail(LZ_EINVAL, "log: unknown level '%.64s' (trace, debug, info, warning, "
                    "error, critical or off)", text);
}

lz_logger_t *lz_logger_new(void) {
    lz_logger_t *logger = calloc(1, sizeof *logger);
    if (!logger) return lz__fail_null(LZ_ENOMEM, "log: out of memory for a logger");
    if (pthread_mutex_init(&logger->lock, NULL) != 0) {
        free(logger);
        return lz__fail_null(LZ_EIO, "log: cannot create the logger's mutex");
    }
    atomic_init(&logger->level, LZ_LOG_INFO);
    atomic_init(&logger->format, LZ_LOG_TEXT);
    logger->target = LZ_LOG_TARGET_STDERR;
    logger->max_file_size = DEFAULT_MAX_FILE_SIZE;
    logger->backup_count = DEFAULT_BACKUP_COUNT;
    return logger;
}

// close_target_locked releases whatever the current target holds.
static void close_target_locked(lz_logger_t *logger) {
    if (logger->file) fclose(logger->file);
    if (logger->target == LZ_LOG_TARGET_SYSLOG) closelog();
    free(logger->path);
    free(logger->ident);
    logger->file = NULL;
    logger->path = NULL;
    logger->ident = NULL;
    logger->fn = NULL;
    logger->arg = NULL;
    logger->target = LZ_LOG_TARGET_NONE;
}

void lz_logger_destroy(lz_logger_t **logger_p) {
    if (!logger_p || !*logger_p) return;
    lz_logger_t *logger = *logger_p;
    close_target_locked(logger);
    pthread_mutex_destroy(&logger->lock);
    free(logger);
    *logger_p = NULL;
}

void lz_logger_set_level(lz_logger_t *logger, lz_log_level_t level) {
    if (!logger || (int)level < LZ_LOG_TRACE || level > LZ_LOG_OFF) return;
    atomic_store_explicit(&logger->level, (int)level, memory_order_relaxed);
}

lz_log_level_t lz_logger_level(const lz_logger_t *logger) {
    if (!logger) return LZ_LOG_OFF;
    // C11's atomic_load takes a non-const pointer; a logger is never const
    // storage (lz_logger_new allocates it), so the cast only reads.
    return (lz_log_level_t)atomic_load_explicit((atomic_int *)&logger->level, memory_order_relaxed);
}

void lz_logger_set_format(lz_logger_t *logger, lz_log_format_t format) {
    if (!logger || (format != LZ_LOG_TEXT && format != LZ_LOG_JSON)) return;
    atomic_store_explicit(&logger->format, (int)format, memory_order_relaxed);
}

int lz_logger_to_stderr(lz_logger_t *logger) {
    if (!logger) return lz__fail(LZ_EINVAL, "log: logger is NULL");
    pthread_mutex_lock(&logger->lock);
    close_target_locked(logger);
    logger->target = LZ_LOG_TARGET_STDERR;
    pthread_mutex_unlock(&logger->lock);
    return LZ_OK;
}

// set_none silences the logger without changing its level (logging.target none).
static void set_none(lz_logger_t *logger) {
    pthread_mutex_lock(&logger->lock);
    close_target_locked(logger);
    pthread_mutex_unlock(&logger->lock);
}

// open_append opens path for appending with the documented 0644 mode
// (fopen would use 0666 minus umask).
static FILE *open_append(const char *path) {
    int fd = open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
    if (fd < 0) return NULL;
    FILE *file = fdopen(fd, "a");
    if (!file) close(fd);
    return file;
}

int lz_logger_to_file(lz_logger_t *logger, const char *path) {
    if (!logger || !path || !*path) return lz__fail(LZ_EINVAL, "log: logger and path are required");
    if (strlen(path) > PATH_MAX - 16)
        return lz__fail(LZ_EINVAL, "log: file path too long: '%.64s...'", path);
    char *copy = strdup(path);
    if (!copy) return lz__fail(LZ_ENOMEM, "log: out of memory");
    FILE *file = open_append(path);
    if (!file) {
        int err = errno;
        free(copy);
        return lz__fail(LZ_EIO, "log: cannot open log file %s: %s", path, strerror(err));
    }
    pthread_mutex_lock(&logger->lock);
    close_target_locked(logger);
    logger->target = LZ_LOG_TARGET_FILE;
    logger->file = file;
    logger->path = copy;
    pthread_mutex_unlock(&logger->lock);
    return LZ_OK;
}

int lz_logger_to_syslog(lz_logger_t *logger, const char *ident) {
    if (!logger) return lz__fail(LZ_EINVAL, "log: logger is NULL");
    char *copy = strdup(ident ? ident : "liberzmq");
    if (!copy) return lz__fail(LZ_ENOMEM, "log: out of memory");
    pthread_mutex_lock(&logger->lock);
    close_target_locked(logger);
    logger->target = LZ_LOG_TARGET_SYSLOG;
    logger->ident = copy;
    openlog(copy, LOG_PID | LOG_NDELAY, LOG_USER);
    pthread_mutex_unlock(&logger->lock);
    return LZ_OK;
}

int lz_logger_to_callback(lz_logger_t *logger, lz_log_fn fn, void *arg) {
    if (!logger || !fn) return lz__fail(LZ_EINVAL, "log: logger and callback are required");
    pthread_mutex_lock(&logger->lock);
    close_target_locked(logger);
    logger->target = LZ_LOG_TARGET_CALLBACK;
    logger->fn = fn;
    logger->arg = arg;
    pthread_mutex_unlock(&logger->lock);
    return LZ_OK;
}

// utf8_length returns the length of the well-formed UTF-8 sequence at p
// (no overlongs, no surrogates), or 0, so JSON output stays valid UTF-8.
static size_t utf8_length(const unsigned char *p) {
    unsigned char c = p[0], lo = 0x80, hi = 0xBF;
    size_t n;
    if (c >= 0xC2 && c <= 0xDF) {
        n = 2;
    } else if (c >= 0xE0 && c <= 0xEF) {
        n = 3;
        lo = c == 0xE0 ? 0xA0 : lo;
        hi = c == 0xED ? 0x9F : hi;
    } else if (c >= 0xF0 && c <= 0xF4) {
        n = 4;
        lo = c == 0xF0 ? 0x90 : lo;
        hi = c == 0xF4 ? 0x8F : hi;
    } else {
        return 0;
    }
    if (p[1] < lo || p[1] > hi) return 0;
    for (size_t i = 2; i < n; i++)
        if ((p[i] & 0xC0) != 0x80) return 0;
    return n;
}

// escaped_anyway: characters JSON allows raw but YAML (which reads the
// JSON that lz_config_to_json writes) refuses or rereads: DEL, the C1
// controls (U+0085 is a YAML line break) and the non-characters U+FFFE and
// U+FFFF. n is the length of the UTF-8 sequence at p.
static bool escaped_anyway(const unsigned char *p, size_t n, unsigned *code) {
    if (n == 1 && *p == 0x7F) *code = 0x7F;
    else if (n == 2 && p[0] == 0xC2 && p[1] <= 0x9F) *code = p[1];
    else if (n == 3 && p[0] == 0xEF && p[1] == 0xBF && p[2] >= 0xBE) *code = 0xFFC0u | (p[2] & 0x3Fu);
    else return false;
    return true;
}

// json_write_char escapes what JSON requires, and what escaped_anyway
// names; invalid UTF-8 becomes U+FFFD. Returns how many bytes of p it
// consumed.
static size_t json_write_char(FILE *out, const unsigned char *p) {
    static const char *const short_escapes[0x20] = {
        ['\b'] = "\\b", ['\f'] = "\\f", ['\n'] = "\\n", ['\r'] = "\\r", ['\t'] = "\\t"};
    size_t n = *p < 0x80 ? 1 : utf8_length(p);
    unsigned code;
    if (*p == '"' || *p == '\\') {
        fputc('\\', out);
        fputc(*p, out);
    } else if (*p < 0x20) {
        if (short_escapes[*p]) fputs(short_escapes[*p], out);
        else fprintf(out, "\\u%04x", *p);
    } else if (!n) {
        fputs("\\ufffd", out);
        return 1;
    } else if (escaped_anyway(p, n, &code)) {
        fprintf(out, "\\u%04x", code);
    } else if (*p >= 0x80) {
        fwrite(p, 1, n, out);
    } else {
        fputc(*p, out);
    }
    return n;
}

void lz__json_write_string(FILE *out, const char *text) {
    fputc('"', out);
    for (const unsigned char *p = (const unsigned char *)text; *p;) p += json_write_char(out, p);
    fputc('"', out);
}

// format_timestamp writes UTC time with milliseconds, ISO 8601 ("...123Z").
static void format_timestamp(char *out, size_t size) {
    struct timespec now;
    struct tm tm;
    clock_gettime(CLOCK_REALTIME, &now);
    gmtime_r(&now.tv_sec, &tm);
    size_t n = strftime(out, size, "%Y-%m-%dT%H:%M:%S", &tm);
    snprintf(out + n, size - n, ".%03dZ", (int)(now.tv_nsec / 1000000));
}

// format_record writes one record to out; syslog stamps time and level itself.
static void format_record(FILE *out, lz_log_format_t format, bool for_syslog,
                          lz_log_level_t level, const char *component, const char *msg) {
    char ts[40];
    format_timestamp(ts, sizeof ts);
    if (format == LZ_LOG_JSON) {
        fprintf(out, "{\"ts\":\"%s\",\"level\":\"%s\",\"component\":", ts, lz_log_level_name(level));
        lz__json_write_string(out, component);
        fputs(",\"msg\":", out);
        lz__json_write_string(out, msg);
        fputc('}', out);
    } else if (for_syslog) {
        fprintf(out, "%s: %s", component, msg);
    } else {
        fprintf(out, "%s %-5s %s: %s", ts, lz_log_level_name(level), component, msg);
    }
    if (!for_syslog) fputc('\n', out);
}

static int syslog_priority(lz_log_level_t level) {
    static const int priorities[] = {LOG_DEBUG, LOG_DEBUG, LOG_INFO, LOG_WARNING, LOG_ERR, LOG_CRIT};
    return priorities[level];
}

// rotated_name writes "path.index" (path length is bounded in lz_logger_to_file).
static void rotated_name(char *out, size_t size, const char *path, int index) {
    snprintf(out, size, "%s.%d", path, index);
}

// rotate_locked shifts path.N-1 -> path.N ... path -> path.1 once the file
// reaches max_file_size, then reopens an empty path, like Python's handler.
static void rotate_locked(lz_logger_t *logger) {
    struct stat st;
    if (logger->max_file_size <= 0 || logger->backup_count <= 0) return;
    if (fstat(fileno(logger->file), &st) != 0 || st.st_size < logger->max_file_size) return;
    fclose(logger->file);
    char from[PATH_MAX + 16], to[PATH_MAX + 16];
    for (int i = logger->backup_count - 1; i >= 1; i--) {
        rotated_name(from, sizeof from, logger->path, i);
        rotated_name(to, sizeof to, logger->path, i + 1);
        rename(from, to); // a missing backup is normal while the set fills up
    }
    rotated_name(to, sizeof to, logger->path, 1);
    rename(logger->path, to);
    logger->file = open_append(logger->path); // NULL: later records are dropped
}

// emit_locked writes one formatted record to a stream-like target.
static void emit_locked(lz_logger_t *logger, lz_log_level_t level, const char *component,
                        const char *msg) {
    bool for_syslog = logger->target == LZ_LOG_TARGET_SYSLOG;
    char *line = NULL;
    size_t len = 0;
    FILE *out = open_memstream(&line, &len);
    if (!out) return;
    format_record(out, (lz_log_format_t)atomic_load(&logger->format), for_syslog, level,
                  component, msg);
    if (fclose(out) != 0) {
        free(line);
        return;
    }
    if (logger->target == LZ_LOG_TARGET_STDERR) {
        fwrite(line, 1, len, stderr);
    } else if (for_syslog) {
        syslog(syslog_priority(level), "%s", line);
    } else if (logger->target == LZ_LOG_TARGET_FILE && logger->file) {
        fwrite(line, 1, len, logger->file);
        fflush(logger->file);
        rotate_locked(logger);
    }
    free(line);
}

void lz_logger_vwrite(lz_logger_t *logger, lz_log_level_t level, const char *component,
                      const char *format, va_list args) {
    if (!logger || !format || (int)level < LZ_LOG_TRACE || level >= LZ_LOG_OFF) return;
    if (level < lz_logger_level(logger)) return;
    char *msg = NULL;
    if (vasprintf(&msg, format, args) < 0) return;
    if (!component) component = "liberzmq";
    lz_log_fn fn = NULL;
    void *arg = NULL;
    pthread_mutex_lock(&logger->lock);
    if (logger->target == LZ_LOG_TARGET_CALLBACK) {
        fn = logger->fn;
        arg = logger->arg;
    } else {
        emit_locked(logger, level, component, msg);
    }
    pthread_mutex_unlock(&logger->lock);
    // Outside the lock: a callback that logs again must not deadlock.
    if (fn) fn(level, component, msg, arg);
    free(msg);
}

void lz_logger_write(lz_logger_t *logger, lz_log_level_t level, const char *component,
                     const char *format, ...) {
    va_list args;
    va_start(args, format);
    lz_logger_vwrite(logger, level, component, format, args);
    va_end(args);
}

static int apply_target(lz_logger_t *logger, const lz_log_settings_t *s) {
    switch (s->target) {
    case LZ_LOG_TARGET_FILE: return lz_logger_to_file(logger, s->file_path);
    case LZ_LOG_TARGET_SYSLOG: return lz_logger_to_syslog(logger, s->syslog_ident);
    case LZ_LOG_TARGET_NONE: set_none(logger); return LZ_OK;
    default: return lz_logger_to_stderr(logger);
    }
}

int lz__logger_configure(lz_logger_t *logger, const lz_config_t *config) {
    if (!logger || !config) return lz__fail(LZ_EINVAL, "log: logger and config are required");
    lz_log_settings_t s;
    int rc = lz__log_settings_read(config, &s);
    if (rc < 0) return rc;
    // Rotation limits first, so the file target never runs with stale ones.
    pthread_mutex_lock(&logger->lock);
    int64_t old_size = logger->max_file_size;
    int old_count = logger->backup_count;
    logger->max_file_size = s.max_file_size;
    logger->backup_count = s.backup_count;
    pthread_mutex_unlock(&logger->lock);
    rc = apply_target(logger, &s);
    if (rc < 0) {
        pthread_mutex_lock(&logger->lock);
        logger->max_file_size = old_size;
        logger->backup_count = old_count;
        pthread_mutex_unlock(&logger->lock);
        return rc;
    }
    lz_logger_set_format(logger, s.format);
    lz_logger_set_level(logger, s.level);
    return LZ_OK;
}

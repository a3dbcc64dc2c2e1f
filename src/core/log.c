/* The logger: an atomic level checked before any formatting, one mutex so
 * records never interleave, text or JSON-lines records, and the stderr,
 * rotating file, syslog and callback targets. A target is opened before it
 * replaces the old one, so a switch (a reload) cannot fail halfway. Syslog
 * records go to the local socket from each logger's own connection, with
 * its own ident: syslog(3)'s ident is one for the whole process. */
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
#include <sys/file.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <sys/un.h>
#include <syslog.h>
#include <time.h>
#include <unistd.h>

#include "core/error.h"
#include "core/textstream.h"
#include "serial/utf8.h"

// Python's RotatingFileHandler defaults, as logging.max_file_size/backup_count.
#define DEFAULT_MAX_FILE_SIZE 10485760
#define DEFAULT_BACKUP_COUNT 5

// What records go to. Opened before it replaces a logger's own (open_target),
// so that a switch of target cannot fail halfway.
typedef struct target {
    lz_log_target_t kind;
    FILE *file;
    char *path;
    char *ident;      // syslog's
    int syslog_fd;    // connected to the syslog socket, or -1 (connected again on the next record)
    bool syslog_stream; // the socket is a stream one: records end with a NUL
    lz_log_fn fn;
    void *arg;
} target_t;

struct lz_logger {
    atomic_int level;  // read on every LZ_LOG, so lock free
    atomic_int format;
    pthread_mutex_t lock; // guards out and the limits below and serializes records
    target_t out;
    int64_t max_file_size;
    int backup_count;
    bool rotation_stuck; // the last rotation could not move the file: warned once, in it
    unsigned id;         // names its rotation's fresh file, apart from other writers' (fresh_name)
    // Callback calls in progress, so that a target setter returns only once
    // the callback it replaced has returned everywhere (its arg may be freed
    // next). A call counts under the parity in force when it began; a setter
    // flips the parity and waits for the old one to drain, so calls of a new
    // callback never hold it up. Setters take turns. All under lock.
    unsigned parity;
    unsigned calls[2];
    bool swapping;         // a setter waits for a parity to drain
    pthread_cond_t turn;   // a parity drained, a setter's wait ended
};

// A callback call on this thread. A setter called from inside one would
// wait for itself: it does not wait at all (inside_callback).
typedef struct log_call {
    const lz_logger_t *logger;
    unsigned parity;
    struct log_call *outer;
} log_call_t;

static _Thread_local log_call_t *log_calls_here __attribute__((tls_model("initial-exec"))); // innermost first

// A target opened ahead of the switch a reload commits (core/log.h).
struct lz_log_switch {
    target_t target;
    int64_t max_file_size;
    int backup_count;
};

// Numbers the loggers of the process, for their rotation's fresh files.
static atomic_uint logger_ids;

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
    if (pthread_cond_init(&logger->turn, NULL) != 0) {
        pthread_mutex_destroy(&logger->lock);
        free(logger);
        return lz__fail_null(LZ_EIO, "log: cannot create the logger's condition variable");
    }
    atomic_init(&logger->level, LZ_LOG_INFO);
    atomic_init(&logger->format, LZ_LOG_TEXT);
    logger->out.kind = LZ_LOG_TARGET_STDERR;
    logger->max_file_size = DEFAULT_MAX_FILE_SIZE;
    logger->backup_count = DEFAULT_BACKUP_COUNT;
    logger->id = atomic_fetch_add(&logger_ids, 1);
    return logger;
}

/* ---- targets: opened first, then installed under the lock ---- */

// target_drop releases what t holds: fclose flushes what the last record left.
static void target_drop(target_t *t) {
    if (t->file) fclose(t->file);
    if (t->kind == LZ_LOG_TARGET_SYSLOG && t->syslog_fd >= 0) close(t->syslog_fd);
    free(t->path);
    free(t->ident);
    *t = (target_t){.kind = LZ_LOG_TARGET_NONE};
}

// call_uncount_locked takes a callback call off its parity's count,
// waking the setter waiting for that parity when it drained it.
static void call_uncount_locked(lz_logger_t *logger, unsigned parity) {
    if (--logger->calls[parity] == 0 && logger->swapping) pthread_cond_broadcast(&logger->turn);
}

// inside_callback: whether this thread is running a callback of logger.
// Its setters do not wait for the calls the swap leaves: their own could
// not end first, and taking their own call off the count would let a
// setter on another thread return while that call still runs.
static bool inside_callback(const lz_logger_t *logger) {
    for (const log_call_t *call = log_calls_here; call; call = call->outer)
        if (call->logger == logger) return true;
    return false;
}

// install makes t (taken) the logger's target. Records are written under
// the lock, so the old file is closed after the last record to it. With
// wait_calls, it returns once every callback call that began before it
// (on other threads) has returned.
static void install(lz_logger_t *logger, target_t *t, bool wait_calls) {
    if (wait_calls && inside_callback(logger)) wait_calls = false;
    pthread_mutex_lock(&logger->lock);
    if (wait_calls)
        while (logger->swapping) pthread_cond_wait(&logger->turn, &logger->lock);
    target_drop(&logger->out);
    logger->out = *t;
    logger->rotation_stuck = false;
    if (wait_calls) {
        unsigned old = logger->parity;
        logger->parity ^= 1;
        logger->swapping = true;
        while (logger->calls[old] > 0) pthread_cond_wait(&logger->turn, &logger->lock);
        logger->swapping = false;
        pthread_cond_broadcast(&logger->turn); // the next setter's turn
    }
    pthread_mutex_unlock(&logger->lock);
    *t = (target_t){.kind = LZ_LOG_TARGET_NONE};
}

void lz_logger_destroy(lz_logger_t **logger_p) {
    if (!logger_p || !*logger_p) return;
    lz_logger_t *logger = *logger_p;
    target_drop(&logger->out);
    pthread_cond_destroy(&logger->turn);
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

// open_append opens path for appending with the documented 0644 mode
// (fopen would use 0666 minus umask).
static FILE *open_append(const char *path) {
    int fd = open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
    if (fd < 0) return NULL;
    FILE *file = fdopen(fd, "a");
    if (!file) close(fd);
    return file;
}

static int open_file(target_t *t, const char *path) {
    if (strlen(path) > PATH_MAX - 40) // room for rotation's ".N" and its fresh file's suffix (fresh_name)
        return lz__fail(LZ_EINVAL, "log: file path too long: '%.64s...'", path);
    *t = (target_t){.kind = LZ_LOG_TARGET_FILE, .path = strdup(path)};
    if (!t->path) return lz__fail(LZ_ENOMEM, "log: out of memory");
    t->file = open_append(path);
    if (t->file) return LZ_OK;
    int err = errno;
    target_drop(t);
    if (err == ENOMEM) return lz__fail(LZ_ENOMEM, "log: out of memory for log file %s", path);
    return lz__fail(LZ_EIO, "log: cannot open log file %s: %s", path, strerror(err));
}

/* ---- syslog: RFC 3164 records to the local socket, as syslog(3) sends them ---- */

static char syslog_path[sizeof ((struct sockaddr_un *)0)->sun_path] = "/dev/log";

void lz__log_syslog_path(const char *path) { snprintf(syslog_path, sizeof syslog_path, "%s", path); }

static int syslog_socket(int type) {
    struct sockaddr_un to = {.sun_family = AF_UNIX};
    memcpy(to.sun_path, syslog_path, sizeof to.sun_path);
    int fd = socket(AF_UNIX, type | SOCK_CLOEXEC, 0);
    if (fd < 0 || connect(fd, (struct sockaddr *)&to, sizeof to) == 0) return fd;
    int err = errno;
    close(fd);
    errno = err;
    return -1;
}

// syslog_connect connects t to the syslog socket, a datagram one (a
// stream one where the daemon has that, as syslog(3) also tries). No
// daemon listening is no error: records are dropped until one does.
static void syslog_connect(target_t *t) {
    t->syslog_stream = false;
    t->syslog_fd = syslog_socket(SOCK_DGRAM);
    if (t->syslog_fd >= 0 || errno != EPROTOTYPE) return;
    t->syslog_stream = true;
    t->syslog_fd = syslog_socket(SOCK_STREAM);
}

// syslog_gone: whether a send failed because the daemon went away (a
// restart): the record is worth one more try on a new connection.
static bool syslog_gone(int err) {
    return err == ECONNREFUSED || err == ENOTCONN || err == ECONNRESET || err == EPIPE;
}

static int syslog_priority(lz_log_level_t level) {
    static const int priorities[] = {LOG_DEBUG, LOG_DEBUG, LOG_INFO, LOG_WARNING, LOG_ERR, LOG_CRIT};
    return priorities[level];
}

// syslog_send sends line as one record, "<PRI>Mmm dd hh:mm:ss ident[pid]:
// line" (local time, facility LOG_USER), as syslog(3) writes them.
static void syslog_send(target_t *t, lz_log_level_t level, const char *line, size_t len) {
    static const char months[12][4] = {"Jan", "Feb", "Mar", "Apr", "May", "Jun",
                                       "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};
    time_t now = time(NULL);
    struct tm tm;
    localtime_r(&now, &tm);
    char head[48], pid[32];
    snprintf(head, sizeof head, "<%d>%s %2d %02d:%02d:%02d ", LOG_USER | syslog_priority(level), months[tm.tm_mon],
             tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec);
    snprintf(pid, sizeof pid, "[%d]: ", (int)getpid());
    struct iovec parts[] = {{head, strlen(head)}, {t->ident, strlen(t->ident)}, {pid, strlen(pid)},
                            {(char *)line, len}, {"", 1}};
    struct msghdr msg = {.msg_iov = parts, .msg_iovlen = t->syslog_stream ? 5 : 4};
    for (int attempt = 0; attempt < 2; attempt++) {
        if (t->syslog_fd < 0) syslog_connect(t);
        if (t->syslog_fd < 0 || sendmsg(t->syslog_fd, &msg, MSG_NOSIGNAL) >= 0 || !syslog_gone(errno)) return;
        close(t->syslog_fd);
        t->syslog_fd = -1;
    }
}

static int open_syslog(target_t *t, const char *ident) {
    *t = (target_t){.kind = LZ_LOG_TARGET_SYSLOG, .ident = strdup(ident ? ident : "liberzmq"), .syslog_fd = -1};
    if (!t->ident) return lz__fail(LZ_ENOMEM, "log: out of memory");
    syslog_connect(t);
    return LZ_OK;
}

// open_target opens the target the settings name.
static int open_target(target_t *t, const lz_log_settings_t *s) {
    switch (s->target) {
    case LZ_LOG_TARGET_FILE: return open_file(t, s->file_path);
    case LZ_LOG_TARGET_SYSLOG: return open_syslog(t, s->syslog_ident);
    case LZ_LOG_TARGET_NONE: *t = (target_t){.kind = LZ_LOG_TARGET_NONE}; return LZ_OK;
    default: *t = (target_t){.kind = LZ_LOG_TARGET_STDERR}; return LZ_OK;
    }
}

int lz_logger_to_stderr(lz_logger_t *logger) {
    if (!logger) return lz__fail(LZ_EINVAL, "log: logger is NULL");
    install(logger, &(target_t){.kind = LZ_LOG_TARGET_STDERR}, true);
    return LZ_OK;
}

int lz_logger_to_file(lz_logger_t *logger, const char *path) {
    if (!logger || !path || !*path) return lz__fail(LZ_EINVAL, "log: logger and path are required");
    target_t t;
    int rc = open_file(&t, path);
    if (rc == LZ_OK) install(logger, &t, true);
    return rc;
}

int lz_logger_to_syslog(lz_logger_t *logger, const char *ident) {
    if (!logger) return lz__fail(LZ_EINVAL, "log: logger is NULL");
    target_t t;
    int rc = open_syslog(&t, ident);
    if (rc == LZ_OK) install(logger, &t, true);
    return rc;
}

int lz_logger_to_callback(lz_logger_t *logger, lz_log_fn fn, void *arg) {
    if (!logger || !fn) return lz__fail(LZ_EINVAL, "log: logger and callback are required");
    install(logger, &(target_t){.kind = LZ_LOG_TARGET_CALLBACK, .fn = fn, .arg = arg}, true);
    return LZ_OK;
}

/* ---- switching the target as a whole (configuration, reloads) ---- */

bool lz__log_target_same(const lz_log_settings_t *a, const lz_log_settings_t *b) {
    if (a->target != b->target) return false;
    if (a->target == LZ_LOG_TARGET_FILE) return strcmp(a->file_path, b->file_path) == 0;
    if (a->target == LZ_LOG_TARGET_SYSLOG) return strcmp(a->syslog_ident, b->syslog_ident) == 0;
    return true;
}

lz_log_switch_t *lz__log_switch_open(const lz_log_settings_t *settings) {
    lz_log_switch_t *sw = calloc(1, sizeof *sw);
    if (!sw) return lz__fail_null(LZ_ENOMEM, "log: out of memory");
    sw->max_file_size = settings->max_file_size;
    sw->backup_count = settings->backup_count;
    if (open_target(&sw->target, settings) == LZ_OK) return sw;
    free(sw);
    return NULL;
}

void lz__log_switch_commit(lz_logger_t *logger, lz_log_switch_t **sw_p) {
    // Limits first, so the new file never runs with stale ones.
    lz__logger_set_rotation(logger, (*sw_p)->max_file_size, (*sw_p)->backup_count);
    // No wait for a callback replaced: a reload holds the context's reload
    // lock, which a callback on another thread may be waiting for.
    install(logger, &(*sw_p)->target, false);
    free(*sw_p);
    *sw_p = NULL;
}

void lz__log_switch_discard(lz_log_switch_t **sw_p) {
    if (!sw_p || !*sw_p) return;
    target_drop(&(*sw_p)->target);
    free(*sw_p);
    *sw_p = NULL;
}

void lz__logger_set_rotation(lz_logger_t *logger, int64_t max_file_size, int backup_count) {
    pthread_mutex_lock(&logger->lock);
    logger->max_file_size = max_file_size;
    logger->backup_count = backup_count;
    pthread_mutex_unlock(&logger->lock);
}

// escaped_anyway: characters JSON allows raw but YAML (which reads the
// JSON that lz_config_to_json writes) refuses or rereads: DEL, the C1
// controls, the line and paragraph separators (YAML 1.1 line breaks, as
// U+0085 is: a space before one was dropped) and the non-characters U+FFFE
// and U+FFFF. Text records escape them too: terminals and log viewers take
// the C1 controls and separators as line breaks or commands. n is the
// length of the UTF-8 sequence at p.
static bool escaped_anyway(const unsigned char *p, size_t n, unsigned *code) {
    if (n == 1 && *p == 0x7F) *code = 0x7F;
    else if (n == 2 && p[0] == 0xC2 && p[1] <= 0x9F) *code = p[1];
    else if (n == 3 && p[0] == 0xE2 && p[1] == 0x80 && (p[2] == 0xA8 || p[2] == 0xA9)) *code = 0x2000u | (p[2] & 0x3Fu);
    else if (n == 3 && p[0] == 0xEF && p[1] == 0xBF && p[2] >= 0xBE) *code = 0xFFC0u | (p[2] & 0x3Fu);
    else return false;
    return true;
}

// write_char writes the character at p, escaped where a record needs it,
// and returns how many bytes of p it consumed. JSON records escape what
// JSON requires and what escaped_anyway names, and write invalid UTF-8 as
// U+FFFD. Text records escape the same controls but tab (quotes, backslashes
// and invalid bytes go as they are), so that a peer's topic or action
// holding a newline cannot start a record of its own in the log.
static size_t write_char(FILE *out, const unsigned char *p, bool json) {
    static const char *const short_escapes[0x20] = {
        ['\b'] = "\\b", ['\f'] = "\\f", ['\n'] = "\\n", ['\r'] = "\\r", ['\t'] = "\\t"};
    // p is NUL-terminated: the sequence check stops at the NUL, which is
    // no continuation byte, so up to 4 bytes may be named available.
    size_t n = *p < 0x80 ? 1 : lz__utf8_sequence(p, 4);
    unsigned code;
    if (json && (*p == '"' || *p == '\\')) {
        fputc('\\', out);
        fputc(*p, out);
    } else if (*p < 0x20 && (json || *p != '\t')) {
        if (short_escapes[*p]) fputs(short_escapes[*p], out);
        else fprintf(out, "\\u%04x", *p);
    } else if (!n) {
        if (json) fputs("\\ufffd", out);
        else fputc(*p, out);
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

static void write_text(FILE *out, const char *text, bool json) {
    for (const unsigned char *p = (const unsigned char *)text; *p;) p += write_char(out, p, json);
}

void lz__json_write_string(FILE *out, const char *text) {
    fputc('"', out);
    write_text(out, text, true);
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
    } else {
        if (!for_syslog) fprintf(out, "%s %-5s ", ts, lz_log_level_name(level));
        write_text(out, component, false);
        fputs(": ", out);
        write_text(out, msg, false);
    }
    if (!for_syslog) fputc('\n', out);
}

// rotated_name writes "path.index" (path length is bounded in lz_logger_to_file).
static void rotated_name(char *out, size_t size, const char *path, int index) {
    snprintf(out, size, "%s.%d", path, index);
}

// fresh_name names the file a rotation starts, before it takes path's
// place: one per writer (process and logger), so that another writer
// rotating the same path at the same time cannot remove or take it.
static void fresh_name(char *out, size_t size, const lz_logger_t *logger) {
    snprintf(out, size, "%s.rotating-%d-%u", logger->out.path, (int)getpid(), logger->id);
}

// ROTATION_BUSY: what rotation_lock returns while another process rotates.
#define ROTATION_BUSY (-2)

// The loggers of this process rotate one at a time: one that finds
// another rotating its path waits the few renames it takes, then follows
// it (follow_path), rather than write on past max_file_size.
static pthread_mutex_t rotation_mutex = PTHREAD_MUTEX_INITIALIZER;

// rotation_lock takes the lock every process writing a log path rotates
// under (with rotation_mutex held): flock on the file's directory, the one
// thing a rotation does not move. Returns the descriptor to close to
// unlock; ROTATION_BUSY while another process holds it (the record stays
// in the full file and the next one tries again: a lock held by whatever
// else flocks the directory never holds a logger); -1 where there is no
// such lock (a directory that cannot be read, no descriptor left, no
// flock): the rotation goes on unguarded.
static int rotation_lock(const char *path) {
    char dir[PATH_MAX];
    const char *slash = strrchr(path, '/');
    snprintf(dir, sizeof dir, "%.*s", slash ? (int)(slash - path) + (slash == path) : 1, slash ? path : ".");
    int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0 || flock(fd, LOCK_EX | LOCK_NB) == 0) return fd;
    bool busy = errno == EWOULDBLOCK;
    close(fd);
    return busy ? ROTATION_BUSY : -1;
}

// left_path: whether the file open (st, its fstat) is no longer the one at
// path: removed, or moved away (by logrotate, by another writer's rotation).
static bool left_path(const struct stat *st, const char *path) {
    struct stat now;
    if (stat(path, &now) != 0) return errno == ENOENT;
    return now.st_dev != st->st_dev || now.st_ino != st->st_ino;
}

// follow_path makes the file at path (made when there is none) the one
// records go to, shifting nothing: whoever removed or moved the full one
// away did what the rotation would have. Python's handler opens its base
// name again at each rollover. When it cannot be opened, records go on
// into the old file and the next record tries again.
static void follow_path(lz_logger_t *logger) {
    FILE *now = open_append(logger->out.path);
    if (!now) return;
    fclose(logger->out.file);
    logger->out.file = now;
}

// keep_full_file keeps writing to the full file when a rename of the
// rotation fails (path.1 another user's file in a sticky directory, say):
// renaming the fresh file over path then would unlink every record in it.
// The record saying so goes into the file itself.
static void keep_full_file(lz_logger_t *logger, FILE *fresh, const char *fresh_path, const char *from, const char *to,
                           int err) {
    fclose(fresh);
    unlink(fresh_path);
    logger->rotation_stuck = true;
    char msg[PATH_MAX * 3 + 160];
    snprintf(msg, sizeof msg, "cannot rotate %s: renaming %s to %s failed (%s); records go on into it until its "
             "target is set again", logger->out.path, from, to, strerror(err));
    format_record(logger->out.file, (lz_log_format_t)atomic_load(&logger->format), false, LZ_LOG_WARNING, "log",
                  msg);
    fflush(logger->out.file);
}

// shift_files shifts path.N-1 -> path.N ... path -> path.1 and starts an
// empty path, like Python's handler. The new file is opened under a name
// of its own before anything moves: when it cannot be (no descriptor
// left, a full disk), nothing is shifted and records go on into the full
// file until a later record's try works, where reopening after the shift
// would have dropped every record since.
static void shift_files(lz_logger_t *logger) {
    char fresh_path[PATH_MAX + 16], from[PATH_MAX + 16], to[PATH_MAX + 16];
    fresh_name(fresh_path, sizeof fresh_path, logger);
    FILE *fresh = open_append(fresh_path);
    if (!fresh) return;
    for (int i = logger->backup_count - 1; i >= 1; i--) {
        rotated_name(from, sizeof from, logger->out.path, i);
        rotated_name(to, sizeof to, logger->out.path, i + 1);
        // A missing backup is normal while the set fills up; another failure
        // ends the rotation before it shifts anything more.
        if (rename(from, to) != 0 && errno != ENOENT) {
            keep_full_file(logger, fresh, fresh_path, from, to, errno);
            return;
        }
    }
    rotated_name(to, sizeof to, logger->out.path, 1);
    // Gone since the look (removed by someone who does not take the lock):
    // there is nothing to move, and the fresh file takes its place.
    if (rename(logger->out.path, to) != 0 && errno != ENOENT) {
        keep_full_file(logger, fresh, fresh_path, logger->out.path, to, errno);
        return;
    }
    if (rename(fresh_path, logger->out.path) != 0) {
        // Records go on into the full file, path.1 now: the next record
        // finds path free and follows it (follow_path).
        fclose(fresh);
        unlink(fresh_path);
        return;
    }
    fclose(logger->out.file);
    logger->out.file = fresh;
}

// rotate_full rotates the full file (st, its fstat): shifts the set
// (shift_files) or, when the file is no longer at its path (removed, moved
// away, another writer rotated it), goes on at path (follow_path), where
// writing on into the file that left would lose every record (a removed
// file) or fill another's backup past its size.
static void rotate_full(lz_logger_t *logger, const struct stat *st) {
    if (left_path(st, logger->out.path)) follow_path(logger);
    // Failed once, shifting is not tried again until the target is set
    // again: each try would shift the backups it could move, one step a record.
    else if (!logger->rotation_stuck) shift_files(logger);
}

// rotate_locked rotates the file once it reaches max_file_size, under the
// locks of the writers of its path.
static void rotate_locked(lz_logger_t *logger) {
    struct stat st;
    if (logger->max_file_size <= 0 || logger->backup_count <= 0) return;
    if (fstat(fileno(logger->out.file), &st) != 0 || st.st_size < logger->max_file_size) return;
    pthread_mutex_lock(&rotation_mutex);
    int lock = rotation_lock(logger->out.path);
    if (lock != ROTATION_BUSY) rotate_full(logger, &st);
    if (lock >= 0) close(lock); // unlocks
    pthread_mutex_unlock(&rotation_mutex);
}

// emit_locked writes one formatted record to a stream-like target. The
// record is formatted in memory first, so that it leaves in one write;
// out of memory for that, it goes straight into a file or stderr piece by
// piece (records are written under the lock, so ours do not interleave).
// Syslog takes a whole line: there, as in glibc's own syslog when it runs
// out of memory, the record is lost.
static void emit_locked(lz_logger_t *logger, lz_log_level_t level, const char *component,
                        const char *msg) {
    lz_log_format_t format = (lz_log_format_t)atomic_load(&logger->format);
    bool for_syslog = logger->out.kind == LZ_LOG_TARGET_SYSLOG;
    char *line = NULL;
    size_t len = 0;
    lz_text_sink_t sink;
    FILE *out = lz__text_open(&sink);
    if (out) {
        format_record(out, format, for_syslog, level, component, msg);
        line = lz__text_close(out, &sink, &len);
    }
    FILE *stream = logger->out.kind == LZ_LOG_TARGET_STDERR ? stderr
                   : logger->out.kind == LZ_LOG_TARGET_FILE ? logger->out.file
                                                            : NULL;
    if (for_syslog && line) {
        syslog_send(&logger->out, level, line, len);
    } else if (stream) {
        if (line) fwrite(line, 1, len, stream);
        else format_record(stream, format, false, level, component, msg);
        if (stream != stderr) {
            fflush(stream);
            rotate_locked(logger);
        }
    }
    free(line);
}

// A record's message is formatted on the stack when it fits, as nearly
// every one does, so that out of memory loses no record. A longer one that
// finds no memory is cut to fit, CUT_MARK at its end.
#define MESSAGE_INLINE 1024
#define CUT_MARK " [cut: out of memory]"

// format_message returns the message: in buf, or in *heap (the caller
// frees it). NULL when format cannot be formatted (an encoding error).
static const char *format_message(char buf[MESSAGE_INLINE], char **heap, const char *format, va_list args) {
    va_list again;
    va_copy(again, args);
    int n = vsnprintf(buf, MESSAGE_INLINE, format, args);
    if (n >= MESSAGE_INLINE && (*heap = malloc((size_t)n + 1))) {
        vsnprintf(*heap, (size_t)n + 1, format, again);
    } else if (n >= MESSAGE_INLINE) {
        size_t len = lz__utf8_prefix(buf, MESSAGE_INLINE - sizeof CUT_MARK);
        memcpy(buf + len, CUT_MARK, sizeof CUT_MARK);
    }
    va_end(again);
    return n < 0 ? NULL : *heap ? *heap : buf;
}

void lz_logger_vwrite(lz_logger_t *logger, lz_log_level_t level, const char *component,
                      const char *format, va_list args) {
    if (!logger || !format || (int)level < LZ_LOG_TRACE || level >= LZ_LOG_OFF) return;
    if (level < lz_logger_level(logger)) return;
    char inline_msg[MESSAGE_INLINE], *heap = NULL;
    const char *msg = format_message(inline_msg, &heap, format, args);
    if (!msg) return;
    if (!component) component = "liberzmq";
    lz_log_fn fn = NULL;
    void *arg = NULL;
    log_call_t call = {logger, 0, log_calls_here};
    pthread_mutex_lock(&logger->lock);
    if (logger->out.kind == LZ_LOG_TARGET_CALLBACK) {
        fn = logger->out.fn;
        arg = logger->out.arg;
        call.parity = logger->parity;
        logger->calls[call.parity]++;
    } else {
        emit_locked(logger, level, component, msg);
    }
    pthread_mutex_unlock(&logger->lock);
    if (fn) { // outside the lock: a callback that logs again must not deadlock
        log_calls_here = &call;
        fn(level, component, msg, arg);
        log_calls_here = call.outer;
        pthread_mutex_lock(&logger->lock);
        call_uncount_locked(logger, call.parity);
        pthread_mutex_unlock(&logger->lock);
    }
    free(heap);
}

void lz_logger_write(lz_logger_t *logger, lz_log_level_t level, const char *component,
                     const char *format, ...) {
    va_list args;
    va_start(args, format);
    lz_logger_vwrite(logger, level, component, format, args);
    va_end(args);
}

int lz__logger_configure(lz_logger_t *logger, const lz_config_t *config) {
    if (!logger || !config) return lz__fail(LZ_EINVAL, "log: logger and config are required");
    lz_log_settings_t s;
    int rc = lz__log_settings_read(config, &s);
    lz_log_switch_t *sw = rc == LZ_OK ? lz__log_switch_open(&s) : NULL;
    if (!sw) return lz_last_error_code();
    lz__log_switch_commit(logger, &sw);
    lz_logger_set_format(logger, s.format);
    lz_logger_set_level(logger, s.level);
    return LZ_OK;
}

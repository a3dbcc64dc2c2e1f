/* Internal view of logging: the logging.* keys resolved into one plain
 * struct (config.c knows the sources, so it resolves debug and the target),
 * the context's hook to apply them, and the JSON string writer that both the
 * JSON log format and lz_config_to_json use. */
#ifndef LZ_CORE_LOG_H
#define LZ_CORE_LOG_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include "liberzmq/config.h"
#include "liberzmq/log.h"

// Where records go. CALLBACK is only reachable through lz_logger_to_callback.
typedef enum lz_log_target {
    LZ_LOG_TARGET_STDERR = 0,
    LZ_LOG_TARGET_FILE,
    LZ_LOG_TARGET_SYSLOG,
    LZ_LOG_TARGET_NONE,
    LZ_LOG_TARGET_CALLBACK
} lz_log_target_t;

// The effective logging settings. Strings are owned by the config.
typedef struct lz_log_settings {
    lz_log_level_t level;      // logging.level, lowered to DEBUG by debug
    lz_log_format_t format;
    lz_log_target_t target;    // file when file_path is set and target defaulted
    const char *file_path;
    int64_t max_file_size;     // bytes; 0 never rotates
    int backup_count;          // 0 never rotates
    const char *syslog_ident;
} lz_log_settings_t;

// lz__log_settings_read resolves logging.* and debug from config; LZ_ECONFIG
// when they contradict (target file without a path). Implemented in config.c
// next to the key table, because it needs each key's source.
int lz__log_settings_read(const lz_config_t *config, lz_log_settings_t *out);

// lz__logger_configure applies the config's logging settings to logger
// (target, rotation, format, level). On failure (LZ_ECONFIG, or LZ_EIO when
// the file cannot be opened) the logger is left as it was.
int lz__logger_configure(lz_logger_t *logger, const lz_config_t *config);

// lz__log_target_same: whether a and b send records to the same place
// (target, and the file path or syslog ident it uses). A reload switches
// the logger's target only when they differ, so a target the application
// set (lz_logger_to_callback) outlives reloads that leave it alone.
bool lz__log_target_same(const lz_log_settings_t *a, const lz_log_settings_t *b);

// A target opened ahead of a switch: what can fail (opening the file) is
// done before anything changes, so a reload is all or nothing.
typedef struct lz_log_switch lz_log_switch_t;

// lz__log_switch_open opens settings' target (the file appended to,
// created 0644; syslog's socket connected, its ident copied) and keeps its rotation limits. NULL
// with the error set: LZ_EIO naming the file, LZ_EINVAL for a path too
// long, LZ_ENOMEM. The caller owns it: commit it or discard it.
lz_log_switch_t *lz__log_switch_open(const lz_log_settings_t *settings);

// lz__log_switch_commit makes *sw_p logger's target and rotation limits,
// and frees it (*sw_p becomes NULL). The old target is closed (a file
// flushed) under the lock records are written under, so a record being
// written finishes in the old file and every later one goes to the new.
// Cannot fail. Thread safe.
void lz__log_switch_commit(lz_logger_t *logger, lz_log_switch_t **sw_p);

// lz__log_switch_discard closes what *sw_p opened and frees it; NULL is a no-op.
void lz__log_switch_discard(lz_log_switch_t **sw_p);

// lz__logger_set_rotation sets the size at which the file target rotates
// and how many backups it keeps (0: never rotates). Thread safe.
void lz__logger_set_rotation(lz_logger_t *logger, int64_t max_file_size, int backup_count);

// lz__log_syslog_path makes syslog targets opened (or connecting again)
// from now on send to the socket at path, /dev/log until then: for tests,
// which listen on a socket of their own. Not thread safe.
void lz__log_syslog_path(const char *path);

// lz__json_write_string writes text as a quoted, escaped JSON string.
void lz__json_write_string(FILE *out, const char *text);

#endif

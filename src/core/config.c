/* Configuration: one table of typed keys, each value remembering the rank
 * of its source so defaults < file < env < api holds whatever the call
 * order. Files are YAML (JSON read as YAML) parsed with libyaml. */
#include <ctype.h>
#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>
#include <yaml.h>

#include "core/context.h"
#include "core/error.h"
#include "core/log.h"
#include "core/otlp.h"
#include "core/prometheus.h"
#include "core/regular_file.h"
#include "core/secure_env.h"
#include "core/security.h"
#include "core/textstream.h"
#include "core/yaml_scalar.h"
#include "liberzmq/reqrep.h"

typedef enum { KEY_INT, KEY_BOOL, KEY_STRING } key_type_t;

// A string validator returns NULL when text is acceptable, else what is
// expected. One that allocates (tracing.otlp_endpoint's parses the URL with
// libcurl) and so could not tell for want of memory leaves errno ENOMEM,
// as the allocator sets it.
typedef const char *(*string_check_fn)(const char *text);

typedef struct {
    const char *name;
    key_type_t type;
    int64_t def_int; // also the default of a bool
    int64_t min, max;
    const char *def_str;
    string_check_fn check;
} key_def_t;

static const char *check_level(const char *text);
static const char *check_format(const char *text);
static const char *check_target(const char *text);
static const char *check_nonempty(const char *text);

// Index names keep lz__settings_read and the key table in step at compile time.
enum key_id {
    K_IO_THREADS, K_MAX_SOCKETS, K_LINGER, K_HWM, K_HWM_OUT, K_HWM_IN, K_SEND_TIMEOUT,
    K_RECEIVE_TIMEOUT, K_REQUEST_TIMEOUT, K_REQUEST_RETRIES, K_COOLDOWN, K_HANDLER_MAX,
    K_RECONNECT, K_RECONNECT_MAX, K_HEARTBEAT, K_IMMEDIATE, K_MAX_MESSAGE,
    K_LOG_LEVEL, K_LOG_FORMAT, K_LOG_TARGET, K_LOG_FILE, K_LOG_MAX_SIZE, K_LOG_BACKUPS,
    K_LOG_CONSOLE, K_LOG_IDENT,
    K_SER_DEFAULT, K_SER_ASCII, K_SER_INDENT, K_SER_VALIDATE,
    K_METRICS_LISTEN,
    K_SEC_SECRET, K_SEC_SERVER, K_SEC_AUTHORIZED, K_SEC_AUTHORIZED_FILE, K_SEC_ALLOW, K_SEC_DENY, K_SEC_AUDIT,
    K_SEC_CUT, K_SEC_PLAIN_USER, K_SEC_PLAIN_PASSWORD, K_SEC_PLAIN_USERS_FILE,
    K_SEC_GSSAPI_SERVER, K_SEC_GSSAPI_PRINCIPAL, K_SEC_GSSAPI_SERVICE, K_SEC_GSSAPI_PLAINTEXT, K_SEC_GSSAPI_PRINCIPALS,
    K_SEC_GSSAPI_PRINCIPALS_FILE, K_SEC_GSSAPI_PRINCIPAL_TYPE, K_SEC_GSSAPI_SERVICE_TYPE,
    K_TRACE_ENABLED, K_TRACE_LOG, K_TRACE_OTLP, K_TRACE_SERVICE, K_TRACE_BATCH, K_TRACE_INTERVAL,
    K_TRACE_HEADERS, K_TRACE_CA_FILE, K_TRACE_EXT_FRAMES,
    K_TASK_RETRIES, K_TASK_RETRY_DELAY,
    K_PLUGINS_LOAD,
    K_DEBUG, K_VALIDATE_DATA,
    K_COUNT
};

#define INT_KEY(n, d, lo, hi) {n, KEY_INT, d, lo, hi, NULL, NULL}
#define BOOL_KEY(n, d) {n, KEY_BOOL, d, 0, 1, NULL, NULL}
#define STR_KEY(n, d, check) {n, KEY_STRING, 0, 0, 0, d, check}

// Section keys are grouped: lz_config_to_json relies on it.
static const key_def_t keys[K_COUNT] = {
    [K_IO_THREADS] = INT_KEY("zmq.io_threads", 1, 1, 64),
    // libzmq adds its own threads to this count in an int and allocates a slot per socket up front: near
    // INT_MAX the sum overflows and the allocation aborts the process. A million is past any fd limit.
    [K_MAX_SOCKETS] = INT_KEY("zmq.max_sockets", 1024, 1, 1 << 20),
    [K_LINGER] = INT_KEY("zmq.linger", 1000, -1, INT_MAX),
    [K_HWM] = INT_KEY("zmq.high_water_mark", 1000, 0, INT_MAX),
    [K_HWM_OUT] = INT_KEY("zmq.hwm_outbound", -1, -1, INT_MAX),
    [K_HWM_IN] = INT_KEY("zmq.hwm_inbound", -1, -1, INT_MAX),
    [K_SEND_TIMEOUT] = INT_KEY("zmq.send_timeout", 5000, -1, INT_MAX),
    [K_RECEIVE_TIMEOUT] = INT_KEY("zmq.receive_timeout", 5000, -1, INT_MAX),
    [K_REQUEST_TIMEOUT] = INT_KEY("zmq.request_timeout", 5000, 1, INT_MAX),
    [K_REQUEST_RETRIES] = INT_KEY("zmq.request_retries", 3, 0, LZ_CLIENT_RETRIES_MAX),
    [K_COOLDOWN] = INT_KEY("zmq.failed_socket_cooldown", 10000, 0, INT_MAX),
    [K_HANDLER_MAX] = INT_KEY("zmq.handler_max_concurrency", 4, 1, 1024),
    [K_RECONNECT] = INT_KEY("zmq.reconnect_interval", 100, -1, INT_MAX),
    [K_RECONNECT_MAX] = INT_KEY("zmq.reconnect_interval_max", 0, 0, INT_MAX),
    // Its timeout, three intervals, must fit libzmq's int too.
    [K_HEARTBEAT] = INT_KEY("zmq.heartbeat_interval", 0, 0, INT_MAX / 3),
    [K_IMMEDIATE] = BOOL_KEY("zmq.immediate", false),
    [K_MAX_MESSAGE] = INT_KEY("zmq.max_message_size", -1, -1, INT64_MAX),
    [K_LOG_LEVEL] = STR_KEY("logging.level", "INFO", check_level),
    [K_LOG_FORMAT] = STR_KEY("logging.format", "text", check_format),
    [K_LOG_TARGET] = STR_KEY("logging.target", "stderr", check_target),
    [K_LOG_FILE] = STR_KEY("logging.file_path", "", NULL),
    [K_LOG_MAX_SIZE] = INT_KEY("logging.max_file_size", 10485760, 0, INT64_MAX),
    [K_LOG_BACKUPS] = INT_KEY("logging.backup_count", 5, 0, 1000),
    [K_LOG_CONSOLE] = BOOL_KEY("logging.console_output", true),
    [K_LOG_IDENT] = STR_KEY("logging.syslog_ident", "liberzmq", check_nonempty),
    [K_SER_DEFAULT] = STR_KEY("serialization.default", "json", check_nonempty),
    [K_SER_ASCII] = BOOL_KEY("serialization.json_ensure_ascii", false),
    [K_SER_INDENT] = INT_KEY("serialization.json_indent", -1, -1, 64),
    [K_SER_VALIDATE] = BOOL_KEY("serialization.protobuf_validate", true),
    [K_METRICS_LISTEN] = STR_KEY("metrics.prometheus_listen", "", lz__prometheus_check_address),
    [K_SEC_SECRET] = STR_KEY("security.curve_secret_key", "", lz__security_check_key),
    [K_SEC_SERVER] = STR_KEY("security.curve_server_key", "", lz__security_check_key),
    [K_SEC_AUTHORIZED] = STR_KEY("security.authorized_keys", "", lz__security_check_key_list),
    [K_SEC_AUTHORIZED_FILE] = STR_KEY("security.authorized_keys_file", "", NULL),
    [K_SEC_ALLOW] = STR_KEY("security.allow_addresses", "", lz__security_check_address_list),
    [K_SEC_DENY] = STR_KEY("security.deny_addresses", "", lz__security_check_address_list),
    [K_SEC_AUDIT] = BOOL_KEY("security.audit", false),
    [K_SEC_CUT] = BOOL_KEY("security.cut_revoked", true),
    [K_SEC_PLAIN_USER] = STR_KEY("security.plain_username", "", lz__security_check_plain_text),
    [K_SEC_PLAIN_PASSWORD] = STR_KEY("security.plain_password", "", lz__security_check_plain_text),
    [K_SEC_PLAIN_USERS_FILE] = STR_KEY("security.plain_users_file", "", NULL),
    [K_SEC_GSSAPI_SERVER] = BOOL_KEY("security.gssapi_server", false),
    [K_SEC_GSSAPI_PRINCIPAL] = STR_KEY("security.gssapi_principal", "", lz__gssapi_check_name),
    [K_SEC_GSSAPI_SERVICE] = STR_KEY("security.gssapi_service_principal", "", lz__gssapi_check_name),
    [K_SEC_GSSAPI_PLAINTEXT] = BOOL_KEY("security.gssapi_plaintext", false),
    [K_SEC_GSSAPI_PRINCIPALS] = STR_KEY("security.gssapi_principals", "", lz__gssapi_check_name_list),
    [K_SEC_GSSAPI_PRINCIPALS_FILE] = STR_KEY("security.gssapi_principals_file", "", NULL),
    // krb5, not libzmq's hostbased: what liberzmq passed before these keys existed.
    [K_SEC_GSSAPI_PRINCIPAL_TYPE] = STR_KEY("security.gssapi_principal_type", "krb5", lz__gssapi_check_name_type),
    [K_SEC_GSSAPI_SERVICE_TYPE] = STR_KEY("security.gssapi_service_principal_type", "krb5", lz__gssapi_check_name_type),
    [K_TRACE_ENABLED] = BOOL_KEY("tracing.enabled", false),
    [K_TRACE_LOG] = BOOL_KEY("tracing.log", false),
    [K_TRACE_OTLP] = STR_KEY("tracing.otlp_endpoint", "", lz__otlp_check_endpoint),
    [K_TRACE_SERVICE] = STR_KEY("tracing.service_name", "liberzmq", check_nonempty),
    // The queue holds four batches of spans of about 340 bytes: 8192 makes 11 MB.
    [K_TRACE_BATCH] = INT_KEY("tracing.otlp_batch", 512, 1, 8192),
    [K_TRACE_INTERVAL] = INT_KEY("tracing.otlp_interval", 1000, 10, 3600000),
    [K_TRACE_HEADERS] = STR_KEY("tracing.otlp_headers", "", lz__otlp_check_headers),
    [K_TRACE_CA_FILE] = STR_KEY("tracing.otlp_ca_file", "", NULL),
    // Off for plain peers that unpack exactly [topic, payload] or [request_id, payload].
    [K_TRACE_EXT_FRAMES] = BOOL_KEY("tracing.extension_frames", true),
    [K_TASK_RETRIES] = INT_KEY("tasks.max_retries", 0, 0, 100),
    // The last retry waits max_retries times the delay: that must fit an int.
    [K_TASK_RETRY_DELAY] = INT_KEY("tasks.retry_delay", 1000, 0, INT_MAX / 100),
    // Comma-separated shared objects, loaded in order by lz_context_new and reloads (plugin.h).
    [K_PLUGINS_LOAD] = STR_KEY("plugins.load", "", NULL),
    [K_DEBUG] = BOOL_KEY("debug", false),
    [K_VALIDATE_DATA] = BOOL_KEY("validate_data", true),
};

// The keys a reload applies to a running context (lz_context_reload,
// docs/configuration.md "Reloading"): each is read where it is used, not
// copied into a socket or a thread at creation, or what uses it is
// replaced as a whole (the log target, the span exporter) or added to (the
// plugins; one removed stays: context.c says so). Any other key needs a restart.
static const bool live_keys[K_COUNT] = {
    [K_REQUEST_TIMEOUT] = true, [K_REQUEST_RETRIES] = true,
    [K_LOG_LEVEL] = true, [K_LOG_FORMAT] = true, [K_DEBUG] = true,
    [K_LOG_TARGET] = true, [K_LOG_FILE] = true, [K_LOG_MAX_SIZE] = true, [K_LOG_BACKUPS] = true,
    [K_LOG_CONSOLE] = true, [K_LOG_IDENT] = true,
    [K_SEC_AUTHORIZED] = true, [K_SEC_AUTHORIZED_FILE] = true, [K_SEC_ALLOW] = true, [K_SEC_DENY] = true,
    [K_SEC_AUDIT] = true, [K_SEC_CUT] = true, [K_SEC_PLAIN_USERS_FILE] = true, [K_SEC_GSSAPI_PRINCIPALS] = true,
    [K_SEC_GSSAPI_PRINCIPALS_FILE] = true,
    [K_TRACE_ENABLED] = true, [K_TRACE_LOG] = true,
    [K_TRACE_OTLP] = true, [K_TRACE_SERVICE] = true, [K_TRACE_BATCH] = true, [K_TRACE_INTERVAL] = true,
    [K_TRACE_HEADERS] = true, [K_TRACE_CA_FILE] = true, [K_TRACE_EXT_FRAMES] = true,
    [K_TASK_RETRIES] = true, [K_TASK_RETRY_DELAY] = true,
    [K_PLUGINS_LOAD] = true,
};

// Keys whose values carry credentials: error details and `lz config` never show them.
static const bool secret_keys[K_COUNT] = {
    [K_SEC_SECRET] = true, [K_SEC_PLAIN_PASSWORD] = true, [K_TRACE_HEADERS] = true,
};

// Other names for a key, accepted everywhere a key name is.
static const struct { const char *alias, *name; } aliases[] = {
    {"zmq.socket_timeout", "zmq.receive_timeout"}, // the Python LiberZMQ's name
};

static const char *const sections[] = {"zmq",     "logging", "serialization", "metrics",
                                       "security", "tracing", "tasks",         "plugins"};

enum { RANK_DEFAULT = 0, RANK_FILE = 1, RANK_ENV = 2, RANK_API = 3 };

typedef struct {
    int64_t i;    // int and bool values
    char *s;      // string values
    int rank;
    char *source; // "file <path>", "env <NAME>", "api"; NULL for the default
} slot_t;

struct lz_config {
    slot_t slots[K_COUNT];
};

// Where a value comes from, for precedence and for error details.
typedef struct {
    int rank;
    const char *label; // "file <path>", "env <NAME>", "api"
    unsigned long line; // 1-based line in a file, 0 otherwise
} origin_t;

// A parsed, validated value; s is borrowed until assigned.
typedef struct {
    int64_t i;
    const char *s;
} value_t;

static const char *check_level(const char *text) {
    lz_log_level_t level;
    return lz_log_level_parse(text, &level) == LZ_OK
               ? NULL : "a log level (trace, debug, info, warning, error, critical, off)";
}

static const char *check_format(const char *text) {
    bool ok = strcasecmp(text, "text") == 0 || strcasecmp(text, "json") == 0 ||
              strstr(text, "%(") != NULL; // a Python logging format string means text
    return ok ? NULL : "text, json or a Python %(...)s format string";
}

static const char *check_target(const char *text) {
    static const char *const targets[] = {"stderr", "file", "syslog", "none"};
    for (size_t i = 0; i < sizeof targets / sizeof targets[0]; i++)
        if (strcasecmp(text, targets[i]) == 0) return NULL;
    return "stderr, file, syslog or none";
}

static const char *check_nonempty(const char *text) {
    return *text ? NULL : "a non-empty string";
}

// key_type_name: what a key of type takes, for error details.
static const char *key_type_name(key_type_t type) {
    return type == KEY_STRING ? "a string" : type == KEY_BOOL ? "a boolean" : "an integer";
}

static int key_find(const char *name) {
    for (size_t i = 0; i < sizeof aliases / sizeof aliases[0]; i++)
        if (strcmp(name, aliases[i].alias) == 0) name = aliases[i].name;
    for (int k = 0; k < K_COUNT; k++)
        if (strcmp(name, keys[k].name) == 0) return k;
    return -1;
}

static bool is_section(const char *name) {
    for (size_t i = 0; i < sizeof sections / sizeof sections[0]; i++)
        if (strcmp(name, sections[i]) == 0) return true;
    return false;
}

/* ---- slots: construction, copy, assignment ---- */

// slot_clear wipes a value before freeing it: secrets (security.*) among
// them must not linger in freed memory.
static void slot_clear(slot_t *slot) {
    if (slot->s) explicit_bzero(slot->s, strlen(slot->s));
    free(slot->s);
    free(slot->source);
    slot->s = NULL;
    slot->source = NULL;
}

static void config_free_slots(lz_config_t *config) {
    for (int k = 0; k < K_COUNT; k++) slot_clear(&config->slots[k]);
}

// slot_store replaces the slot's value and source; the slot is untouched on ENOMEM.
static int slot_store(slot_t *slot, int64_t i, const char *s, int rank, const char *source) {
    char *s_copy = s ? strdup(s) : NULL;
    char *source_copy = source ? strdup(source) : NULL;
    if ((s && !s_copy) || (source && !source_copy)) {
        free(s_copy);
        free(source_copy);
        return lz__fail(LZ_ENOMEM, "config: out of memory");
    }
    slot_clear(slot);
    slot->i = i;
    slot->s = s_copy;
    slot->rank = rank;
    slot->source = source_copy;
    return LZ_OK;
}

static int slot_reset(slot_t *slot, int k) {
    return slot_store(slot, keys[k].def_int, keys[k].def_str, RANK_DEFAULT, NULL);
}

static bool slot_equal(int k, const slot_t *a, const slot_t *b) {
    return keys[k].type == KEY_STRING ? strcmp(a->s, b->s) == 0 : a->i == b->i;
}

// slot_same_source: what a value means may depend on where it came from
// (debug against logging.level's source, logging.target's default).
static bool slot_same_source(const slot_t *a, const slot_t *b) {
    return a->source == b->source || (a->source && b->source && strcmp(a->source, b->source) == 0);
}

static int slot_copy(slot_t *to, const slot_t *from) {
    return slot_store(to, from->i, from->s, from->rank, from->source);
}

lz_config_t *lz_config_new(void) {
    lz_config_t *config = calloc(1, sizeof *config);
    if (!config) return lz__fail_null(LZ_ENOMEM, "config: out of memory");
    for (int k = 0; k < K_COUNT; k++) {
        if (slot_reset(&config->slots[k], k) < 0) {
            lz_config_destroy(&config);
            return NULL;
        }
    }
    return config;
}

lz_config_t *lz_config_dup(const lz_config_t *config) {
    if (!config) return lz__fail_null(LZ_EINVAL, "config: NULL configuration");
    lz_config_t *copy = calloc(1, sizeof *copy);
    if (!copy) return lz__fail_null(LZ_ENOMEM, "config: out of memory");
    for (int k = 0; k < K_COUNT; k++) {
        if (slot_copy(&copy->slots[k], &config->slots[k]) < 0) {
            lz_config_destroy(&copy);
            return NULL;
        }
    }
    return copy;
}

void lz_config_destroy(lz_config_t **config_p) {
    if (!config_p || !*config_p) return;
    config_free_slots(*config_p);
    free(*config_p);
    *config_p = NULL;
}

// commit moves staging's values into config (a load succeeded) and frees staging.
static void commit(lz_config_t *config, lz_config_t *staging) {
    lz_config_t old = *config;
    *config = *staging;
    *staging = old;
    lz_config_destroy(&staging);
}

/* ---- reloading: what a running context may take ---- */

lz_config_t *lz__config_live_merge(const lz_config_t *current, const lz_config_t *next,
                                   void (*restart)(const char *name, void *arg), void *arg, size_t *changed) {
    lz_config_t *merged = lz_config_dup(next);
    *changed = 0;
    for (int k = 0; merged && k < K_COUNT; k++) {
        bool same = slot_equal(k, &current->slots[k], &next->slots[k]);
        if (same && (!live_keys[k] || slot_same_source(&current->slots[k], &next->slots[k]))) continue;
        if (live_keys[k]) {
            (*changed)++;
        } else if (slot_copy(&merged->slots[k], &current->slots[k]) == LZ_OK) {
            restart(keys[k].name, arg);
        } else {
            lz_config_destroy(&merged);
        }
    }
    return merged;
}

int lz__config_keep_api(lz_config_t *config, const lz_config_t *current) {
    for (int k = 0; k < K_COUNT; k++) {
        int rc = current->slots[k].rank == RANK_API ? slot_copy(&config->slots[k], &current->slots[k]) : LZ_OK;
        if (rc != LZ_OK) return rc;
    }
    return LZ_OK;
}

/* ---- values: parsing text, validating, assigning with precedence ---- */

static bool parse_int(const char *text, int64_t *out) {
    if (!((*text >= '0' && *text <= '9') || *text == '-' || *text == '+')) return false;
    char *end;
    errno = 0;
    long long v = strtoll(text, &end, 10);
    if (errno != 0 || end == text || *end != '\0') return false;
    *out = v;
    return true;
}

// parse_bool reads a boolean's text as pydantic (v2) reads a string for a
// bool field, the Python LiberZMQ's settings model: these words in any
// case, nothing else (no spaces around them).
static bool parse_bool(const char *text, bool *out) {
    static const char *const truths[] = {"true", "yes", "on", "1", "t", "y"};
    static const char *const lies[] = {"false", "no", "off", "0", "f", "n"};
    for (size_t i = 0; i < sizeof truths / sizeof *truths; i++) {
        if (strcasecmp(text, truths[i]) == 0) { *out = true; return true; }
        if (strcasecmp(text, lies[i]) == 0) { *out = false; return true; }
    }
    return false;
}

// where formats an origin for an error detail: "file /p:3", "env NAME", "api".
static const char *where(const origin_t *o, char *buf, size_t size) {
    if (o->line) snprintf(buf, size, "%s:%lu", o->label, o->line);
    else snprintf(buf, size, "%s", o->label);
    return buf;
}

// fail_value reports a bad value with the key, where it came from and the
// value, except a secret one's: a mistyped secret is still nearly the
// secret, and details end up in logs.
static int fail_value(const char *name, const origin_t *o, const char *why, const char *text) {
    char at[PATH_MAX + 32];
    if (lz_config_key_is_secret(name))
        return lz__fail(LZ_ECONFIG, "config: key '%s' from %s: %s (value not shown)", name,
                        where(o, at, sizeof at), why);
    return lz__fail(LZ_ECONFIG, "config: key '%s' from %s: %s: '%.80s'", name,
                    where(o, at, sizeof at), why, text);
}

// fail_unknown reports an unknown key without its value: a misspelt key
// may be any secret's (security.plain_passwrod), whose value is the secret.
static int fail_unknown(const char *name, const origin_t *o) {
    char at[PATH_MAX + 32];
    return lz__fail(o->rank == RANK_API ? LZ_ENOTFOUND : LZ_ECONFIG, "config: unknown key '%.80s' from %s", name,
                    where(o, at, sizeof at));
}

// fail_range reports text, a number, as outside key k's range.
static int fail_range(int k, const char *name, const origin_t *o, const char *text) {
    char why[64];
    snprintf(why, sizeof why, "out of range [%" PRId64 "..%" PRId64 "]", keys[k].min, keys[k].max);
    return fail_value(name, o, why, text);
}

// validate checks a typed value against its key's range or string check.
static int validate(int k, const char *name, const value_t *v, const origin_t *o) {
    const key_def_t *def = &keys[k];
    char why[256]; // "expected " and the longest check's answer (otlp_headers')
    char text[32];
    if (def->type == KEY_STRING) {
        errno = 0;
        const char *expected = def->check ? def->check(v->s) : NULL;
        if (!expected) return LZ_OK;
        if (errno == ENOMEM) return lz__fail(LZ_ENOMEM, "config: out of memory checking key '%s'", name);
        snprintf(why, sizeof why, "expected %s", expected);
        return fail_value(name, o, why, v->s);
    }
    if (v->i >= def->min && v->i <= def->max) return LZ_OK;
    snprintf(text, sizeof text, "%" PRId64, v->i);
    return fail_range(k, name, o, text);
}

// store assigns a validated value unless a higher-ranked source already set it.
static int store(lz_config_t *config, int k, const value_t *v, const origin_t *o) {
    slot_t *slot = &config->slots[k];
    if (o->rank < slot->rank) return LZ_OK;
    const char *s = v->s;
    if (k == K_LOG_LEVEL) { // stored canonically, so Python reads it too
        lz_log_level_t level = LZ_LOG_INFO;
        lz_log_level_parse(v->s, &level);
        s = lz_log_level_name(level);
    }
    return slot_store(slot, v->i, s, o->rank, o->label);
}

// set_value validates a value of key k and assigns it.
static int set_value(lz_config_t *config, int k, const char *name, const value_t *v, const origin_t *o) {
    int rc = validate(k, name, v, o);
    return rc < 0 ? rc : store(config, k, v, o);
}

// set_text parses a key's value from text (an env value, the API; a file's
// scalars are YAML's, read by file_scalar).
static int set_text(lz_config_t *config, const char *name, const char *text, const origin_t *o) {
    int k = key_find(name);
    if (k < 0) return fail_unknown(name, o);
    value_t v = {0, text};
    bool b;
    if (keys[k].type == KEY_INT && !parse_int(text, &v.i))
        return fail_value(name, o, "not an integer", text);
    if (keys[k].type == KEY_BOOL) {
        if (!parse_bool(text, &b)) return fail_value(name, o, "not a boolean", text);
        v.i = b;
    }
    return set_value(config, k, name, &v, o);
}

// set_null gives a key back its default (YAML null), respecting precedence.
static int set_null(lz_config_t *config, const char *name, const origin_t *o) {
    int k = key_find(name);
    if (k < 0) return fail_unknown(name, o);
    if (o->rank < config->slots[k].rank) return LZ_OK;
    return slot_reset(&config->slots[k], k);
}

/* ---- files ---- */

// The tag an untagged scalar of a file's document has (compose_node): a
// tag libyaml never reads, since a space ends one. libyaml's own loader
// gives an untagged scalar, one tagged !!str and one tagged ! the same tag,
// while safe_load reads 5, !!str 5 and ! "5" as 5, "5" and 5.
#define UNTAGGED_SCALAR "untagged scalar"

typedef struct {
    lz_config_t *config;
    yaml_document_t *doc;
    const char *path;
    char label[PATH_MAX + 8];
} file_load_t;

static origin_t file_origin(const file_load_t *fl, const yaml_node_t *node) {
    origin_t o = {RANK_FILE, fl->label, (unsigned long)node->start_mark.line + 1};
    return o;
}

// scalar_tag is the explicit tag of a scalar node, NULL when it has none.
static const char *scalar_tag(const yaml_node_t *node) {
    const char *tag = (const char *)node->tag;
    return strcmp(tag, UNTAGGED_SCALAR) == 0 ? NULL : tag;
}

// node_scalar reads a scalar node as safe_load does.
static void node_scalar(const file_load_t *fl, const yaml_node_t *node, lz_yaml_scalar_t *out) {
    lz__yaml_scalar_read((const char *)node->data.scalar.value, scalar_tag(node),
                         node->data.scalar.style == YAML_PLAIN_SCALAR_STYLE, out);
}

// node_text is a node's scalar text, or what it is instead, for error details.
static const char *node_text(const yaml_node_t *node) {
    if (node->type == YAML_SCALAR_NODE) return (const char *)node->data.scalar.value;
    return node->type == YAML_SEQUENCE_NODE ? "a list" : "a mapping";
}

// fail_tag refuses a mapping tagged other than !!map: safe_load builds a
// set, pairs or nothing at all from it.
static int fail_tag(const char *name, const origin_t *o, const yaml_node_t *map) {
    char why[96];
    lz__yaml_tag_refusal((const char *)map->tag, why, sizeof why);
    return fail_value(name, o, why, node_text(map));
}

static bool mapping_tag_ok(const yaml_node_t *map) {
    return strcmp((const char *)map->tag, YAML_DEFAULT_MAPPING_TAG) == 0;
}

// yaml_type_check: a key takes a value of its type, as YAML 1.1 reads it
// (docs/configuration.md); as the Python model (pydantic) converts them, an
// integer key takes a float without a fraction (500.0) too, and a boolean
// key the integers 0 and 1 and the floats 0.0 and 1.0.
static int yaml_type_check(int k, const char *name, const lz_yaml_scalar_t *s, const char *text,
                           const origin_t *o) {
    key_type_t type = keys[k].type;
    bool number = s->type == LZ_YAML_INT || (s->type == LZ_YAML_FLOAT && s->whole);
    if (s->type == LZ_YAML_REFUSED) return fail_value(name, o, s->what, text);
    if (type == KEY_INT && number) return s->too_big ? fail_range(k, name, o, text) : LZ_OK;
    bool bit = number && !s->too_big && (s->i == 0 || s->i == 1);
    if (type == KEY_BOOL && (s->type == LZ_YAML_BOOL || bit)) return LZ_OK;
    if (type == KEY_STRING && s->type == LZ_YAML_STRING) return LZ_OK;
    char why[160];
    snprintf(why, sizeof why, "expected %s, YAML 1.1 reads %s%s", key_type_name(type), s->what,
             type == KEY_STRING ? " (quote it for the text)" : "");
    return fail_value(name, o, why, text);
}

static int file_scalar(file_load_t *fl, const char *name, const yaml_node_t *key,
                       const yaml_node_t *value) {
    origin_t o = file_origin(fl, key);
    int k = key_find(name);
    if (k < 0) return fail_unknown(name, &o);
    if (value->type != YAML_SCALAR_NODE)
        return fail_value(name, &o, "expected a single value", node_text(value));
    lz_yaml_scalar_t s;
    node_scalar(fl, value, &s);
    if (s.type == LZ_YAML_NULL) return set_null(fl->config, name, &o);
    // Text for a number or a flag ("500", "yes") is read as its text, as the
    // Python LiberZMQ's pydantic model reads it (500, true).
    if (s.type == LZ_YAML_STRING && keys[k].type != KEY_STRING) return set_text(fl->config, name, node_text(value), &o);
    int rc = yaml_type_check(k, name, &s, node_text(value), &o);
    value_t v = {s.i, node_text(value)};
    return rc < 0 ? rc : set_value(fl->config, k, name, &v, &o);
}

// key_name is the name a mapping key holds: its text when safe_load reads
// it as a string, else NULL with the error set. section: the mapping's, or NULL.
static const char *key_name(const file_load_t *fl, const char *section, const yaml_node_t *key) {
    origin_t o = file_origin(fl, key);
    if (key->type != YAML_SCALAR_NODE) {
        fail_unknown(node_text(key), &o);
        return NULL;
    }
    lz_yaml_scalar_t s;
    node_scalar(fl, key, &s);
    if (s.type == LZ_YAML_STRING) return node_text(key);
    char at[PATH_MAX + 32];
    lz__fail(LZ_ECONFIG, "config: key '%s%s%.80s' from %s: %s%s%s", section ? section : "", section ? "." : "",
             node_text(key), where(&o, at, sizeof at), s.type == LZ_YAML_REFUSED ? "" : "YAML 1.1 reads ", s.what,
             s.type == LZ_YAML_REFUSED ? "" : ", not a name");
    return NULL;
}

static int file_section(file_load_t *fl, const char *section, const yaml_node_t *map) {
    for (yaml_node_pair_t *p = map->data.mapping.pairs.start; p < map->data.mapping.pairs.top; p++) {
        yaml_node_t *key = yaml_document_get_node(fl->doc, p->key);
        yaml_node_t *value = yaml_document_get_node(fl->doc, p->value);
        const char *text = key_name(fl, section, key);
        if (!text) return LZ_ECONFIG;
        char name[160];
        snprintf(name, sizeof name, "%s.%s", section, text);
        int rc = file_scalar(fl, name, key, value);
        if (rc < 0) return rc;
    }
    return LZ_OK;
}

// file_section_value reads what a section's name holds: a mapping of its keys, or null for none.
static int file_section_value(file_load_t *fl, const char *name, const origin_t *o, const yaml_node_t *value) {
    if (value->type == YAML_MAPPING_NODE)
        return mapping_tag_ok(value) ? file_section(fl, name, value) : fail_tag(name, o, value);
    lz_yaml_scalar_t s = {.type = LZ_YAML_STRING};
    if (value->type == YAML_SCALAR_NODE) node_scalar(fl, value, &s);
    if (s.type == LZ_YAML_NULL) return LZ_OK; // "zmq:" with nothing under it
    return fail_value(name, o, s.type == LZ_YAML_REFUSED ? s.what : "expected a mapping of keys", node_text(value));
}

// A dotted name at the top level ("zmq.linger: 7") is refused, though it
// names a key: the Python LiberZMQ's model ignores a top-level name it does
// not declare, so that file would set the key for a C service only.
static int file_top_entry(file_load_t *fl, const yaml_node_t *key, const yaml_node_t *value) {
    const char *name = key_name(fl, NULL, key);
    if (!name) return LZ_ECONFIG;
    origin_t o = file_origin(fl, key);
    if (is_section(name)) return file_section_value(fl, name, &o, value);
    const char *dot = strchr(name, '.');
    if (!dot || key_find(name) < 0) return file_scalar(fl, name, key, value);
    char at[PATH_MAX + 32];
    return lz__fail(LZ_ECONFIG, "config: key '%s' from %s: write it in its section ('%.*s:', then '%s:'), where "
                    "the Python LiberZMQ reads it too", name, where(&o, at, sizeof at), (int)(dot - name), name,
                    dot + 1);
}

static int file_document(file_load_t *fl) {
    yaml_node_t *root = yaml_document_get_root_node(fl->doc);
    if (!root) return LZ_OK; // an empty file changes nothing
    lz_yaml_scalar_t s = {.type = LZ_YAML_STRING};
    if (root->type == YAML_SCALAR_NODE) node_scalar(fl, root, &s);
    if (s.type == LZ_YAML_NULL) return LZ_OK; // so does one holding only a null
    unsigned long line = (unsigned long)root->start_mark.line + 1;
    if (root->type != YAML_MAPPING_NODE)
        return lz__fail(LZ_ECONFIG, "config: file %s:%lu: expected a mapping at the top level", fl->path, line);
    char why[96];
    if (!mapping_tag_ok(root)) {
        lz__yaml_tag_refusal((const char *)root->tag, why, sizeof why);
        return lz__fail(LZ_ECONFIG, "config: file %s:%lu: %s on the top-level mapping", fl->path, line, why);
    }
    for (yaml_node_pair_t *p = root->data.mapping.pairs.start; p < root->data.mapping.pairs.top; p++) {
        int rc = file_top_entry(fl, yaml_document_get_node(fl->doc, p->key),
                                yaml_document_get_node(fl->doc, p->value));
        if (rc < 0) return rc;
    }
    return LZ_OK;
}

// A file's lists and mappings nest at most this deep. A valid file nests
// two levels (a section's mapping in the top one): the limit only stops
// libyaml, whose scanner takes time quadratic in the depth of nested flow
// collections ("[[[[...": 64 thousand levels took 7.6 s, 200 thousand
// over a minute) and whose loader has no limit of its own.
#define FILE_MAX_NESTING 32

// A file holds at most this many anchors and aliases together. A valid
// file needs none or a few; an alias is looked up in a list of all the
// anchors before it, time quadratic in their number (in libyaml's loader,
// 80 thousand, 1.4 MB, took 36 s).
#define FILE_MAX_ANCHORS 1000

// A file is read whole before it is parsed, up to this size: far past any
// configuration, and a stop for the likes of --config /dev/zero.
#define FILE_MAX_BYTES (16u << 20)

// read_text reads file to its end into a new buffer (the caller frees it)
// of *size bytes: it is parsed twice, and a pipe cannot be read again.
static unsigned char *read_text(FILE *file, const char *path, size_t *size) {
    size_t cap = 4096, len = 0;
    unsigned char *text = malloc(cap);
    for (size_t n = 1; text && n > 0 && len <= FILE_MAX_BYTES; len += n) {
        if (len == cap) {
            unsigned char *grown = realloc(text, cap *= 2);
            if (!grown) free(text);
            text = grown;
            if (!text) break;
        }
        n = fread(text + len, 1, cap - len, file);
    }
    if (!text) return lz__fail_null(LZ_ENOMEM, "config: out of memory");
    int err = errno;
    if (ferror(file) || len > FILE_MAX_BYTES) {
        free(text);
        if (len > FILE_MAX_BYTES) return lz__fail_null(LZ_ECONFIG, "config: file %s is larger than 16 MiB", path);
        return lz__fail_null(LZ_ECONFIG, "config: cannot read file %s: %s", path, strerror(err));
    }
    *size = len;
    return text;
}

static int out_of_memory(const char *path) {
    return lz__fail(LZ_ENOMEM, "config: out of memory reading file %s", path);
}

// yaml_error is the error of a parser that failed on path. libyaml checks
// its own allocations and says when one failed, but for those of its tag
// scanner (0.2.5), which fail with no error at all: out of memory too.
static int yaml_error(const yaml_parser_t *parser, const char *path) {
    if (parser->error == YAML_MEMORY_ERROR || parser->error == YAML_NO_ERROR) return out_of_memory(path);
    return lz__fail(LZ_ECONFIG, "config: file %s:%lu: not valid YAML or JSON: %s%s%s", path,
                    (unsigned long)parser->problem_mark.line + 1, parser->problem ? parser->problem : "parse error",
                    parser->context ? " " : "", parser->context ? parser->context : "");
}

// What a file's event pass has counted so far.
typedef struct {
    int depth;     // lists and mappings open
    int refs;      // anchors and aliases
    int documents; // documents begun
} event_count_t;

// event_anchor is where event keeps the anchor of the node it starts
// (NULL in the field: none), NULL for an event that starts none.
static yaml_char_t **event_anchor(yaml_event_t *event) {
    return event->type == YAML_SCALAR_EVENT           ? &event->data.scalar.anchor
           : event->type == YAML_SEQUENCE_START_EVENT ? &event->data.sequence_start.anchor
           : event->type == YAML_MAPPING_START_EVENT  ? &event->data.mapping_start.anchor
                                                      : NULL;
}

static unsigned long event_line(const yaml_event_t *event) { return (unsigned long)event->start_mark.line + 1; }

// event_check counts one event of a file's event pass into n and judges it.
static int event_check(yaml_event_t *event, const char *path, event_count_t *n) {
    unsigned long line = event_line(event);
    yaml_event_type_t type = event->type;
    yaml_char_t **anchor = event_anchor(event);
    if (type == YAML_SEQUENCE_START_EVENT || type == YAML_MAPPING_START_EVENT) n->depth++;
    if (type == YAML_SEQUENCE_END_EVENT || type == YAML_MAPPING_END_EVENT) n->depth--;
    if (type == YAML_ALIAS_EVENT || (anchor && *anchor)) n->refs++;
    if (type == YAML_DOCUMENT_START_EVENT) n->documents++;
    if (n->depth > FILE_MAX_NESTING)
        return lz__fail(LZ_ECONFIG, "config: file %s:%lu: lists and mappings nested deeper than %d levels", path,
                        line, FILE_MAX_NESTING);
    if (n->refs > FILE_MAX_ANCHORS)
        return lz__fail(LZ_ECONFIG, "config: file %s:%lu: more than %d YAML anchors and aliases", path, line,
                        FILE_MAX_ANCHORS);
    // Only the first document is loaded: keys in another would be ignored, not checked.
    if (n->documents > 1)
        return lz__fail(LZ_ECONFIG, "config: file %s:%lu: a second YAML document; a file holds one", path, line);
    // libyaml ends a scalar's text at a NUL ("\0" in quotes): "7\0 ms" would read as 7.
    if (type == YAML_SCALAR_EVENT && strlen((const char *)event->data.scalar.value) != event->data.scalar.length)
        return lz__fail(LZ_ECONFIG, "config: file %s:%lu: a key or value holds a NUL character", path, line);
    return LZ_OK;
}

/* ---- composing a file's document from its events ---- */

// An anchor and the node it names (the name taken from its event).
typedef struct {
    char *name;
    int node;
} anchor_t;

// A list or mapping being composed, and in a mapping the key waiting for its value (0: none).
typedef struct {
    int node, key;
} open_node_t;

// What builds a file's document as its events come, as libyaml's loader
// would but without its leaks when memory runs out (0.2.5 loses a
// collection's list, or the document start's directives): the lists and
// mappings open, and the anchors so far.
typedef struct {
    yaml_document_t doc;
    open_node_t open[FILE_MAX_NESTING + 1]; // event_check stops a file nesting deeper
    int depth;
    anchor_t *anchors;
    size_t anchor_count, anchor_cap;
} composer_t;

static void composer_free(composer_t *c) {
    yaml_document_delete(&c->doc);
    for (size_t i = 0; i < c->anchor_count; i++) free(c->anchors[i].name);
    free(c->anchors);
}

// compose_attach puts node in the list or mapping open last, or leaves it
// the root: the document's first node.
static int compose_attach(composer_t *c, int node, const char *path) {
    if (c->depth == 0) return LZ_OK;
    yaml_document_t *doc = &c->doc;
    int *key = &c->open[c->depth - 1].key, parent = c->open[c->depth - 1].node;
    int ok = 1;
    if (yaml_document_get_node(doc, parent)->type == YAML_SEQUENCE_NODE)
        ok = yaml_document_append_sequence_item(doc, parent, node);
    else if (!*key)
        *key = node;
    else if ((ok = yaml_document_append_mapping_pair(doc, parent, *key, node)))
        *key = 0;
    return ok ? LZ_OK : out_of_memory(path);
}

// compose_anchor names node with the anchor event holds, taking it.
static int compose_anchor(composer_t *c, yaml_event_t *event, int node, const char *path) {
    yaml_char_t **anchor = event_anchor(event);
    if (!*anchor) return LZ_OK;
    for (size_t i = 0; i < c->anchor_count; i++)
        if (strcmp(c->anchors[i].name, (const char *)*anchor) == 0)
            return lz__fail(LZ_ECONFIG, "config: file %s:%lu: not valid YAML or JSON: found duplicate anchor &%.80s "
                            "(first on line %lu)", path, event_line(event), c->anchors[i].name,
                            (unsigned long)yaml_document_get_node(&c->doc, c->anchors[i].node)->start_mark.line + 1);
    if (c->anchor_count == c->anchor_cap) {
        size_t cap = c->anchor_cap ? 2 * c->anchor_cap : 8;
        anchor_t *grown = realloc(c->anchors, cap * sizeof *grown);
        if (!grown) return out_of_memory(path);
        c->anchors = grown;
        c->anchor_cap = cap;
    }
    c->anchors[c->anchor_count++] = (anchor_t){(char *)*anchor, node};
    *anchor = NULL;
    return LZ_OK;
}

// compose_alias attaches the node an alias event names.
static int compose_alias(composer_t *c, const yaml_event_t *event, const char *path) {
    const char *name = (const char *)event->data.alias.anchor;
    for (size_t i = 0; i < c->anchor_count; i++)
        if (strcmp(c->anchors[i].name, name) == 0) return compose_attach(c, c->anchors[i].node, path);
    return lz__fail(LZ_ECONFIG, "config: file %s:%lu: not valid YAML or JSON: found undefined alias", path,
                    event_line(event));
}

// compose_node adds the node event starts, where the event is. A list or
// mapping is tagged as libyaml's loader tags it (none or "!": the
// default); a scalar keeps its tag as written, "!" too, and an untagged
// one gets UNTAGGED_SCALAR.
static int compose_node(composer_t *c, yaml_event_t *event, const char *path) {
    const yaml_char_t *tag = event->type == YAML_SCALAR_EVENT           ? event->data.scalar.tag
                             : event->type == YAML_SEQUENCE_START_EVENT ? event->data.sequence_start.tag
                                                                        : event->data.mapping_start.tag;
    if (event->type == YAML_SCALAR_EVENT && !tag) tag = (const yaml_char_t *)UNTAGGED_SCALAR;
    else if (event->type != YAML_SCALAR_EVENT && tag && strcmp((const char *)tag, "!") == 0) tag = NULL;
    int node = event->type == YAML_SCALAR_EVENT
                   ? yaml_document_add_scalar(&c->doc, tag, event->data.scalar.value, (int)event->data.scalar.length,
                                              event->data.scalar.style)
               : event->type == YAML_SEQUENCE_START_EVENT
                   ? yaml_document_add_sequence(&c->doc, tag, event->data.sequence_start.style)
                   : yaml_document_add_mapping(&c->doc, tag, event->data.mapping_start.style);
    if (!node) return out_of_memory(path); // the parser's text is valid UTF-8: only memory lacks
    yaml_node_t *added = yaml_document_get_node(&c->doc, node);
    added->start_mark = event->start_mark;
    added->end_mark = event->end_mark;
    int rc = compose_anchor(c, event, node, path);
    if (rc == LZ_OK) rc = compose_attach(c, node, path);
    if (rc == LZ_OK && event->type != YAML_SCALAR_EVENT) c->open[c->depth++] = (open_node_t){node, 0};
    return rc;
}

// compose takes one event of a file into the document.
static int compose(composer_t *c, yaml_event_t *event, const char *path) {
    switch (event->type) {
    case YAML_SCALAR_EVENT:
    case YAML_SEQUENCE_START_EVENT:
    case YAML_MAPPING_START_EVENT: return compose_node(c, event, path);
    case YAML_ALIAS_EVENT: return compose_alias(c, event, path);
    case YAML_SEQUENCE_END_EVENT:
    case YAML_MAPPING_END_EVENT:
        yaml_document_get_node(&c->doc, c->open[--c->depth].node)->end_mark = event->end_mark;
        return LZ_OK;
    default: return LZ_OK; // the stream's and the document's own
    }
}

// read_events reads text as events, refusing what would take too long or
// be read other than written (event_check), and composing its document in c.
static int read_events(const unsigned char *text, size_t size, const char *path, composer_t *c) {
    yaml_parser_t parser;
    if (!yaml_parser_initialize(&parser)) return out_of_memory(path);
    yaml_parser_set_input_string(&parser, text, size);
    int rc = LZ_OK;
    event_count_t count = {0, 0, 0};
    for (bool done = false; !done && rc == LZ_OK;) {
        yaml_event_t event;
        if (!yaml_parser_parse(&parser, &event)) {
            rc = yaml_error(&parser, path);
            break;
        }
        rc = event_check(&event, path, &count);
        if (rc == LZ_OK) rc = compose(c, &event, path);
        done = event.type == YAML_STREAM_END_EVENT;
        yaml_event_delete(&event);
    }
    yaml_parser_delete(&parser);
    return rc;
}

// file_parse loads the YAML document of text into staging.
static int file_parse(lz_config_t *staging, const char *path, const unsigned char *text, size_t size) {
    composer_t composer = {.anchors = NULL};
    if (!yaml_document_initialize(&composer.doc, NULL, NULL, NULL, 1, 1)) return out_of_memory(path);
    file_load_t fl = {.config = staging, .doc = &composer.doc, .path = path};
    snprintf(fl.label, sizeof fl.label, "file %s", path);
    int rc = read_events(text, size, path, &composer);
    if (rc == LZ_OK) rc = file_document(&fl);
    composer_free(&composer);
    return rc;
}

// file_kind names a type of file that is not read, for the message.
static const char *file_kind(mode_t type) {
    switch (type) {
    case S_IFDIR: return "a directory";
    case S_IFIFO: return "a named FIFO";
    case S_IFCHR:
    case S_IFBLK: return "a device";
    default: return "a special file";
    }
}

// open_config opens path for reading: a regular file, or a pipe (`--config
// <(...)`, whose writer is there already). Nothing that would hold the
// reader for ever: a named FIFO no one writes held the open (a watcher
// reading one held lz_context_destroy), a device may never end.
static FILE *open_config(const char *path) {
    mode_t type = 0;
    int fd = lz__open_regular_or_pipe(path, true, &type);
    FILE *file = fd >= 0 ? fdopen(fd, "rb") : NULL;
    if (file) return file;
    int err = fd == LZ_NOT_REGULAR ? 0 : errno;
    if (fd >= 0) close(fd);
    if (err == ENOMEM) return lz__fail_null(LZ_ENOMEM, "config: out of memory opening file %s", path);
    if (err) return lz__fail_null(LZ_ECONFIG, "config: cannot read file %s: %s", path, strerror(err));
    return lz__fail_null(LZ_ECONFIG, "config: cannot read file %s: %s, not a regular file", path, file_kind(type));
}

int lz_config_load_file(lz_config_t *config, const char *path) {
    if (!config || !path) return lz__fail(LZ_EINVAL, "config: config and path are required");
    if (strlen(path) >= PATH_MAX) return lz__fail(LZ_ECONFIG, "config: file path too long");
    FILE *file = open_config(path);
    if (!file) return lz_last_error_code();
    size_t size = 0;
    unsigned char *text = read_text(file, path, &size);
    fclose(file);
    lz_config_t *staging = text ? lz_config_dup(config) : NULL;
    int rc = !text ? lz_last_error_code() : staging ? file_parse(staging, path, text, size) : LZ_ENOMEM;
    free(text);
    if (rc < 0) {
        lz_config_destroy(&staging);
        return rc;
    }
    commit(config, staging);
    return LZ_OK;
}

/* ---- environment ---- */

#define ENV_PREFIX "LIBERZMQ_"

// env_key_name maps the part after LIBERZMQ_ to a dotted key name:
// ZMQ__IO_THREADS and ZMQ_IO_THREADS -> zmq.io_threads, DEBUG -> debug.
static void env_key_name(const char *rest, char *out, size_t size) {
    char low[160];
    size_t n = 0;
    for (; rest[n] && n < sizeof low - 1; n++) low[n] = (char)tolower((unsigned char)rest[n]);
    low[n] = '\0';
    char *sep = strstr(low, "__");
    if (sep) {
        *sep = '\0';
        snprintf(out, size, "%s.%s", low, sep + 2);
        return;
    }
    snprintf(out, size, "%s", low);
    if (key_find(low) >= 0) return;
    for (size_t i = 0; i < sizeof sections / sizeof sections[0]; i++) {
        size_t len = strlen(sections[i]);
        if (strncmp(low, sections[i], len) == 0 && low[len] == '_') {
            snprintf(out, size, "%s.%s", sections[i], low + len + 1);
            return;
        }
    }
}

static int env_apply(lz_config_t *staging, const char *entry) {
    const char *eq = strchr(entry, '=');
    if (!eq || strncmp(entry, ENV_PREFIX, strlen(ENV_PREFIX)) != 0) return LZ_OK;
    char var[160]; // longer names are no key: cut, they fail as unknown
    snprintf(var, sizeof var, "%.*s", (int)(eq - entry), entry);
    if (strcmp(var, "LIBERZMQ_CONFIG") == 0) return LZ_OK;
    char label[176], name[176];
    snprintf(label, sizeof label, "env %s", var);
    env_key_name(var + strlen(ENV_PREFIX), name, sizeof name);
    origin_t o = {RANK_ENV, label, 0};
    return set_text(staging, name, eq + 1, &o);
}

int lz_config_load_env(lz_config_t *config) {
    if (!config) return lz__fail(LZ_EINVAL, "config: NULL configuration");
    if (lz__environment_untrusted()) return LZ_OK;
    lz_config_t *staging = lz_config_dup(config);
    if (!staging) return LZ_ENOMEM;
    for (char **e = environ; e && *e; e++) {
        int rc = env_apply(staging, *e);
        if (rc < 0) {
            lz_config_destroy(&staging);
            return rc;
        }
    }
    commit(config, staging);
    return LZ_OK;
}

/* ---- API setters and getters ---- */

static const origin_t api_origin = {RANK_API, "api", 0};

int lz_config_set(lz_config_t *config, const char *key, const char *value) {
    if (!config || !key || !value)
        return lz__fail(LZ_EINVAL, "config: config, key and value are required");
    return set_text(config, key, value, &api_origin);
}

// set_typed is the typed setters' shared path: key lookup, type, range, store.
static int set_typed(lz_config_t *config, const char *key, key_type_t type, int64_t i) {
    if (!config || !key) return lz__fail(LZ_EINVAL, "config: config and key are required");
    int k = key_find(key);
    if (k < 0) return fail_unknown(key, &api_origin);
    char text[32];
    if (type == KEY_BOOL) snprintf(text, sizeof text, "%s", i ? "true" : "false");
    else snprintf(text, sizeof text, "%" PRId64, i);
    char why[32];
    snprintf(why, sizeof why, "expected %s", key_type_name(keys[k].type));
    if (keys[k].type != type) return fail_value(key, &api_origin, why, text);
    value_t v = {i, NULL};
    return set_value(config, k, key, &v, &api_origin);
}

int lz_config_set_int(lz_config_t *config, const char *key, int64_t value) {
    return set_typed(config, key, KEY_INT, value);
}

int lz_config_set_bool(lz_config_t *config, const char *key, bool value) {
    return set_typed(config, key, KEY_BOOL, value);
}

// get_slot finds key's slot and checks it has the wanted type.
static const slot_t *get_slot(const lz_config_t *config, const char *key, key_type_t type,
                              const void *out) {
    if (!config || !key || !out) {
        lz__fail(LZ_EINVAL, "config: config, key and out are required");
        return NULL;
    }
    int k = key_find(key);
    if (k < 0) {
        lz__fail(LZ_ENOTFOUND, "config: unknown key '%.80s'", key);
        return NULL;
    }
    if (keys[k].type != type) {
        lz__fail(LZ_EVALIDATION, "config: key '%s' is not of the requested type", key);
        return NULL;
    }
    return &config->slots[k];
}

int lz_config_get_int(const lz_config_t *config, const char *key, int64_t *out) {
    const slot_t *slot = get_slot(config, key, KEY_INT, out);
    if (!slot) return lz_last_error_code();
    *out = slot->i;
    return LZ_OK;
}

int lz_config_get_double(const lz_config_t *config, const char *key, double *out) {
    const slot_t *slot = get_slot(config, key, KEY_INT, out);
    if (!slot) return lz_last_error_code();
    *out = (double)slot->i;
    return LZ_OK;
}

int lz_config_get_bool(const lz_config_t *config, const char *key, bool *out) {
    const slot_t *slot = get_slot(config, key, KEY_BOOL, out);
    if (!slot) return lz_last_error_code();
    *out = slot->i != 0;
    return LZ_OK;
}

int lz_config_get_string(const lz_config_t *config, const char *key, const char **out) {
    const slot_t *slot = get_slot(config, key, KEY_STRING, out);
    if (!slot) return lz_last_error_code();
    *out = slot->s;
    return LZ_OK;
}

const char *lz_config_source(const lz_config_t *config, const char *key) {
    int k = config && key ? key_find(key) : -1;
    if (k < 0) return NULL;
    return config->slots[k].source ? config->slots[k].source : "default";
}

size_t lz_config_key_count(void) { return K_COUNT; }

const char *lz_config_key_name(const char *key) {
    int k = key ? key_find(key) : -1;
    return k < 0 ? NULL : keys[k].name;
}

bool lz_config_key_is_secret(const char *key) {
    int k = key ? key_find(key) : -1;
    return k >= 0 && secret_keys[k];
}

const char *lz_config_key_at(size_t index) {
    return index < K_COUNT ? keys[index].name : NULL;
}

/* ---- output ---- */

static void json_value(FILE *out, int k, const slot_t *slot) {
    if (keys[k].type == KEY_STRING) lz__json_write_string(out, slot->s);
    else if (keys[k].type == KEY_BOOL) fputs(slot->i ? "true" : "false", out);
    else fprintf(out, "%" PRId64, slot->i);
}

char *lz_config_to_json(const lz_config_t *config) {
    if (!config) return lz__fail_null(LZ_EINVAL, "config: NULL configuration");
    lz_text_sink_t sink;
    FILE *out = lz__text_open(&sink);
    if (!out) return lz__fail_null(LZ_ENOMEM, "config: out of memory");
    const char *section = NULL; // the section object now open, if any
    size_t section_len = 0;
    fputc('{', out);
    for (int k = 0; k < K_COUNT; k++) {
        const char *name = keys[k].name, *dot = strchr(name, '.');
        size_t len = dot ? (size_t)(dot - name) : 0;
        bool same = section && len == section_len && strncmp(name, section, len) == 0;
        if (!same && section) fputc('}', out);
        if (k > 0) fputc(',', out);
        if (!same && len) fprintf(out, "\"%.*s\":{", (int)len, name);
        fprintf(out, "\"%s\":", dot ? dot + 1 : name);
        json_value(out, k, &config->slots[k]);
        section = len ? name : NULL;
        section_len = len;
    }
    if (section) fputc('}', out);
    fputc('}', out);
    size_t len;
    char *text = lz__text_close(out, &sink, &len);
    return text ? text : lz__fail_null(LZ_ENOMEM, "config: out of memory");
}

/* ---- internal views ---- */

static int get_i(const lz_config_t *config, int k) { return (int)config->slots[k].i; }

// hwm resolves an hwm_* key: -1 inherits zmq.high_water_mark.
static int hwm(const lz_config_t *config, int k) {
    return get_i(config, k) < 0 ? get_i(config, K_HWM) : get_i(config, k);
}

int lz__settings_read(const lz_config_t *config, lz_settings_t *out) {
    if (!config || !out) return lz__fail(LZ_EINVAL, "config: config and out are required");
    if (get_i(config, K_RECONNECT_MAX) > 0 && get_i(config, K_RECONNECT_MAX) < get_i(config, K_RECONNECT))
        return lz__fail(LZ_ECONFIG, "config: zmq.reconnect_interval_max (%d) is below "
                        "zmq.reconnect_interval (%d); use 0 for no backoff",
                        get_i(config, K_RECONNECT_MAX), get_i(config, K_RECONNECT));
    if (config->slots[K_MAX_MESSAGE].i == 0)
        return lz__fail(LZ_ECONFIG, "config: zmq.max_message_size 0 would refuse every non-empty message "
                        "and cut each connection on its first one; use -1 for no limit");
    *out = (lz_settings_t){
        .io_threads = get_i(config, K_IO_THREADS),
        .max_sockets = get_i(config, K_MAX_SOCKETS),
        .linger = get_i(config, K_LINGER),
        .hwm_outbound = hwm(config, K_HWM_OUT),
        .hwm_inbound = hwm(config, K_HWM_IN),
        .send_timeout = get_i(config, K_SEND_TIMEOUT),
        .receive_timeout = get_i(config, K_RECEIVE_TIMEOUT),
        .request_timeout = get_i(config, K_REQUEST_TIMEOUT),
        .request_retries = get_i(config, K_REQUEST_RETRIES),
        .failed_socket_cooldown = get_i(config, K_COOLDOWN),
        .handler_max_concurrency = get_i(config, K_HANDLER_MAX),
        .reconnect_interval = get_i(config, K_RECONNECT),
        .reconnect_interval_max = get_i(config, K_RECONNECT_MAX),
        .heartbeat_interval = get_i(config, K_HEARTBEAT),
        .immediate = get_i(config, K_IMMEDIATE) != 0,
        .max_message_size = config->slots[K_MAX_MESSAGE].i,
        .default_serializer = config->slots[K_SER_DEFAULT].s,
        .prometheus_listen = config->slots[K_METRICS_LISTEN].s,
        .tracing = get_i(config, K_TRACE_ENABLED) != 0,
        .tracing_log = get_i(config, K_TRACE_LOG) != 0,
        .tracing_extension_frames = get_i(config, K_TRACE_EXT_FRAMES) != 0,
        .otlp_endpoint = config->slots[K_TRACE_OTLP].s,
        .service_name = config->slots[K_TRACE_SERVICE].s,
        .otlp_batch = get_i(config, K_TRACE_BATCH),
        .otlp_interval = get_i(config, K_TRACE_INTERVAL),
        .otlp_headers = config->slots[K_TRACE_HEADERS].s,
        .otlp_ca_file = config->slots[K_TRACE_CA_FILE].s,
        .task_max_retries = get_i(config, K_TASK_RETRIES),
        .task_retry_delay = get_i(config, K_TASK_RETRY_DELAY),
    };
    return LZ_OK;
}

// log_target reads logging.target, redirected to the file when only
// file_path was given (the Python layout has file_path but no target).
static int log_target(const lz_config_t *config, lz_log_target_t *out) {
    const slot_t *target = &config->slots[K_LOG_TARGET];
    const char *path = config->slots[K_LOG_FILE].s;
    if (strcasecmp(target->s, "file") == 0 && !*path)
        return lz__fail(LZ_ECONFIG, "config: logging.target is 'file' but logging.file_path is empty");
    if (strcasecmp(target->s, "file") == 0 || (target->rank == RANK_DEFAULT && *path))
        *out = LZ_LOG_TARGET_FILE;
    else if (strcasecmp(target->s, "syslog") == 0)
        *out = LZ_LOG_TARGET_SYSLOG;
    else if (strcasecmp(target->s, "none") == 0 || !config->slots[K_LOG_CONSOLE].i)
        *out = LZ_LOG_TARGET_NONE; // what is left is stderr, the console
    else
        *out = LZ_LOG_TARGET_STDERR;
    return LZ_OK;
}

int lz__log_settings_read(const lz_config_t *config, lz_log_settings_t *out) {
    if (!config || !out) return lz__fail(LZ_EINVAL, "config: config and out are required");
    lz_log_settings_t s = {
        .level = LZ_LOG_INFO,
        .format = strcasecmp(config->slots[K_LOG_FORMAT].s, "json") == 0 ? LZ_LOG_JSON : LZ_LOG_TEXT,
        .file_path = config->slots[K_LOG_FILE].s,
        .max_file_size = config->slots[K_LOG_MAX_SIZE].i,
        .backup_count = get_i(config, K_LOG_BACKUPS),
        .syslog_ident = config->slots[K_LOG_IDENT].s,
    };
    lz_log_level_parse(config->slots[K_LOG_LEVEL].s, &s.level); // validated when stored
    const slot_t *debug = &config->slots[K_DEBUG];
    if (debug->i && debug->rank > config->slots[K_LOG_LEVEL].rank && s.level > LZ_LOG_DEBUG)
        s.level = LZ_LOG_DEBUG;
    int rc = log_target(config, &s.target);
    if (rc < 0) return rc;
    *out = s;
    return LZ_OK;
}

int lz__security_settings_read(const lz_config_t *config, lz_security_settings_t *out) {
    if (!config || !out) return lz__fail(LZ_EINVAL, "config: config and out are required");
    *out = (lz_security_settings_t){
        .curve_secret_key = config->slots[K_SEC_SECRET].s,
        .curve_server_key = config->slots[K_SEC_SERVER].s,
        .authorized_keys = config->slots[K_SEC_AUTHORIZED].s,
        .authorized_keys_file = config->slots[K_SEC_AUTHORIZED_FILE].s,
        .allow_addresses = config->slots[K_SEC_ALLOW].s,
        .deny_addresses = config->slots[K_SEC_DENY].s,
        .plain_username = config->slots[K_SEC_PLAIN_USER].s,
        .plain_password = config->slots[K_SEC_PLAIN_PASSWORD].s,
        .plain_users_file = config->slots[K_SEC_PLAIN_USERS_FILE].s,
        .audit = config->slots[K_SEC_AUDIT].i != 0,
        .cut_revoked = config->slots[K_SEC_CUT].i != 0,
        .gssapi = {
            .server = config->slots[K_SEC_GSSAPI_SERVER].i != 0,
            .plaintext = config->slots[K_SEC_GSSAPI_PLAINTEXT].i != 0,
            .principal = config->slots[K_SEC_GSSAPI_PRINCIPAL].s,
            .service_principal = config->slots[K_SEC_GSSAPI_SERVICE].s,
            .principal_type = lz__gssapi_name_type(config->slots[K_SEC_GSSAPI_PRINCIPAL_TYPE].s),
            .service_principal_type = lz__gssapi_name_type(config->slots[K_SEC_GSSAPI_SERVICE_TYPE].s),
            .principals = config->slots[K_SEC_GSSAPI_PRINCIPALS].s,
            .principals_file = config->slots[K_SEC_GSSAPI_PRINCIPALS_FILE].s,
        },
    };
    return LZ_OK;
}

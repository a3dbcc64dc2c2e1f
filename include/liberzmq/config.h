/* liberzmq configuration: typed keys with layered sources.
 *
 * Precedence, lowest first: built-in defaults < configuration file <
 * environment variables < values set through the API. A source never
 * overrides a value that came from a higher one, whatever the call order.
 * The file layout is the Python LiberZMQ's (sections zmq:, logging:,
 * serialization:), in YAML or JSON, so one file serves a mixed fleet.
 * docs/configuration.md lists every key. */
#ifndef LIBERZMQ_CONFIG_H
#define LIBERZMQ_CONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct lz_config lz_config_t;

// lz_config_new returns a configuration holding the built-in defaults, or
// NULL when out of memory. The caller owns it; free with lz_config_destroy.
lz_config_t *lz_config_new(void);

// lz_config_dup returns a deep copy of config (values and their sources),
// or NULL when out of memory or config is NULL.
lz_config_t *lz_config_dup(const lz_config_t *config);

// lz_config_destroy frees *config_p and sets it to NULL. NULL is a no-op.
void lz_config_destroy(lz_config_t **config_p);

// lz_config_load_file reads a YAML or JSON file (JSON is read as YAML, its
// superset) with the sectioned layout:
//     zmq: {io_threads: 2, linger: 500, ...}
//     logging: {level: DEBUG, ...}
//     serialization: {default: msgpack}
// Values are read as YAML 1.1, as the Python LiberZMQ's PyYAML safe_load
// reads them (010 is 8, `off` is false), and a string for an integer or
// boolean key as its text ("500" is 500), as its pydantic model does.
// Every key must be known (docs/configuration.md); the first unknown key or
// bad value fails the whole load with LZ_ECONFIG and a detail naming the key,
// the file and the line. A file over 16 MiB, with lists and mappings nested
// over 32 levels, with over 1000 YAML anchors and aliases, with a second
// YAML document or with a NUL character in a key or value fails the same
// way. path must name a regular file or a pipe (`<(...)`, a piped
// /dev/stdin); anything else (a named FIFO, which would hold the call until
// a writer came, a directory, a device) fails with LZ_ECONFIG at once, as
// one that cannot be opened does. On failure config is left unchanged.
int lz_config_load_file(lz_config_t *config, const char *path);

// lz_config_load_env reads LIBERZMQ_* environment variables. A key maps to
// LIBERZMQ_<SECTION>__<KEY> (the Python LiberZMQ's nested form, e.g.
// LIBERZMQ_ZMQ__IO_THREADS) or LIBERZMQ_<SECTION>_<KEY> (LIBERZMQ_ZMQ_LINGER);
// top-level keys are LIBERZMQ_<KEY>. LIBERZMQ_CONFIG (a file path, see
// lz_context_new) is not a key. An unknown LIBERZMQ_* name or a bad value
// fails with LZ_ECONFIG naming the variable; config is then left unchanged.
// In a program running with privileges its user lacks (setuid, setgid,
// file capabilities: getauxval(AT_SECURE)), it reads nothing and returns
// LZ_OK, as glibc ignores LD_* for such programs: the environment is that
// user's (docs/configuration.md). lz_context_new then ignores
// LIBERZMQ_CONFIG too.
int lz_config_load_env(lz_config_t *config);

// lz_config_set sets key (dotted, "zmq.linger") from its text form, with the
// highest precedence. Returns LZ_ENOTFOUND for an unknown key, LZ_ECONFIG for
// a value of the wrong type or out of range.
int lz_config_set(lz_config_t *config, const char *key, const char *value);

// Typed setters: like lz_config_set, with a typed value.
int lz_config_set_int(lz_config_t *config, const char *key, int64_t value);
int lz_config_set_bool(lz_config_t *config, const char *key, bool value);

// Typed getters. They return LZ_ENOTFOUND for an unknown key and
// LZ_EVALIDATION when the key has another type. Integers read as doubles too.
// A string returned is owned by config and valid until the key changes.
int lz_config_get_int(const lz_config_t *config, const char *key, int64_t *out);
int lz_config_get_double(const lz_config_t *config, const char *key, double *out);
int lz_config_get_bool(const lz_config_t *config, const char *key, bool *out);
int lz_config_get_string(const lz_config_t *config, const char *key, const char **out);

// lz_config_source tells where the key's current value came from: "default",
// "file <path>", "env <NAME>" or "api". NULL for an unknown key. Owned by config.
const char *lz_config_source(const lz_config_t *config, const char *key);

// lz_config_key_count and lz_config_key_at enumerate the known keys in a
// stable order (for `lz config` and documentation); NULL past the end.
size_t lz_config_key_count(void);
const char *lz_config_key_at(size_t index);

// lz_config_key_name returns the name key stands for: key itself, or for an
// alias (zmq.socket_timeout) the key it names. NULL for an unknown key or
// NULL. The string is static. Thread safe.
const char *lz_config_key_name(const char *key);

// lz_config_key_is_secret tells whether key (or an alias of it) carries a
// credential (security.curve_secret_key, security.plain_password,
// tracing.otlp_headers), whose value error details and `lz config` never
// show. False for an unknown key. Thread safe.
bool lz_config_key_is_secret(const char *key);

// lz_config_to_json returns the whole configuration as a JSON object in the
// sectioned layout. The caller frees the string with free(). NULL on ENOMEM.
char *lz_config_to_json(const lz_config_t *config);

// Thread safety: a configuration is not locked. Share it read-only, or give
// each thread its own copy (lz_config_dup). A context copies the one it gets.

#ifdef __cplusplus
}
#endif
#endif

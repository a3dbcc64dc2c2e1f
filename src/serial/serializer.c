/* Serializer registry and the public lz_serializer_* calls. The built-in
 * codecs are static and need no context; a context's registry adds custom
 * codecs behind a read-write lock, each in its own allocation so that the
 * pointers lz_serializer_find hands out stay valid as the list grows. */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/context.h"
#include "core/error.h"
#include "serial/buffer.h"
#include "serial/registry.h"

struct lz_serializer {
    const lz_serializer_ops_t *ops;
    void *state;
    lz_serializer_ops_t copy; // a custom codec's ops, copied at registration
};

static const lz_serializer_t builtins[] = {
    {.ops = &lz__raw_ops},
    {.ops = &lz__json_ops},
    {.ops = &lz__msgpack_ops},
};
#define BUILTIN_COUNT (sizeof builtins / sizeof builtins[0])

struct lz_registry {
    pthread_rwlock_t lock;
    lz_serializer_t **custom;
    size_t len, cap;
};

static const lz_serializer_t *find_builtin(const char *name) {
    for (size_t i = 0; i < BUILTIN_COUNT; i++)
        if (strcmp(builtins[i].ops->name, name) == 0) return &builtins[i];
    return NULL;
}

// find_custom needs the lock held (either mode).
static const lz_serializer_t *find_custom(const lz_registry_t *registry, const char *name) {
    for (size_t i = 0; i < registry->len; i++)
        if (strcmp(registry->custom[i]->ops->name, name) == 0) return registry->custom[i];
    return NULL;
}

lz_registry_t *lz__registry_new(void) {
    lz_registry_t *registry = calloc(1, sizeof *registry);
    if (!registry) return lz__fail_null(LZ_ENOMEM, "serializer: out of memory");
    if (pthread_rwlock_init(&registry->lock, NULL) != 0) {
        free(registry);
        return lz__fail_null(LZ_ENOMEM, "serializer: cannot create the registry lock");
    }
    return registry;
}

void lz__registry_destroy(lz_registry_t **registry_p) {
    if (!registry_p || !*registry_p) return;
    lz_registry_t *registry = *registry_p;
    for (size_t i = 0; i < registry->len; i++) {
        lz_serializer_t *s = registry->custom[i];
        if (s->ops->destroy) s->ops->destroy(s->state);
        free(s);
    }
    free(registry->custom);
    pthread_rwlock_destroy(&registry->lock);
    free(registry);
    *registry_p = NULL;
}

// insert_locked appends a custom codec; the caller holds the write lock.
static int insert_locked(lz_registry_t *registry, const lz_serializer_ops_t *ops, void *state) {
    if (find_builtin(ops->name) || find_custom(registry, ops->name))
        return lz__fail(LZ_ESTATE, "serializer: the name '%s' is already registered", ops->name);
    if (registry->len == registry->cap) {
        size_t cap = registry->cap ? registry->cap * 2 : 4;
        lz_serializer_t **grown = realloc(registry->custom, cap * sizeof *grown);
        if (!grown) return lz__fail(LZ_ENOMEM, "serializer: out of memory");
        registry->custom = grown;
        registry->cap = cap;
    }
    lz_serializer_t *s = calloc(1, sizeof *s);
    if (!s) return lz__fail(LZ_ENOMEM, "serializer: out of memory");
    s->copy = *ops;
    s->ops = &s->copy;
    s->state = state;
    registry->custom[registry->len++] = s;
    return 0;
}

int lz__registry_add(lz_registry_t *registry, const lz_serializer_ops_t *ops, void *state) {
    int rc;
    if (!registry || !ops || !ops->name || !ops->name[0] || !ops->encode || !ops->decode) {
        rc = lz__fail(LZ_EINVAL, "serializer: registration needs a registry and ops with a name, "
                                 "encode and decode");
    } else {
        pthread_rwlock_wrlock(&registry->lock);
        rc = insert_locked(registry, ops, state);
        pthread_rwlock_unlock(&registry->lock);
    }
    // The registry owns state from the call on, so a refused one is freed.
    if (rc < 0 && ops && ops->destroy) ops->destroy(state);
    return rc;
}

// not_found lists every known name, so a typo in a config file is obvious.
static void *not_found(const lz_registry_t *registry, const char *name) {
    char known[256] = "";
    size_t used = 0;
    for (size_t i = 0; i < BUILTIN_COUNT + (registry ? registry->len : 0); i++) {
        const lz_serializer_t *s = i < BUILTIN_COUNT ? &builtins[i] : registry->custom[i - BUILTIN_COUNT];
        int n = snprintf(known + used, sizeof known - used, "%s%s", i ? ", " : "", s->ops->name);
        if (n < 0 || (size_t)n >= sizeof known - used) break;
        used += (size_t)n;
    }
    return lz__fail_null(LZ_ENOTFOUND, "serializer: unknown serializer '%s' (known: %s)", name, known);
}

const lz_serializer_t *lz__registry_find(lz_registry_t *registry, const char *name) {
    if (!name) return lz__fail_null(LZ_EINVAL, "serializer: NULL name");
    const lz_serializer_t *found = find_builtin(name);
    if (found || !registry) return found ? found : not_found(NULL, name);
    pthread_rwlock_rdlock(&registry->lock);
    found = find_custom(registry, name);
    if (!found) not_found(registry, name);
    pthread_rwlock_unlock(&registry->lock);
    return found;
}

static lz_registry_t *registry_of(lz_context_t *ctx) {
    if (!ctx) return lz__fail_null(LZ_EINVAL, "serializer: NULL context");
    lz_registry_t *registry = lz__context_registry(ctx);
    if (!registry) return lz__fail_null(LZ_ESTATE, "serializer: the context has no registry");
    return registry;
}

int lz_serializer_register(lz_context_t *ctx, const lz_serializer_ops_t *ops, void *state) {
    lz_registry_t *registry = registry_of(ctx);
    if (registry) return lz__registry_add(registry, ops, state);
    int rc = lz_last_error_code();
    if (ops && ops->destroy) ops->destroy(state);
    return rc;
}

const lz_serializer_t *lz_serializer_find(lz_context_t *ctx, const char *name) {
    lz_registry_t *registry = registry_of(ctx);
    return registry ? lz__registry_find(registry, name) : NULL;
}

const lz_serializer_t *lz_serializer_builtin(const char *name) {
    return lz__registry_find(NULL, name);
}

const char *lz_serializer_name(const lz_serializer_t *serializer) {
    return serializer ? serializer->ops->name : NULL;
}

const char *lz_serializer_content_type(const lz_serializer_t *serializer) {
    return serializer ? serializer->ops->content_type : NULL;
}

unsigned lz_serializer_flags(const lz_serializer_t *serializer) {
    return serializer ? serializer->ops->flags : 0;
}

// encoded finishes an encode into out, which held before bytes: a failed
// one (out of memory part way, say) leaves out as it was.
static int encoded(int rc, size_t before, lz_buffer_t *out) {
    if (rc < 0) lz__buffer_truncate(out, before);
    return rc < 0 ? rc : 0;
}

int lz_serializer_encode(const lz_serializer_t *serializer, const lz_value_t *value, lz_buffer_t *out) {
    if (!serializer || !value || !out)
        return lz__fail(LZ_EINVAL, "serializer: encode needs a serializer, a value and a buffer");
    size_t before = lz_buffer_size(out);
    int rc = serializer->ops->encode(serializer->state, value, out);
    // Anything but 0 is a failure: a codec that returned 1 once passed a
    // half-written encoding off as whole.
    if (rc > 0)
        rc = lz__fail(LZ_ESERIALIZATION, "serializer: '%s' encode returned %d, neither 0 nor an error",
                      serializer->ops->name, rc);
    return encoded(rc, before, out);
}

int lz__serializer_encode_envelope(const lz_serializer_t *serializer, const lz_envelope_text_t *envelope,
                                   lz_buffer_t *out) {
    if (!serializer || !out || serializer->ops != &lz__json_ops) return 1;
    size_t before = lz_buffer_size(out);
    return encoded(lz__json_encode_envelope(envelope, out), before, out);
}

int lz_serializer_decode(const lz_serializer_t *serializer, const void *data, size_t size, lz_value_t **out) {
    if (!serializer || !out || (!data && size))
        return lz__fail(LZ_EINVAL, "serializer: decode needs a serializer, data and an output");
    *out = NULL;
    int rc = serializer->ops->decode(serializer->state, data ? data : "", size, out);
    // As in encode: a codec that returns 1 for bad bytes must not pass off
    // what it built until then as the value.
    if (rc > 0)
        rc = lz__fail(LZ_ESERIALIZATION, "serializer: '%s' decode returned %d, neither 0 nor an error",
                      serializer->ops->name, rc);
    if (rc < 0) {
        lz_value_destroy(out); // a custom codec may leave a partial value
        return rc;
    }
    if (!*out)
        return lz__fail(LZ_ESERIALIZATION, "serializer: '%s' decoded no value", serializer->ops->name);
    return 0;
}

// decode_frozen is lz_serializer_decode with the tree frozen, for a
// message that holds it (registry.h).
static int decode_frozen(const lz_serializer_t *serializer, const void *data, size_t size, lz_value_t **out) {
    int rc = lz_serializer_decode(serializer, data, size, out);
    return rc == LZ_OK ? lz__value_freeze(out) : rc;
}

// decode_in is lz__serializer_decode_in, or with held lz__serializer_decode_held.
// Inlined with held a constant: each is one tail call on the json path.
static inline int decode_in(const lz_serializer_t *serializer, const void *data, size_t size, lz_value_slot_t *slot,
                            lz_arena_t *arena, bool held, lz_value_t **out) {
    bool usable = serializer && out && (data || !size);
    if (usable && serializer->ops == &lz__raw_ops) {
        *out = lz__value_bytes_borrowed_in(slot, data, size);
        return 0;
    }
    if (usable && serializer->ops == &lz__json_ops) {
        *out = NULL;
        return held ? lz__json_decode_held(arena, data ? data : "", size, out)
                    : lz__json_decode_in(arena, data ? data : "", size, out);
    }
    return held ? decode_frozen(serializer, data, size, out) : lz_serializer_decode(serializer, data, size, out);
}

int lz__serializer_decode_in(const lz_serializer_t *serializer, const void *data, size_t size,
                             lz_value_slot_t *slot, lz_arena_t *arena, lz_value_t **out) {
    return decode_in(serializer, data, size, slot, arena, false, out);
}

int lz__serializer_decode_held(const lz_serializer_t *serializer, const void *data, size_t size,
                               lz_value_slot_t *slot, lz_arena_t *arena, lz_value_t **out) {
    return decode_in(serializer, data, size, slot, arena, true, out);
}

/* A serializer plugin: "json+rot13", JSON with every ASCII letter turned
 * 13 places (a stand-in for any transform of the bytes: compression,
 * encryption). Load it and name the codec like a built-in one:
 *   LIBERZMQ_PLUGINS__LOAD=build/examples/plugins/rot13.so \
 *   LIBERZMQ_SERIALIZATION__DEFAULT=json+rot13 lz sub --connect ...
 * docs/plugins.md walks through it. */
#include <stdlib.h>
#include <string.h>

#include "liberzmq.h"

static void rot13(char *text, size_t size) {
    for (size_t i = 0; i < size; i++) {
        char c = text[i];
        if ((c >= 'a' && c <= 'm') || (c >= 'A' && c <= 'M')) text[i] = (char)(c + 13);
        else if ((c >= 'n' && c <= 'z') || (c >= 'N' && c <= 'Z')) text[i] = (char)(c - 13);
    }
}

// encode appends the JSON, then turns the bytes it appended, in place: out
// is the caller's writable buffer (lz_buffer_data is const for readers).
// The built-in json codec (state) does the JSON: a plugin builds on the
// public API like any program.
static int encode(void *state, const lz_value_t *value, lz_buffer_t *out) {
    size_t start = lz_buffer_size(out);
    int rc = lz_serializer_encode(state, value, out);
    if (rc == LZ_OK) rot13((char *)lz_buffer_data(out) + start, lz_buffer_size(out) - start);
    return rc;
}

// decode turns a copy back (the received bytes are read-only), then parses it.
static int decode(void *state, const void *data, size_t size, lz_value_t **out) {
    char *text = malloc(size ? size : 1);
    if (!text) return lz_set_error(LZ_ENOMEM, "json+rot13: out of memory");
    memcpy(text, data, size);
    rot13(text, size);
    int rc = lz_serializer_decode(state, text, size, out);
    free(text);
    return rc;
}

// The registry copies the ops; the strings are the plugin's literals, which
// stay mapped for as long as the context that registered them.
static const lz_serializer_ops_t rot13_ops = {
    .name = "json+rot13",
    .content_type = "application/x-json-rot13",
    .encode = encode,
    .decode = decode,
    // no destroy: the state, the built-in json codec, is static
};

static int rot13_init(lz_plugin_t *plugin) {
    const lz_serializer_t *json = lz_serializer_builtin("json");
    if (!json) return lz_set_error(LZ_ENOTFOUND, "no built-in json codec");
    // encode and decode only cast the const away to pass it back to
    // lz_serializer_encode/decode, which take it const.
    return lz_plugin_register_serializer(plugin, &rot13_ops, (void *)json);
}

LZ_PLUGIN_DEFINE("rot13", "1.0.0", rot13_init, NULL);

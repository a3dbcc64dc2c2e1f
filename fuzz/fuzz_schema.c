/* JSON Schema (lz_schema_*): a schema document, from configuration, and an
 * instance, from a peer. The input is a 2-byte big-endian length, that many
 * bytes of schema text (a length past the end takes what is left), then
 * the instance, decoded as JSON and, on its own, as MessagePack. Besides
 * crashes, hangs (libFuzzer's -timeout: regex backtracking, $ref cycles)
 * and stack overflows (deep schemas and values):
 *   - a refused schema is LZ_ESERIALIZATION (not JSON), LZ_EINVAL (with a
 *     "schema #<pointer>: " detail) or LZ_ENOMEM, and compiling the same
 *     document again gives the same answer;
 *   - validating is deterministic: twice, or with the second compilation,
 *     the same code and detail; the code is LZ_OK, LZ_EVALIDATION (with a
 *     "$..." detail that is UTF-8 without NUL, as error replies need) or
 *     LZ_ENOMEM;
 *   - the instance sent on (encoded with its codec, and a JSON one as
 *     MessagePack too) and decoded gets the same verdict and detail;
 *   - a pattern match never runs out of JIT stack;
 *   - uniqueItems (hashed past 16 items) finds the pair that comparing
 *     every pair of the instance finds. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/error.h"
#include "fuzz_common.h"
#include "liberzmq/schema.h"
#include "serial/value.h"

// A verdict: the code and, for a failure, its detail.
typedef struct verdict {
    int rc;
    char detail[LZ_DETAIL_MAX];
} verdict_t;

static bool starts_with(const char *text, const char *prefix) { return strncmp(text, prefix, strlen(prefix)) == 0; }

static verdict_t validate(const lz_schema_t *schema, const lz_value_t *value) {
    verdict_t v = {.rc = lz_schema_validate(schema, value)};
    if (v.rc == LZ_OK) return v;
    const char *detail = lz_last_error();
    fuzz_require(v.rc == LZ_EVALIDATION || v.rc == LZ_ENOMEM, "validation gives LZ_OK, LZ_EVALIDATION or LZ_ENOMEM");
    fuzz_require(strlen(detail) < sizeof v.detail, "a validation detail fits LZ_DETAIL_MAX");
    fuzz_require(starts_with(detail, "$"), "a validation detail starts with the value's path");
    fuzz_require(fuzz_is_topic_text(detail, strlen(detail)), "a validation detail is UTF-8 (error replies carry it)");
    // Inputs this short never need more than the JIT stack a match gets (the
    // end of the detail: the value and the pattern are quoted before it).
    static const char jit_stack[] = "could not be matched: JIT stack limit reached";
    size_t len = strlen(detail);
    fuzz_require(len < sizeof jit_stack || strcmp(detail + len - (sizeof jit_stack - 1), jit_stack) != 0,
                 "a pattern match never runs out of JIT stack");
    strcpy(v.detail, detail);
    return v;
}

static void require_same(const verdict_t *a, const verdict_t *b, const char *property) {
    fuzz_require(a->rc == b->rc && strcmp(a->detail, b->detail) == 0, property);
}

// check_resent checks value sent on with codec: encoded and decoded, it
// gets the verdict the original got. Only the codec the value came with
// must encode it (MessagePack nests 32 levels, JSON 127).
static void check_resent(const lz_schema_t *schema, const lz_value_t *value, const verdict_t *first,
                         const char *codec_name, bool must_encode) {
    const lz_serializer_t *codec = lz_serializer_builtin(codec_name);
    lz_buffer_t *buffer = lz_buffer_new();
    fuzz_require(buffer != NULL, "a buffer can be allocated");
    int rc = lz_serializer_encode(codec, value, buffer);
    fuzz_require(rc == LZ_OK || (!must_encode && rc == LZ_ESERIALIZATION), "a decoded instance encodes");
    lz_value_t *again = NULL;
    if (rc != LZ_OK) {
        lz_buffer_destroy(&buffer);
        return;
    }
    fuzz_require(lz_serializer_decode(codec, lz_buffer_data(buffer), lz_buffer_size(buffer), &again) == LZ_OK,
                 "an encoded instance decodes");
    verdict_t resent = validate(schema, again);
    if (first->rc != LZ_ENOMEM && resent.rc != LZ_ENOMEM)
        require_same(first, &resent, "an instance sent on gets the same verdict");
    lz_value_destroy(&again);
    lz_buffer_destroy(&buffer);
}

// check_unique_items compares uniqueItems, which sorts long arrays by a
// hash, with comparing every pair: the same verdict and the same pair.
static void check_unique_items(const lz_value_t *value) {
    static lz_schema_t *unique;
    static const char text[] = "{\"uniqueItems\":true}";
    if (!unique) fuzz_require((unique = lz_schema_from_json(text, sizeof text - 1)) != NULL, "uniqueItems compiles");
    if (lz_value_type(value) != LZ_VALUE_ARRAY) return;
    verdict_t got = validate(unique, value), want = {.rc = LZ_OK};
    for (size_t i = 1; i < lz_value_size(value) && want.rc == LZ_OK; i++) {
        for (size_t j = 0; j < i && want.rc == LZ_OK; j++) {
            if (!lz__value_json_equal(lz_value_at(value, i), lz_value_at(value, j))) continue;
            want.rc = LZ_EVALIDATION;
            snprintf(want.detail, sizeof want.detail, "$: items %zu and %zu are equal (uniqueItems)", j, i);
        }
    }
    if (got.rc != LZ_ENOMEM) require_same(&got, &want, "uniqueItems finds the pair comparing every pair finds");
}

// check_instance validates the instance bytes decoded with codec_name, if
// they decode, with both compilations of the schema.
static void check_instance(const lz_schema_t *schema, const lz_schema_t *twin, const char *codec_name,
                           const uint8_t *data, size_t size) {
    lz_value_t *value = NULL;
    if (lz_serializer_decode(lz_serializer_builtin(codec_name), data, size, &value) != LZ_OK) return;
    verdict_t first = validate(schema, value);
    verdict_t second = validate(schema, value);
    verdict_t other = validate(twin, value);
    if (first.rc != LZ_ENOMEM && second.rc != LZ_ENOMEM && other.rc != LZ_ENOMEM) {
        require_same(&first, &second, "validating twice gives the same verdict");
        require_same(&first, &other, "a schema compiled twice gives the same verdicts");
    }
    check_unique_items(value);
    check_resent(schema, value, &first, codec_name, true);
    // JSON has no bytes values, which MessagePack may hold (sent as JSON, a
    // base64 string): only a JSON instance can go either way.
    if (strcmp(codec_name, "json") == 0) check_resent(schema, value, &first, "msgpack", false);
    lz_value_destroy(&value);
}

// check_refused: a schema that does not compile says why, with a
// documented code.
static void check_refused(int rc, const char *detail) {
    fuzz_require(rc == LZ_EINVAL || rc == LZ_ESERIALIZATION || rc == LZ_ENOMEM,
                 "a refused schema is LZ_EINVAL, LZ_ESERIALIZATION or LZ_ENOMEM");
    fuzz_require(detail[0] != '\0', "a refused schema has a detail");
    if (rc == LZ_EINVAL) fuzz_require(starts_with(detail, "schema #"), "a malformed schema's detail names the pointer");
}

// compile_twin compiles the document a second time, from its value, which
// must give what lz_schema_from_json gave (first, or NULL with first_rc).
static lz_schema_t *compile_twin(const char *text, size_t len, const lz_schema_t *first, int first_rc) {
    lz_value_t *document = lz_value_from_json(text, len);
    if (!document) {
        fuzz_require(!first && first_rc == LZ_ESERIALIZATION, "a schema that is not JSON is LZ_ESERIALIZATION");
        return NULL;
    }
    lz_schema_t *twin = lz_schema_new(document);
    lz_value_destroy(&document);
    int rc = twin ? LZ_OK : lz_last_error_code();
    if (first_rc != LZ_ENOMEM && rc != LZ_ENOMEM)
        fuzz_require((twin != NULL) == (first != NULL) && rc == first_rc, "compiling a schema is deterministic");
    return twin;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (size < 2) return 0;
    size_t declared = (size_t)data[0] << 8 | data[1];
    size_t schema_len = declared < size - 2 ? declared : size - 2;
    const char *text = (const char *)data + 2;
    const uint8_t *instance = data + 2 + schema_len;
    size_t instance_len = size - 2 - schema_len;

    lz_schema_t *schema = lz_schema_from_json(text, schema_len);
    int rc = schema ? LZ_OK : lz_last_error_code();
    if (!schema) check_refused(rc, lz_last_error());
    lz_schema_t *twin = compile_twin(text, schema_len, schema, rc);
    if (schema && twin) {
        check_instance(schema, twin, "json", instance, instance_len);
        check_instance(schema, twin, "msgpack", instance, instance_len);
    }
    lz_schema_destroy(&twin);
    lz_schema_destroy(&schema);
    return 0;
}

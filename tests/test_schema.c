/* JSON Schema validation (include/liberzmq/schema.h): the official
 * JSON-Schema-Test-Suite (Debian's json-schema-test-suite, draft-06 and
 * draft-07) plus our own draft 2020-12 file in the suite's format
 * (tests/schema/draft2020-12.json: Debian's suite predates that draft),
 * then our own cases: error messages, malformed schemas, the recursion
 * bound, long strings and patterns, large uniqueItems arrays, NULL
 * arguments, bytes values and four threads on one schema. */
#include <dirent.h>
#include <pthread.h>

#include "lz_test.h"
#include "serial/utf8.h"

#ifndef LZ_SCHEMA_SUITE_DIR
#define LZ_SCHEMA_SUITE_DIR "/usr/share/json-schema-test-suite/tests"
#endif

/* ---- the test suite ------------------------------------------------------ */

// What the suite tests that liberzmq does not do, each with the reason.
// A NULL field matches anything; group and test are the suite's
// descriptions. docs/schema.md lists the same limits.
typedef struct skip {
    const char *draft, *file, *group, *test, *why;
} skip_t;

static const skip_t skips[] = {
    // Whole files.
    {NULL, "refRemote.json", NULL, NULL, "remote $ref (http://...) is not supported"},
    {NULL, "content.json", NULL, NULL, "contentMediaType/contentEncoding are annotations here"},
    {NULL, "format.json", NULL, NULL, "format is an annotation here (draft-06 keeps its tests beside the others)"},
    // $ref to other documents or through $id.
    {NULL, "ref.json", "remote ref, containing refs itself", NULL, "remote $ref"},
    {NULL, "ref.json", "Recursive references between schemas", NULL, "$id-relative $ref"},
    {NULL, "definitions.json", NULL, NULL, "validates against the remote draft meta-schema"},
    // A "format": "regex" test: format is an annotation here.
    {NULL, "ecmascript-regex.json", "ECMA 262 regex non-compliance", NULL, "format is an annotation"},
};

static const skip_t *find_skip(const char *draft, const char *file, const char *group, const char *test) {
    for (size_t i = 0; i < sizeof skips / sizeof skips[0]; i++) {
        const skip_t *s = &skips[i];
        if ((!s->draft || strcmp(s->draft, draft) == 0) && (!s->file || strcmp(s->file, file) == 0) &&
            (!s->group || strcmp(s->group, group) == 0) && (!s->test || strcmp(s->test, test) == 0))
            return s;
    }
    return NULL;
}

// file_skipped: a skip entry for the whole file.
static bool file_skipped(const char *draft, const char *file) {
    for (size_t i = 0; i < sizeof skips / sizeof skips[0]; i++) {
        const skip_t *s = &skips[i];
        if ((!s->draft || strcmp(s->draft, draft) == 0) && s->file && strcmp(s->file, file) == 0 && !s->group)
            return true;
    }
    return false;
}

typedef struct tally {
    int run, passed, skipped;
} tally_t;

static lz_value_t *read_json_file(const char *path) {
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    char *text = NULL;
    size_t len = 0, cap = 0, n;
    char chunk[65536];
    while ((n = fread(chunk, 1, sizeof chunk, f)) > 0) {
        if (len + n > cap) {
            cap = (len + n) * 2;
            text = realloc(text, cap);
            if (!text) abort();
        }
        memcpy(text + len, chunk, n);
        len += n;
    }
    fclose(f);
    lz_value_t *v = lz_value_from_json(text ? text : "", len);
    free(text);
    return v;
}

// run_group compiles one group's schema and runs its tests. legacy groups
// (draft-06/-07 files) get the draft's $schema, as a real document of that
// draft would carry, so that $ref replaces its siblings there.
static void run_group(const char *draft, const char *file, lz_value_t *group, bool legacy, tally_t *t) {
    const char *description = lz_value_find_string(group, "description", "?");
    lz_value_t *schema = lz_value_get(group, "schema");
    const lz_value_t *tests = lz_value_get(group, "tests");
    if (legacy && lz_value_type(schema) == LZ_VALUE_OBJECT && !lz_value_get(schema, "$schema"))
        lz_value_object_set_string(schema, "$schema", "http://json-schema.org/draft-07/schema#");
    lz_schema_t *compiled = NULL;
    bool tried = false;
    for (size_t i = 0; i < lz_value_size(tests); i++) {
        const lz_value_t *test = lz_value_at(tests, i);
        const char *name = lz_value_find_string(test, "description", "?");
        if (find_skip(draft, file, description, name)) {
            t->skipped++;
            continue;
        }
        if (!tried) {
            tried = true;
            if (!(compiled = lz_schema_new(schema)))
                fprintf(stderr, "%s/%s: \"%s\": schema refused: %s\n", draft, file, description, lz_last_error());
        }
        t->run++;
        bool valid = lz_value_get_bool(lz_value_get(test, "valid"));
        int rc = compiled ? lz_schema_validate(compiled, lz_value_get(test, "data")) : LZ_EINVAL;
        if (rc == (valid ? LZ_OK : LZ_EVALIDATION)) {
            t->passed++;
            continue;
        }
        fprintf(stderr, "%s/%s: \"%s\" / \"%s\": expected %s, got %s (%s)\n", draft, file, description, name,
                valid ? "valid" : "invalid", lz_error_name(rc), lz_last_error());
    }
    lz_schema_destroy(&compiled);
}

static void run_file(const char *draft, const char *dir, const char *file, bool legacy, tally_t *t) {
    char path[1024];
    snprintf(path, sizeof path, "%s/%s", dir, file);
    lz_value_t *groups = read_json_file(path);
    LZ_CHECK(groups != NULL);
    if (!groups) {
        fprintf(stderr, "cannot read %s: %s\n", path, lz_last_error());
        return;
    }
    if (file_skipped(draft, file)) {
        for (size_t i = 0; i < lz_value_size(groups); i++)
            t->skipped += (int)lz_value_size(lz_value_get(lz_value_at(groups, i), "tests"));
    } else {
        for (size_t i = 0; i < lz_value_size(groups); i++) run_group(draft, file, lz_value_at(groups, i), legacy, t);
    }
    lz_value_destroy(&groups);
}

static int compare_names(const void *a, const void *b) { return strcmp(*(char *const *)a, *(char *const *)b); }

// run_dir runs every *.json file of dir (sorted, for a stable output).
static void run_dir(const char *draft, const char *dir, bool legacy, tally_t *t) {
    DIR *d = opendir(dir);
    if (!d) {
        fprintf(stderr,
                "the JSON Schema test suite is missing: %s (scripts/install-deps.sh installs "
                "json-schema-test-suite)\n",
                dir);
        LZ_CHECK(d != NULL);
        return;
    }
    char *names[256];
    size_t n = 0;
    struct dirent *e;
    while ((e = readdir(d)) && n < sizeof names / sizeof names[0]) {
        size_t len = strlen(e->d_name);
        if (len > 5 && strcmp(e->d_name + len - 5, ".json") == 0) names[n++] = strdup(e->d_name);
    }
    closedir(d);
    qsort(names, n, sizeof names[0], compare_names);
    for (size_t i = 0; i < n; i++) {
        run_file(draft, dir, names[i], legacy, t);
        free(names[i]);
    }
}

// suite runs a draft's required tests and its optional ones but for
// format (an annotation here); every case not skipped must pass.
static void suite(const char *draft, bool legacy) {
    tally_t t = {0};
    char dir[512];
    snprintf(dir, sizeof dir, "%s/%s", LZ_SCHEMA_SUITE_DIR, draft);
    run_dir(draft, dir, legacy, &t);
    snprintf(dir, sizeof dir, "%s/%s/optional", LZ_SCHEMA_SUITE_DIR, draft);
    run_dir(draft, dir, legacy, &t);
    printf("JSON Schema Test Suite %s: %d cases run, %d passed, %d skipped\n", draft, t.run, t.passed, t.skipped);
    LZ_CHECK(t.run > 100);
    LZ_CHECK_INT(t.passed, t.run);
}

LZ_TEST(suite_draft7) { suite("draft7", true); }
LZ_TEST(suite_draft6) { suite("draft6", true); }

// Our own 2020-12 cases, in the suite's format.
LZ_TEST(suite_draft2020_12) {
    tally_t t = {0};
    run_file("draft2020-12", LZ_TEST_DIR "/schema", "draft2020-12.json", false, &t);
    printf("tests/schema/draft2020-12.json: %d cases run, %d passed, %d skipped\n", t.run, t.passed, t.skipped);
    LZ_CHECK(t.run > 50);
    LZ_CHECK_INT(t.passed, t.run);
}

/* ---- our own cases -------------------------------------------------------- */

static lz_schema_t *compile(const char *json) {
    lz_schema_t *s = lz_schema_from_json(json, strlen(json));
    if (!s) fprintf(stderr, "schema %s refused: %s\n", json, lz_last_error());
    LZ_CHECK(s != NULL);
    return s;
}

// failure validates data (JSON) against schema (JSON) and checks the code
// and the detail.
static void failure(const char *schema, const char *data, int code, const char *detail) {
    lz_schema_t *s = compile(schema);
    lz_value_t *v = lz_value_from_json(data, strlen(data));
    LZ_CHECK(v != NULL);
    if (s && v) {
        LZ_CHECK_INT(lz_schema_validate(s, v), code);
        LZ_CHECK_STR(lz_last_error(), detail);
    }
    lz_value_destroy(&v);
    lz_schema_destroy(&s);
}

static void valid(const char *schema, const char *data) {
    lz_schema_t *s = compile(schema);
    lz_value_t *v = lz_value_from_json(data, strlen(data));
    LZ_CHECK(v != NULL);
    if (s && v) LZ_CHECK_INT(lz_schema_validate(s, v), LZ_OK);
    lz_value_destroy(&v);
    lz_schema_destroy(&s);
}

static void refused(const char *schema, int code, const char *detail) {
    lz_schema_t *s = lz_schema_from_json(schema, strlen(schema));
    LZ_CHECK(s == NULL);
    LZ_CHECK_INT(lz_last_error_code(), code);
    if (detail) LZ_CHECK_STR(lz_last_error(), detail);
    lz_schema_destroy(&s);
}

LZ_TEST(error_messages) {
    failure("{\"type\":\"object\",\"required\":[\"name\",\"email\"]}", "{\"name\":\"x\"}", LZ_EVALIDATION,
            "$: missing required property 'email'");
    failure("{\"properties\":{\"tags\":{\"type\":\"array\",\"items\":{\"type\":\"string\"}}}}",
            "{\"tags\":[\"a\",\"b\",3]}", LZ_EVALIDATION, "$.tags[2]: expected string, got integer");
    failure("{\"properties\":{\"user\":{\"properties\":{\"age\":{\"type\":\"integer\",\"minimum\":0}}}}}",
            "{\"user\":{\"age\":-1}}", LZ_EVALIDATION, "$.user.age: -1 is less than the minimum 0");
    failure("{\"properties\":{\"id\":{\"pattern\":\"^[a-z]+$\"}}}", "{\"id\":\"ABC\"}", LZ_EVALIDATION,
            "$.id: \"ABC\" does not match the pattern \"^[a-z]+$\"");
    failure("{\"properties\":{\"a\":true},\"additionalProperties\":false}", "{\"a\":1,\"extra\":2}", LZ_EVALIDATION,
            "$: property 'extra' is not allowed (additionalProperties is false)");
    failure("{\"enum\":[\"red\",\"green\"]}", "\"blue\"", LZ_EVALIDATION,
            "$: \"blue\" is not one of the enum values [\"red\",\"green\"]");
    failure("{\"const\":{\"v\":1}}", "{\"v\":2}", LZ_EVALIDATION, "$: {\"v\":2} is not the constant {\"v\":1}");
    failure("{\"properties\":{\"a b\":{\"type\":[\"string\",\"null\"]}}}", "{\"a b\":1.5}", LZ_EVALIDATION,
            "$[\"a b\"]: expected null or string, got number");
    failure("{\"maximum\":2.5}", "3", LZ_EVALIDATION, "$: 3 is greater than the maximum 2.5");
    failure("{\"exclusiveMinimum\":0}", "0", LZ_EVALIDATION, "$: 0 is not greater than the exclusive minimum 0");
    failure("{\"multipleOf\":0.1}", "0.35", LZ_EVALIDATION, "$: 0.35 is not a multiple of 0.1");
    failure("{\"maxLength\":2}", "\"h\xc3\xa9llo\"", LZ_EVALIDATION,
            "$: string of 5 characters is longer than maxLength 2");
    failure("{\"items\":{\"minItems\":1},\"uniqueItems\":true}", "[[1],[1.0]]", LZ_EVALIDATION,
            "$: items 0 and 1 are equal (uniqueItems)");
    failure("{\"anyOf\":[{\"type\":\"string\"},{\"type\":\"integer\"}]}", "true", LZ_EVALIDATION,
            "$: matches none of the anyOf schemas");
    failure("{\"oneOf\":[{\"minimum\":0},{\"maximum\":10}]}", "5", LZ_EVALIDATION,
            "$: matches oneOf schemas 0 and 1; it must match exactly one");
    failure("{\"not\":{\"type\":\"null\"}}", "null", LZ_EVALIDATION, "$: must not match the not schema");
    failure("{\"contains\":{\"type\":\"string\"}}", "[1,2]", LZ_EVALIDATION, "$: no item matches the contains schema");
    failure("{\"dependentRequired\":{\"card\":[\"billing\"]}}", "{\"card\":1}", LZ_EVALIDATION,
            "$: property 'card' requires property 'billing'");
    failure("{\"propertyNames\":{\"maxLength\":3}}", "{\"long\":1}", LZ_EVALIDATION,
            "$: property name 'long' does not match propertyNames");
    failure("{\"if\":{\"properties\":{\"kind\":{\"const\":\"a\"}}},\"then\":{\"required\":[\"x\"]}}",
            "{\"kind\":\"a\"}", LZ_EVALIDATION, "$: missing required property 'x'");
    failure("{\"prefixItems\":[true],\"items\":false}", "[1,2]", LZ_EVALIDATION,
            "$[1]: not allowed here (the schema is false)");
    // The first failure in document order is the one reported.
    failure("{\"properties\":{\"a\":{\"type\":\"string\"},\"b\":{\"type\":\"string\"}}}", "{\"b\":1,\"a\":2}",
            LZ_EVALIDATION, "$.b: expected string, got integer");
}

// Keys that are no identifiers are written in the path as JSON strings.
LZ_TEST(path_keys_are_escaped) {
    const char *schema = "{\"additionalProperties\":{\"type\":\"string\"}}";
    failure(schema, "{\"a\\\"b\":1}", LZ_EVALIDATION, "$[\"a\\\"b\"]: expected string, got integer");
    failure(schema, "{\"a\\\\b\":1}", LZ_EVALIDATION, "$[\"a\\\\b\"]: expected string, got integer");
    failure(schema, "{\"a\\nb\\u0001\":1}", LZ_EVALIDATION, "$[\"a\\nb\\u0001\"]: expected string, got integer");
    failure(schema, "{\"\xc3\xa9\":1}", LZ_EVALIDATION, "$[\"\xc3\xa9\"]: expected string, got integer");
}

// Details are cut short at a character boundary, never inside one: a
// server sends them in a JSON error reply, whose writer refuses half a
// character (the client would get an empty frame instead).
LZ_TEST(long_details_cut_between_characters) {
    char name[128] = "", data[160], expected[200];
    for (int i = 0; i < 60; i++) strcat(name, "\xc3\xa9");
    snprintf(data, sizeof data, "{\"name\":\"%s\"}", name);
    // The value keeps 92 bytes: its quote and 45 characters, not 45 and a half.
    snprintf(expected, sizeof expected, "$.name: \"%.90s... does not match the pattern \"^[a-z]+$\"", name);
    failure("{\"properties\":{\"name\":{\"pattern\":\"^[a-z]+$\"}}}", data, LZ_EVALIDATION, expected);

    // A path longer than its half of the detail: "$[\"x" and 125.5 characters fill it.
    char key[512] = "x";
    for (int i = 0; i < 200; i++) strcat(key, "\xc3\xa9");
    lz_value_t *v = lz_value_object();
    lz_value_object_set_int(v, key, 1);
    lz_schema_t *s = compile("{\"additionalProperties\":{\"type\":\"string\"}}");
    LZ_CHECK_INT(lz_schema_validate(s, v), LZ_EVALIDATION);
    LZ_CHECK(lz__utf8_valid(lz_last_error(), strlen(lz_last_error())));
    LZ_CHECK(strstr(lz_last_error(), "\xc3\xa9: expected string, got integer") != NULL);
    lz_schema_destroy(&s);
    lz_value_destroy(&v);
}

// Valid data formats nothing: the detail set before stays.
LZ_TEST(valid_data_leaves_the_error_alone) {
    lz_schema_t *s = compile("{\"type\":\"object\",\"properties\":{\"a\":{\"anyOf\":[{\"type\":\"string\"},"
                             "{\"pattern\":\"x\"}]},\"n\":{\"not\":{\"minimum\":5}}},\"required\":[\"a\"]}");
    lz_value_t *v = lz_value_from_json("{\"a\":\"x\",\"n\":1}", 15);
    LZ_CHECK(v != NULL);
    lz_set_error(LZ_EINVAL, "marker");
    LZ_CHECK_INT(lz_schema_validate(s, v), LZ_OK);
    LZ_CHECK_STR(lz_last_error(), "marker");
    lz_value_destroy(&v);
    lz_schema_destroy(&s);
}

LZ_TEST(malformed_schemas) {
    refused("{\"properties\":{\"age\":{\"minimum\":\"0\"}}}", LZ_EINVAL,
            "schema #/properties/age/minimum: minimum must be a number, got string");
    refused("{\"pattern\":\"[a\"}", LZ_EINVAL,
            "schema #/pattern: bad regular expression \"[a\": missing terminating ] for character class at offset 2");
    refused("{\"patternProperties\":{\"(\":true}}", LZ_EINVAL, NULL);
    refused("{\"$defs\":{\"a\":true},\"items\":{\"$ref\":\"#/$defs/b\"}}", LZ_EINVAL,
            "schema #/items/$ref: cannot resolve $ref \"#/$defs/b\"");
    refused("{\"$ref\":\"http://example.com/s.json\"}", LZ_EINVAL,
            "schema #/$ref: $ref \"http://example.com/s.json\" is not supported: only JSON pointers into the same "
            "document (\"#\", \"#/...\")");
    refused("{\"$ref\":\"#node\"}", LZ_EINVAL, NULL);
    refused("{\"$dynamicRef\":\"#meta\"}", LZ_EINVAL,
            "schema #/$dynamicRef: $dynamicRef is not supported (see docs/schema.md)");
    refused("{\"type\":\"strin\"}", LZ_EINVAL, NULL);
    // A type name is its whole string: it was read up to a \u0000.
    refused("{\"type\":[\"null\",\"string\\u0000x\"]}", LZ_EINVAL,
            "schema #/type: type must be a type name (null, boolean, integer, number, string, array, object) or an "
            "array of them");
    refused("{\"minLength\":-1}", LZ_EINVAL,
            "schema #/minLength: minLength must be a non-negative integer, got number");
    refused("{\"multipleOf\":0}", LZ_EINVAL, "schema #/multipleOf: multipleOf must be greater than 0");
    refused("{\"required\":[\"a\",1]}", LZ_EINVAL,
            "schema #/required: required must be an array of strings, item 1 is number");
    refused("{\"$defs\":{\"x\":{\"maxItems\":true}}}", LZ_EINVAL,
            "schema #/$defs/x/maxItems: maxItems must be a non-negative integer, got boolean");
    // $ref inside, or into, an embedded resource (its own $id): its
    // pointers would be relative to it.
    refused("{\"$defs\":{\"x\":{\"$id\":\"http://x/y\",\"$ref\":\"#\"}}}", LZ_EINVAL,
            "schema #/$defs/x/$ref: $ref \"#\" inside a subschema with its own $id is not supported");
    refused("{\"$defs\":{\"x\":{\"$id\":\"y.json\",\"$defs\":{\"z\":true}}},\"$ref\":\"#/$defs/x/$defs/z\"}", LZ_EINVAL,
            "schema #/$ref: $ref \"#/$defs/x/$defs/z\" into a subschema with its own $id is not supported");
    valid("{\"$id\":\"http://x/root.json\",\"$defs\":{\"x\":{\"$id\":\"#plain\",\"type\":\"string\"}},"
          "\"$ref\":\"#/$defs/x\"}",
          "\"s\"");
    refused("{\"$ref\":\"#/required\",\"required\":[]}", LZ_EINVAL,
            "schema #/$ref: $ref \"#/required\" points at array, not a schema");
    refused("5", LZ_EINVAL, "schema #: a schema must be an object or a boolean, got number");
    refused("{\"a\":", LZ_ESERIALIZATION, NULL);
    // Keywords that do not apply are checked all the same: additionalItems
    // beside a schema items, items beside prefixItems, and the siblings of
    // a draft-07 $ref.
    refused("{\"items\":{},\"additionalItems\":5}", LZ_EINVAL,
            "schema #/additionalItems: a schema must be an object or a boolean, got number");
    refused("{\"prefixItems\":[true],\"items\":[5]}", LZ_EINVAL,
            "schema #/items/0: a schema must be an object or a boolean, got number");
    refused("{\"$schema\":\"http://json-schema.org/draft-07/schema#\",\"$ref\":\"#/definitions/a\","
            "\"definitions\":{\"a\":{\"type\":\"integer\"},\"bad\":{\"minimum\":\"x\"}}}",
            LZ_EINVAL, "schema #/definitions/bad/minimum: minimum must be a number, got string");
    refused("{\"$schema\":\"http://json-schema.org/draft-07/schema#\",\"$ref\":\"#\",\"pattern\":\"[\"}", LZ_EINVAL,
            NULL);
    // ECMA-262 writes an astral character as a surrogate pair; PCRE2 wants \u{...}.
    refused("{\"pattern\":\"\\\\ud83d\\\\udca9\"}", LZ_EINVAL, NULL);
    // The JSON pointer names keys that need escaping as RFC 6901 has it.
    refused("{\"properties\":{\"a/b\":{\"minimum\":null}}}", LZ_EINVAL,
            "schema #/properties/a~1b/minimum: minimum must be a number, got null");
}

// Each malformed keyword is refused with LZ_EINVAL and a detail naming
// its JSON pointer, the keyword and what it got (docs/schema.md).
LZ_TEST(malformed_keywords_are_named) {
    refused("{\"enum\":5}", LZ_EINVAL, "schema #/enum: enum must be an array, got number");
    refused("{\"items\":{\"enum\":{}}}", LZ_EINVAL, "schema #/items/enum: enum must be an array, got object");
    refused("{\"uniqueItems\":1}", LZ_EINVAL, "schema #/uniqueItems: uniqueItems must be a boolean, got number");
    refused("{\"uniqueItems\":\"true\"}", LZ_EINVAL,
            "schema #/uniqueItems: uniqueItems must be a boolean, got string");
    refused("{\"properties\":[]}", LZ_EINVAL,
            "schema #/properties: properties must be an object of schemas, got array");
    refused("{\"dependentSchemas\":true}", LZ_EINVAL,
            "schema #/dependentSchemas: dependentSchemas must be an object of schemas, got boolean");
    refused("{\"patternProperties\":[]}", LZ_EINVAL,
            "schema #/patternProperties: patternProperties must be an object, got array");
    refused("{\"dependentRequired\":[\"a\"]}", LZ_EINVAL,
            "schema #/dependentRequired: dependentRequired must be an object, got array");
    refused("{\"dependentRequired\":{\"a\":\"b\"}}", LZ_EINVAL,
            "schema #/dependentRequired/a: dependentRequired must be an array of strings, got string");
    refused("{\"dependencies\":null}", LZ_EINVAL, "schema #/dependencies: dependencies must be an object, got null");
    refused("{\"allOf\":[]}", LZ_EINVAL, "schema #/allOf: allOf must be a non-empty array of schemas");
    refused("{\"anyOf\":{}}", LZ_EINVAL, "schema #/anyOf: anyOf must be a non-empty array of schemas");
    refused("{\"oneOf\":[true,{\"not\":[]}]}", LZ_EINVAL,
            "schema #/oneOf/1/not: a schema must be an object or a boolean, got array");
    refused("{\"$ref\":5}", LZ_EINVAL, "schema #/$ref: $ref must be a string, got number");
    refused("{\"minimum\":[1]}", LZ_EINVAL, "schema #/minimum: minimum must be a number, got array");
    // In a $ref's pointer "~" must be "~0" or "~1": a "~2" or a "~" at the
    // end resolves nothing, even where the name with the "~" exists.
    refused("{\"$defs\":{\"a~2\":true,\"a~\":true},\"$ref\":\"#/$defs/a~2\"}", LZ_EINVAL,
            "schema #/$ref: cannot resolve $ref \"#/$defs/a~2\"");
    refused("{\"$defs\":{\"a~2\":true,\"a~\":true},\"properties\":{\"p\":{\"$ref\":\"#/$defs/a~\"}}}", LZ_EINVAL,
            "schema #/properties/p/$ref: cannot resolve $ref \"#/$defs/a~\"");
    // Bytes (a value, not JSON) are no schema.
    lz_value_t *schema = lz_value_object();
    lz_value_object_set(schema, "const", lz_value_int(1));
    lz_value_object_set(schema, "maximum", lz_value_bytes("\x01", 1));
    LZ_CHECK(lz_schema_new(schema) == NULL);
    LZ_CHECK_INT(lz_last_error_code(), LZ_EINVAL);
    LZ_CHECK_STR(lz_last_error(), "schema #/maximum: maximum must be a number, got bytes");
    lz_value_destroy(&schema);
}

// nots returns levels schemas, each the "not" of the next, the innermost {}.
static lz_value_t *nots(int levels) {
    lz_value_t *v = lz_value_object();
    for (int i = 1; i < levels; i++) {
        lz_value_t *outer = lz_value_object();
        lz_value_object_set(outer, "not", v);
        v = outer;
    }
    return v;
}

// A schema nests 128 levels of subschemas at most: past that (which only
// a value built in code can reach, the JSON reader stopping at 127) it is
// refused with LZ_EINVAL naming the limit, before the compiler recurses.
LZ_TEST(schema_nesting_is_bounded) {
    lz_value_t *deepest = nots(128), *deeper = nots(129);
    lz_schema_t *s = lz_schema_new(deepest);
    LZ_CHECK(s != NULL);
    lz_value_t *one = lz_value_int(1);
    if (s) LZ_CHECK_INT(lz_schema_validate(s, one), LZ_EVALIDATION); // 127 nots of {}: odd, so nothing is valid
    lz_schema_destroy(&s);
    LZ_CHECK(lz_schema_new(deeper) == NULL);
    LZ_CHECK_INT(lz_last_error_code(), LZ_EINVAL);
    LZ_CHECK(strncmp(lz_last_error(), "schema #/not/not/", 17) == 0);
    LZ_CHECK(strstr(lz_last_error(), "schema nested deeper than 128 levels") != NULL);
    lz_value_destroy(&one);
    lz_value_destroy(&deepest);
    lz_value_destroy(&deeper);
}

// A compile error's pointer takes half the detail at most, cut between
// characters, so a long key still leaves room for what is wrong (before,
// the pointer filled the detail and the reason was cut off).
LZ_TEST(long_pointers_leave_room_for_the_reason) {
    char key[700] = "", schema[800];
    for (int i = 0; i < 300; i++) strcat(key, "\xc3\xa9");
    snprintf(schema, sizeof schema, "{\"properties\":{\"%s\":{\"minimum\":\"0\"}}}", key);
    refused(schema, LZ_EINVAL, NULL);
    LZ_CHECK(lz__utf8_valid(lz_last_error(), strlen(lz_last_error())));
    LZ_CHECK(strstr(lz_last_error(), "\xc3\xa9: minimum must be a number, got string") != NULL);
}

LZ_TEST(refs_with_escapes) {
    const char *schema = "{\"$defs\":{\"a/b\":{\"type\":\"string\"},\"c%d\":{\"type\":\"integer\"},"
                         "\"t~\":{\"minimum\":3}},\"properties\":{\"x\":{\"$ref\":\"#/$defs/a~1b\"},"
                         "\"y\":{\"$ref\":\"#/$defs/c%25d\"},\"z\":{\"$ref\":\"#/$defs/t~0\"},"
                         "\"w\":{\"$ref\":\"#/properties/x\"}}}";
    valid(schema, "{\"x\":\"s\",\"y\":1,\"z\":4,\"w\":\"t\"}");
    failure(schema, "{\"y\":\"s\"}", LZ_EVALIDATION, "$.y: expected integer, got string");
    failure(schema, "{\"z\":2}", LZ_EVALIDATION, "$.z: 2 is less than the minimum 3");
    failure(schema, "{\"w\":2}", LZ_EVALIDATION, "$.w: expected string, got integer");
}

// A draft-07 $ref replaces its siblings; a 2020-12 one joins them.
LZ_TEST(ref_siblings_by_draft) {
    valid("{\"$schema\":\"http://json-schema.org/draft-07/schema#\",\"definitions\":{\"a\":{\"type\":\"integer\"}},"
          "\"properties\":{\"p\":{\"$ref\":\"#/definitions/a\",\"maximum\":2}}}",
          "{\"p\":5}");
    failure("{\"$defs\":{\"a\":{\"type\":\"integer\"}},\"properties\":{\"p\":{\"$ref\":\"#/$defs/a\",\"maximum\":2}}}",
            "{\"p\":5}", LZ_EVALIDATION, "$.p: 5 is greater than the maximum 2");
}

static lz_value_t *nested(int depth) {
    lz_value_t *v = lz_value_object();
    for (int i = 0; i < depth; i++) {
        lz_value_t *outer = lz_value_object();
        lz_value_object_set(outer, "child", v);
        v = outer;
    }
    return v;
}

LZ_TEST(recursion_is_bounded) {
    // A $ref to itself with nothing in between: never ends, but fails cleanly.
    lz_schema_t *loop = compile("{\"$ref\":\"#\"}");
    lz_value_t *one = lz_value_int(1);
    LZ_CHECK_INT(lz_schema_validate(loop, one), LZ_EVALIDATION);
    LZ_CHECK_STR(lz_last_error(), "$: validation nested deeper than 256 levels (a $ref that recurses without end?)");
    lz_schema_destroy(&loop);
    // The same inside a quiet branch (anyOf) still aborts with that reason.
    loop = compile("{\"anyOf\":[{\"$ref\":\"#\"}]}");
    LZ_CHECK_INT(lz_schema_validate(loop, one), LZ_EVALIDATION);
    LZ_CHECK(strstr(lz_last_error(), "nested deeper than 256") != NULL);
    lz_schema_destroy(&loop);
    // Two definitions that refer to each other.
    loop = compile("{\"$defs\":{\"a\":{\"$ref\":\"#/$defs/b\"},\"b\":{\"not\":{\"$ref\":\"#/$defs/a\"}}},"
                   "\"$ref\":\"#/$defs/a\"}");
    LZ_CHECK_INT(lz_schema_validate(loop, one), LZ_EVALIDATION);
    lz_schema_destroy(&loop);
    lz_value_destroy(&one);

    // A recursive schema on deep data: fine to 100 levels (2 per level),
    // bounded past it, whatever the data's depth.
    lz_schema_t *tree = compile("{\"type\":\"object\",\"properties\":{\"child\":{\"$ref\":\"#\"}}}");
    lz_value_t *ok = nested(100), *deep = nested(10000);
    LZ_CHECK_INT(lz_schema_validate(tree, ok), LZ_OK);
    LZ_CHECK_INT(lz_schema_validate(tree, deep), LZ_EVALIDATION);
    LZ_CHECK(strstr(lz_last_error(), "$.child.child.child") == lz_last_error());
    LZ_CHECK(strstr(lz_last_error(), "nested deeper than 256 levels") != NULL);
    lz_value_destroy(&ok);
    lz_value_destroy(&deep);
    // A wrong leaf deep down is named by its whole path.
    lz_value_t *leaf = nested(3);
    lz_value_object_set_int(lz_value_get(lz_value_get(leaf, "child"), "child"), "child", 7);
    LZ_CHECK_INT(lz_schema_validate(tree, leaf), LZ_EVALIDATION);
    LZ_CHECK_STR(lz_last_error(), "$.child.child.child: expected object, got integer");
    lz_value_destroy(&leaf);
    lz_schema_destroy(&tree);
}

// repeated returns count copies of unit between prefix and suffix, as a
// string the caller frees.
static char *repeated(const char *prefix, const char *unit, size_t count, const char *suffix) {
    size_t a = strlen(prefix), u = strlen(unit), b = strlen(suffix);
    char *text = malloc(a + u * count + b + 1);
    LZ_CHECK(text != NULL);
    memcpy(text, prefix, a);
    for (size_t i = 0; i < count; i++) memcpy(text + a + i * u, unit, u);
    memcpy(text + a + u * count, suffix, b + 1);
    return text;
}

// Two branches that both recurse into the same value applied the last
// subschema 2^40 times for 40 levels of data, which a peer chooses: a
// validation gives up after LZ_SCHEMA_MAX_STEPS subschemas (some 50 ms),
// quiet branch or not. A large value gets LZ_SCHEMA_STEPS_PER_VALUE per
// value instead, so many subschemas on many values still pass.
LZ_TEST(exponential_branches_give_up) {
    lz_schema_t *twice = compile("{\"properties\":{\"child\":{\"allOf\":[{\"$ref\":\"#\"},{\"$ref\":\"#\"}]}}}");
    lz_value_t *shallow = nested(10), *deep = nested(40);
    LZ_CHECK_INT(lz_schema_validate(twice, shallow), LZ_OK);
    LZ_CHECK_INT(lz_schema_validate(twice, deep), LZ_EVALIDATION);
    LZ_CHECK(strstr(lz_last_error(), "validation gave up after 10000000 steps") != NULL);
    lz_schema_destroy(&twice);
    lz_schema_t *quiet = compile("{\"anyOf\":[{\"properties\":{\"child\":{\"allOf\":[{\"$ref\":\"#\"},"
                                 "{\"$ref\":\"#\"}]}}},{\"type\":\"object\"}]}");
    lz_set_error(LZ_OK, NULL);
    LZ_CHECK_INT(lz_schema_validate(quiet, deep), LZ_EVALIDATION); // not the second branch's yes
    LZ_CHECK(strstr(lz_last_error(), "validation gave up after") != NULL);
    lz_schema_destroy(&quiet);
    lz_value_destroy(&shallow);
    lz_value_destroy(&deep);
    // Large strings count by their bytes: 24 levels recursing twice, each
    // with a 100 KB string checked against a pattern, took about 200 s.
    lz_schema_t *scan = compile("{\"properties\":{\"child\":{\"allOf\":[{\"$ref\":\"#\"},{\"$ref\":\"#\"}]},"
                                "\"s\":{\"pattern\":\"^[a-z]*$\"}}}");
    char *text = malloc(100001);
    memset(text, 'a', 100000);
    text[100000] = '\0';
    lz_value_t *wide_deep = lz_value_object();
    for (int i = 0; i < 24; i++) {
        lz_value_t *outer = lz_value_object();
        LZ_CHECK_INT(lz_value_object_set(outer, "child", wide_deep), LZ_OK);
        LZ_CHECK_INT(lz_value_object_set(outer, "s", lz_value_string(text)), LZ_OK);
        wide_deep = outer;
    }
    LZ_CHECK_INT(lz_schema_validate(scan, wide_deep), LZ_EVALIDATION);
    LZ_CHECK(strstr(lz_last_error(), "validation gave up after") != NULL);
    lz_value_destroy(&wide_deep);
    lz_schema_destroy(&scan);
    // ...and one large string alone passes however long it is.
    lz_schema_t *one = compile("{\"pattern\":\"^[a-z]*$\",\"maxLength\":100000}");
    lz_value_t *big = lz_value_string(text);
    LZ_CHECK_INT(lz_schema_validate(one, big), LZ_OK);
    lz_value_destroy(&big);
    lz_schema_destroy(&one);
    free(text);
    // 50,000 integers each tried against 250 strings first: 12.6 million
    // subschemas, under the 12.8 million 256 per value allow.
    char *branches = repeated("{\"items\":{\"anyOf\":[", "{\"type\":\"string\"},", 250, "{\"type\":\"integer\"}]}}");
    lz_schema_t *wide = compile(branches);
    lz_value_t *many = lz_value_array();
    for (int i = 0; i < 50000; i++) LZ_CHECK_INT(lz_value_array_append(many, lz_value_int(i)), LZ_OK);
    LZ_CHECK_INT(lz_schema_validate(wide, many), LZ_OK);
    lz_value_destroy(&many);
    lz_schema_destroy(&wide);
    free(branches);
}

// A repeated group over a long string outgrew the JIT's default stack (32
// KiB: "^(?:\w|-)+$" could not match 2000 characters, and valid data was
// refused); a validation now gives the JIT a larger stack when it needs one.
LZ_TEST(long_strings_match_patterns) {
    char *slug = repeated("\"", "a-", 20000, "\""), *bad = repeated("\"", "a-", 20000, "!\"");
    char *key = repeated("{\"", "a-", 5000, "\":1}");
    valid("{\"pattern\":\"^(?:\\\\w|-)+$\"}", slug);
    valid("{\"patternProperties\":{\"^(a|-)+$\":{\"const\":1}},\"additionalProperties\":false}", key);
    lz_schema_t *s = compile("{\"items\":{\"pattern\":\"^(?:\\\\w|-)+$\"}}");
    char *list = malloc(strlen(slug) + strlen(bad) + 4);
    sprintf(list, "[%s,%s]", slug, bad);
    lz_value_t *v = lz_value_from_json(list, strlen(list));
    LZ_CHECK_INT(lz_schema_validate(s, v), LZ_EVALIDATION);
    LZ_CHECK(strstr(lz_last_error(), "$[1]: \"a-a-") == lz_last_error());
    LZ_CHECK(strstr(lz_last_error(), "does not match the pattern") != NULL);
    lz_value_destroy(&v);
    lz_schema_destroy(&s);
    free(list);
    free(key);
    free(bad);
    free(slug);
}

// A pattern that backtracks without end gives up at LZ_SCHEMA_MATCH_LIMIT
// steps (a few ms): PCRE2's default limit let 22 characters cost 35 ms, so
// a peer's array of such strings a long time.
LZ_TEST(backtracking_gives_up_early) {
    char *data = repeated("\"", "a", 22, "!\"");
    failure("{\"pattern\":\"^(a+)+$\"}", data, LZ_EVALIDATION,
            "$: the pattern \"^(a+)+$\" could not be matched: match limit exceeded");
    free(data);
}

// uniqueItems past 16 items sorts them by a hash that equal items share,
// and reports the pair comparing every pair would: the later item first,
// then the earlier one. Comparing every pair of 100 thousand numbers took
// a minute.
LZ_TEST(unique_items_of_large_arrays) {
    const char *schema = "{\"uniqueItems\":true}";
    char data[1024];
    int n = snprintf(data, sizeof data, "[");
    for (int i = 0; i < 30; i++) n += snprintf(data + n, sizeof data - (size_t)n, "%d,", i);
    snprintf(data + n, sizeof data - (size_t)n, "7.0,-0.0]");
    failure(schema, data, LZ_EVALIDATION, "$: items 7 and 30 are equal (uniqueItems)");
    failure(schema,
            "[0,1,2,3,4,5,6,7,8,9,10,11,12,13,14,15,16,{\"a\":1,\"b\":[2]},\"x\",[1,2],{\"b\":[2.0],\"a\":1},-0.0]",
            LZ_EVALIDATION, "$: items 17 and 20 are equal (uniqueItems)");
    valid(schema, "[9007199254740993,9007199254740992.0,0.1,\"0.1\",[1],[1.0,2],{\"a\":1},{\"a\":\"1\"},{\"b\":1},"
                  "true,1,false,0,null,\"\",[],{},[[]],[{}],1.5,-1.5,\"1\",1e300]");

    size_t count = 100000;
    char *many = malloc(count * 8 + 16);
    LZ_CHECK(many != NULL);
    size_t at = (size_t)sprintf(many, "[");
    for (size_t i = 0; i < count; i++) at += (size_t)sprintf(many + at, "%zu,", i);
    sprintf(many + at, "%zu]", count - 1);
    lz_schema_t *s = compile(schema);
    lz_value_t *v = lz_value_from_json(many, strlen(many));
    int64_t start = lz_test_now_ms();
    LZ_CHECK_INT(lz_schema_validate(s, v), LZ_EVALIDATION);
    LZ_CHECK(lz_test_now_ms() - start < 5000 * LZ_TEST_SLOWDOWN);
    LZ_CHECK_STR(lz_last_error(), "$: items 99999 and 100000 are equal (uniqueItems)");
    lz_value_destroy(&v);
    lz_schema_destroy(&s);
    free(many);
}

LZ_TEST(null_arguments) {
    lz_value_t *v = lz_value_null();
    LZ_CHECK(lz_schema_new(NULL) == NULL);
    LZ_CHECK_INT(lz_last_error_code(), LZ_EINVAL);
    LZ_CHECK(lz_schema_from_json(NULL, 0) == NULL);
    LZ_CHECK_INT(lz_last_error_code(), LZ_EINVAL);
    LZ_CHECK_INT(lz_schema_validate(NULL, v), LZ_EINVAL);
    LZ_CHECK_STR(lz_last_error(), "lz_schema_validate: NULL schema");
    lz_schema_t *s = compile("true");
    LZ_CHECK_INT(lz_schema_validate(s, NULL), LZ_EINVAL);
    LZ_CHECK_STR(lz_last_error(), "lz_schema_validate: NULL value");
    LZ_CHECK_INT(lz_schema_validate(s, v), LZ_OK);
    lz_schema_destroy(&s);
    LZ_CHECK(s == NULL);
    lz_schema_destroy(&s);
    lz_schema_destroy(NULL);
    lz_value_destroy(&v);
}

// Bytes are no JSON type: they fail every "type" but pass schemas that do
// not ask for one, and equal only the same bytes.
LZ_TEST(bytes_values) {
    lz_value_t *b = lz_value_bytes("\x01\x02", 2);
    lz_schema_t *s = compile("{\"type\":\"string\"}");
    LZ_CHECK_INT(lz_schema_validate(s, b), LZ_EVALIDATION);
    LZ_CHECK_STR(lz_last_error(), "$: expected string, got bytes");
    lz_schema_destroy(&s);
    s = compile("{\"type\":[\"null\",\"boolean\",\"integer\",\"number\",\"string\",\"array\",\"object\"]}");
    LZ_CHECK_INT(lz_schema_validate(s, b), LZ_EVALIDATION);
    lz_schema_destroy(&s);
    s = compile("{\"minLength\":5,\"pattern\":\"x\",\"minimum\":3}");
    LZ_CHECK_INT(lz_schema_validate(s, b), LZ_OK);
    lz_schema_destroy(&s);
    // bytes against a const string holding the same bytes: not equal.
    s = compile("{\"const\":\"\\u0001\\u0002\"}");
    LZ_CHECK_INT(lz_schema_validate(s, b), LZ_EVALIDATION);
    lz_value_t *str = lz_value_stringn("\x01\x02", 2);
    LZ_CHECK_INT(lz_schema_validate(s, str), LZ_OK);
    lz_value_destroy(&str);
    lz_schema_destroy(&s);
    lz_value_destroy(&b);
}

// Integers are compared exactly, also against doubles; 1.0 is an integer.
LZ_TEST(numbers_are_exact) {
    failure("{\"maximum\":9007199254740992}", "9007199254740993", LZ_EVALIDATION,
            "$: 9007199254740993 is greater than the maximum 9007199254740992");
    failure("{\"maximum\":9007199254740992.0}", "9007199254740993", LZ_EVALIDATION,
            "$: 9007199254740993 is greater than the maximum 9007199254740992");
    valid("{\"type\":\"integer\",\"const\":1}", "1.0");
    valid("{\"enum\":[[1,{\"a\":2}]]}", "[1.0,{\"a\":2.0}]");
    valid("{\"multipleOf\":2.0}", "4611686018427387906");
    failure("{\"multipleOf\":2}", "4611686018427387907", LZ_EVALIDATION,
            "$: 4611686018427387907 is not a multiple of 2");
    valid("{\"multipleOf\":0.01}", "19.99");
    failure("{\"type\":\"integer\"}", "1.5", LZ_EVALIDATION, "$: expected integer, got number");
}

// The value handed to lz_schema_new is not kept: destroyed right after,
// the schema still holds its names, patterns and constants.
LZ_TEST(schema_value_not_kept) {
    const char *json = "{\"properties\":{\"k\":{\"const\":[1]},\"s\":{\"pattern\":\"^a\"}},\"required\":[\"k\"]}";
    lz_value_t *doc = lz_value_from_json(json, strlen(json));
    LZ_CHECK(doc != NULL);
    lz_schema_t *s = lz_schema_new(doc);
    LZ_CHECK(s != NULL);
    lz_value_destroy(&doc);
    lz_value_t *v = lz_value_from_json("{\"k\":[1],\"s\":\"ab\"}", 18);
    LZ_CHECK_INT(lz_schema_validate(s, v), LZ_OK);
    lz_value_destroy(&v);
    v = lz_value_from_json("{\"k\":[2]}", 9);
    LZ_CHECK_INT(lz_schema_validate(s, v), LZ_EVALIDATION);
    LZ_CHECK_STR(lz_last_error(), "$.k: [2] is not the constant [1]");
    lz_value_destroy(&v);
    lz_schema_destroy(&s);
}

typedef struct worker {
    const lz_schema_t *schema;
    int mismatches;
} worker_t;

static void *validate_many(void *arg) {
    worker_t *w = arg;
    const char *good = "{\"id\":\"ab12\",\"tags\":[\"x\",\"y\"],\"n\":3}";
    const char *bad = "{\"id\":\"ab12\",\"tags\":[\"x\",7],\"n\":3}";
    lz_value_t *g = lz_value_from_json(good, strlen(good)), *b = lz_value_from_json(bad, strlen(bad));
    for (int i = 0; i < 2000; i++) {
        if (lz_schema_validate(w->schema, g) != LZ_OK) w->mismatches++;
        if (lz_schema_validate(w->schema, b) != LZ_EVALIDATION ||
            strcmp(lz_last_error(), "$.tags[1]: expected string, got integer") != 0)
            w->mismatches++;
    }
    lz_value_destroy(&g);
    lz_value_destroy(&b);
    return NULL;
}

LZ_TEST(four_threads_share_a_schema) {
    lz_schema_t *s = compile("{\"type\":\"object\",\"required\":[\"id\"],\"properties\":{\"id\":{\"pattern\":"
                             "\"^[a-z]+[0-9]*$\"},\"tags\":{\"type\":\"array\",\"items\":{\"type\":\"string\"}},"
                             "\"n\":{\"oneOf\":[{\"multipleOf\":3},{\"multipleOf\":5}]}}}");
    worker_t workers[4];
    pthread_t threads[4];
    for (int i = 0; i < 4; i++) {
        workers[i] = (worker_t){s, 0};
        LZ_CHECK_INT(pthread_create(&threads[i], NULL, validate_many, &workers[i]), 0);
    }
    for (int i = 0; i < 4; i++) {
        pthread_join(threads[i], NULL);
        LZ_CHECK_INT(workers[i].mismatches, 0);
    }
    lz_schema_destroy(&s);
}

LZ_TEST_MAIN(LZ_CASE(suite_draft7), LZ_CASE(suite_draft6), LZ_CASE(suite_draft2020_12), LZ_CASE(error_messages),
             LZ_CASE(path_keys_are_escaped), LZ_CASE(long_details_cut_between_characters),
             LZ_CASE(valid_data_leaves_the_error_alone), LZ_CASE(malformed_schemas),
             LZ_CASE(malformed_keywords_are_named), LZ_CASE(schema_nesting_is_bounded),
             LZ_CASE(long_pointers_leave_room_for_the_reason), LZ_CASE(refs_with_escapes),
             LZ_CASE(ref_siblings_by_draft), LZ_CASE(recursion_is_bounded), LZ_CASE(exponential_branches_give_up),
             LZ_CASE(long_strings_match_patterns),
             LZ_CASE(backtracking_gives_up_early), LZ_CASE(unique_items_of_large_arrays), LZ_CASE(null_arguments),
             LZ_CASE(bytes_values), LZ_CASE(numbers_are_exact), LZ_CASE(schema_value_not_kept),
             LZ_CASE(four_threads_share_a_schema))

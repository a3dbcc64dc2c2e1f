/* Errors: every code has a name and a text, unknown codes are labelled as
 * such, the detail message is per thread and never cut inside a UTF-8
 * character, and libzmq errno values map to the documented lz_error_t
 * codes. */
#include "lz_test.h"

#include <limits.h>
#include <pthread.h>
#include <zmq.h>

#include "core/error.h"
#include "serial/utf8.h"

LZ_TEST(test_every_code_has_name_and_text) {
    for (int code = LZ_OK; code >= LZ_EBUSY; code--) {
        const char *name = lz_error_name(code), *text = lz_strerror(code);
        LZ_CHECK(strncmp(name, "LZ_", 3) == 0);
        LZ_CHECK(strcmp(name, "LZ_EUNKNOWN") != 0);
        LZ_CHECK(strcmp(text, "unknown error") != 0 && text[0] != '\0');
        for (int other = code - 1; other >= LZ_EBUSY; other--) { // names are distinct
            LZ_CHECK(strcmp(name, lz_error_name(other)) != 0);
            LZ_CHECK(strcmp(text, lz_strerror(other)) != 0);
        }
    }
    LZ_CHECK_STR(lz_error_name(LZ_OK), "LZ_OK");
    LZ_CHECK_STR(lz_error_name(LZ_ETIMEOUT), "LZ_ETIMEOUT");
    LZ_CHECK_STR(lz_error_name(LZ_ECONFIG), "LZ_ECONFIG");
    LZ_CHECK_STR(lz_strerror(LZ_ETIMEOUT), "timed out");
}

LZ_TEST(test_unknown_codes) {
    static const int unknown[] = {1, 5, LZ_EBUSY - 1, -99, INT_MIN, INT_MAX};
    for (size_t i = 0; i < sizeof unknown / sizeof unknown[0]; i++) {
        LZ_CHECK_STR(lz_error_name(unknown[i]), "LZ_EUNKNOWN");
        LZ_CHECK_STR(lz_strerror(unknown[i]), "unknown error");
    }
}

LZ_TEST(test_fail_records_code_and_detail) {
    LZ_CHECK_INT(lz__fail(LZ_ETIMEOUT, "req: no reply from %s after %d ms", "tcp://x:1", 250),
                 LZ_ETIMEOUT);
    LZ_CHECK_INT(lz_last_error_code(), LZ_ETIMEOUT);
    LZ_CHECK_STR(lz_last_error(), "req: no reply from tcp://x:1 after 250 ms");
    LZ_CHECK(lz__fail_null(LZ_ENOMEM, "out of %s", "memory") == NULL);
    LZ_CHECK_INT(lz_last_error_code(), LZ_ENOMEM);
    LZ_CHECK_STR(lz_last_error(), "out of memory");

    // An over-long detail is cut, never overflowed.
    char big[4096];
    memset(big, 'x', sizeof big - 1);
    big[sizeof big - 1] = '\0';
    lz__fail(LZ_EINVAL, "%s", big);
    size_t len = strlen(lz_last_error());
    LZ_CHECK(len > 100 && len < sizeof big - 1);
}

// Callers add context to the failure below them by passing its detail back in.
LZ_TEST(test_fail_can_wrap_the_previous_detail) {
    lz__fail(LZ_ENOTFOUND, "unknown serializer '%s' (known: %s)", "bogus", "raw, json, msgpack");
    lz__fail(LZ_ECONFIG, "%s: serialization.default: %s", "sub", lz_last_error());
    LZ_CHECK_INT(lz_last_error_code(), LZ_ECONFIG);
    LZ_CHECK_STR(lz_last_error(), "sub: serialization.default: unknown serializer 'bogus' (known: raw, json, msgpack)");
}

typedef struct {
    pthread_barrier_t *barrier;
    int code;
    char expected[64];
    int initial_code;
    char initial[64];
    int final_code;
    char final_detail[64];
} thread_case_t;

static void *fail_in_thread(void *arg) {
    thread_case_t *tc = arg;
    tc->initial_code = lz_last_error_code();
    snprintf(tc->initial, sizeof tc->initial, "%s", lz_last_error());
    lz__fail(tc->code, "%s", tc->expected);
    pthread_barrier_wait(tc->barrier); // both have failed before either reads back
    tc->final_code = lz_last_error_code();
    snprintf(tc->final_detail, sizeof tc->final_detail, "%s", lz_last_error());
    return NULL;
}

LZ_TEST(test_detail_is_per_thread) {
    lz__fail(LZ_ESTATE, "main thread detail");
    pthread_barrier_t barrier;
    pthread_barrier_init(&barrier, NULL, 2);
    thread_case_t cases[2] = {
        {.barrier = &barrier, .code = LZ_ECONNECTION, .expected = "thread one: connect refused"},
        {.barrier = &barrier, .code = LZ_EPROTOCOL, .expected = "thread two: bad frame"},
    };
    pthread_t threads[2];
    for (int i = 0; i < 2; i++) pthread_create(&threads[i], NULL, fail_in_thread, &cases[i]);
    for (int i = 0; i < 2; i++) pthread_join(threads[i], NULL);
    pthread_barrier_destroy(&barrier);
    for (int i = 0; i < 2; i++) {
        LZ_CHECK_INT(cases[i].initial_code, LZ_OK); // a new thread starts clean
        LZ_CHECK_STR(cases[i].initial, "");
        LZ_CHECK_INT(cases[i].final_code, cases[i].code);
        LZ_CHECK_STR(cases[i].final_detail, cases[i].expected);
    }
    LZ_CHECK_INT(lz_last_error_code(), LZ_ESTATE);
    LZ_CHECK_STR(lz_last_error(), "main thread detail");
}

LZ_TEST(test_zmq_errno_mapping) {
    static const struct { int err, code; } map[] = {
        {EAGAIN, LZ_EAGAIN},         {ETERM, LZ_ECLOSED},         {ENOTSOCK, LZ_ECLOSED},
        {EHOSTUNREACH, LZ_EUNREACHABLE}, {EINVAL, LZ_EINVAL},     {EPROTONOSUPPORT, LZ_EINVAL},
        {ENOCOMPATPROTO, LZ_EINVAL}, {ENOMEM, LZ_ENOMEM},         {EADDRINUSE, LZ_ECONNECTION},
        {EADDRNOTAVAIL, LZ_ECONNECTION}, {ECONNREFUSED, LZ_ECONNECTION},
        {EMSGSIZE, LZ_EVALIDATION},  {EINTR, LZ_EIO},             {EFSM, LZ_EZMQ},
        {12345, LZ_EZMQ},
    };
    for (size_t i = 0; i < sizeof map / sizeof map[0]; i++)
        LZ_CHECK_INT(lz__zmq_error_code(map[i].err), map[i].code);
}

LZ_TEST(test_fail_zmq_from_real_errors) {
    void *ctx = zmq_ctx_new();
    LZ_CHECK(zmq_socket(ctx, 9999) == NULL); // not a socket type: EINVAL
    LZ_CHECK_INT(lz__fail_zmq("socket"), LZ_EINVAL);
    char expected[128];
    snprintf(expected, sizeof expected, "socket: %s", zmq_strerror(EINVAL));
    LZ_CHECK_STR(lz_last_error(), expected);
    LZ_CHECK_INT(lz_last_error_code(), LZ_EINVAL);

    void *pull = lz_test_plain_socket(ctx, ZMQ_PULL, -1, NULL);
    char buf[8];
    LZ_CHECK_INT(zmq_recv(pull, buf, sizeof buf, ZMQ_DONTWAIT), -1);
    LZ_CHECK_INT(lz__fail_zmq("recv"), LZ_EAGAIN);
    LZ_CHECK(strncmp(lz_last_error(), "recv: ", 6) == 0);

    char endpoint[64];
    lz_test_inproc_endpoint(endpoint, sizeof endpoint);
    LZ_CHECK_INT(zmq_bind(pull, endpoint), 0);
    void *other = lz_test_plain_socket(ctx, ZMQ_PULL, -1, NULL);
    LZ_CHECK_INT(zmq_bind(other, endpoint), -1); // the name is taken
    LZ_CHECK_INT(lz__fail_zmq("bind"), LZ_ECONNECTION);
    LZ_CHECK(strstr(lz_last_error(), "bind: ") == lz_last_error());

    LZ_CHECK_INT(zmq_bind(other, "bogus://nowhere"), -1);
    LZ_CHECK_INT(lz__fail_zmq("bind"), LZ_EINVAL);
    zmq_close(other);
    zmq_close(pull);
    zmq_ctx_term(ctx);
}

// A detail too long for the buffer ends before the character that does
// not fit whole: it goes into JSON error replies, whose writer refuses half
// a character.
LZ_TEST(test_long_detail_is_cut_between_characters) {
    char text[1024] = "";
    for (int i = 0; i < 300; i++) strcat(text, "\xc3\xa9"); // 600 bytes: 511 would end inside the 256th
    LZ_CHECK_INT(lz_set_error(LZ_EINVAL, "%s", text), LZ_EINVAL);
    LZ_CHECK_INT((int)strlen(lz_last_error()), 510);
    LZ_CHECK(lz__utf8_valid(lz_last_error(), strlen(lz_last_error())));
    LZ_CHECK_INT(lz_set_error(LZ_EINVAL, "a%s", text), LZ_EINVAL); // just fits: nothing more cut
    LZ_CHECK_INT((int)strlen(lz_last_error()), 511);

    // The helper under it, for 2-, 3- and 4-byte characters and bytes that are no UTF-8.
    static const struct {
        const char *text;
        size_t size, len;
    } cases[] = {
        {"ab\xc3\xa9", 5, 4},         {"ab\xc3\xa9", 4, 2},       {"\xe2\x82\xac!", 3, 0},
        {"\xe2\x82\xac!", 4, 3},     {"x\xf0\x9f\x92\xa9", 5, 1}, {"x\xf0\x9f\x92\xa9", 6, 5},
        {"\x80\x80\x80\x80", 4, 3}, {"abc", 3, 2},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char out[8];
        LZ_CHECK_INT((int)lz__format(out, cases[i].size, "%s", cases[i].text), (int)cases[i].len);
        LZ_CHECK_INT((int)strlen(out), (int)cases[i].len);
    }
}

LZ_TEST_MAIN(LZ_CASE(test_every_code_has_name_and_text), LZ_CASE(test_unknown_codes),
             LZ_CASE(test_fail_records_code_and_detail),
             LZ_CASE(test_fail_can_wrap_the_previous_detail), LZ_CASE(test_detail_is_per_thread),
             LZ_CASE(test_zmq_errno_mapping), LZ_CASE(test_fail_zmq_from_real_errors),
             LZ_CASE(test_long_detail_is_cut_between_characters))

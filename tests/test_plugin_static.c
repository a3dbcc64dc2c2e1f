/* Plugins in a program linked with the static liberzmq (as every test but
 * test_plugin is): a plugin linked with the shared library would bring a
 * second copy of it, whose functions know nothing of this program's
 * contexts; loading refuses it in words (docs/plugins.md). */
#include "lz_test.h"

LZ_TEST(a_second_liberzmq_is_refused) {
    lz_context_t *ctx = LZ_TEST_CONTEXT("zmq.linger=0");
    LZ_CHECK_INT(lz_context_load_plugin(ctx, LZ_PLUGIN_ROT13), LZ_ECONFIG);
    const char *want = "plugin " LZ_PLUGIN_ROT13 ": it links ";
    LZ_CHECK(strncmp(lz_last_error(), want, strlen(want)) == 0);
    LZ_CHECK(strstr(lz_last_error(), "liberzmq.so") != NULL);
    LZ_CHECK(strstr(lz_last_error(), ", a second copy of liberzmq beside this program's own: link the program "
                                     "with the shared liberzmq (docs/plugins.md)") != NULL);
    LZ_CHECK_INT(lz_context_plugins(ctx, NULL, 0), 0);
    LZ_CHECK(lz_serializer_find(ctx, "json+rot13") == NULL);
    lz_context_destroy(&ctx);
}

LZ_TEST_MAIN(LZ_CASE(a_second_liberzmq_is_refused))

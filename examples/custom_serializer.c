/* Custom serializer: register "json+zstd" (JSON compressed with zstd, see
 * zstd_json.h) on a context, then use it by name on a publisher and a
 * subscriber talking over inproc. Any codec registered this way works
 * everywhere a serializer is named: lz_node_set_serializer, the
 * serialization.default config key, the lz tool. */
#include <stdio.h>
#include <stdlib.h>

#include "liberzmq.h"
#include "zstd_json.h"

static int fail(const char *what) {
    fprintf(stderr, "%s: %s (%s)\n", what, lz_error_name(lz_last_error_code()), lz_last_error());
    return 1;
}

// publish_until_received repeats the message until the subscriber sees one:
// a subscription takes a moment to reach the publisher, and pub/sub drops
// whatever is published before that (the "slow joiner").
static lz_message_t *publish_until_received(lz_pub_t *pub, lz_sub_t *sub, const lz_value_t *tick) {
    for (int attempt = 0; attempt < 50; attempt++) {
        if (lz_pub_publish(pub, "prices.BTC", tick) < 0) return NULL;
        lz_message_t *msg = lz_sub_recv(sub, 100);
        if (msg) return msg;
    }
    return NULL;
}

int main(void) {
    lz_context_t *ctx = lz_context_new(NULL);
    if (!ctx) return fail("context");

    // 1. Register the codec. The context owns the state from now on and
    //    frees it with zstd_json_destroy when it is destroyed.
    if (lz_serializer_register(ctx, &zstd_json_ops, zstd_json_new(3)) < 0) return fail("register");

    // 2. Choose it by name on both ends.
    lz_pub_t *pub = lz_pub_new(ctx, "@inproc://prices");
    lz_sub_t *sub = lz_sub_new(ctx, ">inproc://prices");
    if (!pub || !sub) return fail("nodes");
    if (lz_node_set_serializer(lz_pub_node(pub), "json+zstd") < 0 ||
        lz_node_set_serializer(lz_sub_node(sub), "json+zstd") < 0 || lz_sub_subscribe(sub, "prices.") < 0)
        return fail("setup");

    // 3. Publish a value; the subscriber receives it decoded.
    lz_value_t *tick = lz_value_object();
    lz_value_object_set_string(tick, "symbol", "BTC");
    lz_value_object_set_double(tick, "price", 43210.5);
    lz_value_object_set_int(tick, "seq", 1);
    lz_message_t *msg = publish_until_received(pub, sub, tick);
    int rc = 0;
    if (msg) {
        size_t wire = 0;
        lz_message_payload(msg, &wire);
        char *json = lz_value_to_json(lz_message_value(msg));
        printf("%s: %s (%zu bytes on the wire, serializer %s)\n", lz_message_topic(msg), json ? json : "?",
               wire, lz_node_serializer_name(lz_sub_node(sub)));
        free(json);
        lz_message_destroy(&msg);
    } else {
        rc = fail("receive");
    }

    lz_value_destroy(&tick);
    lz_sub_destroy(&sub);
    lz_pub_destroy(&pub);
    lz_context_destroy(&ctx);
    return rc;
}

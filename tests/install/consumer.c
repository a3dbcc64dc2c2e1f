/* Links against an installed liberzmq and makes one round trip. */
#include <liberzmq.h>
#include <stdio.h>
#include <string.h>

int main(void) {
    lz_context_t *ctx = lz_context_new(NULL);
    lz_pull_t *pull = lz_pull_new(ctx, "@inproc://consumer");
    lz_push_t *push = lz_push_new(ctx, ">inproc://consumer");
    int ok = ctx && pull && push && lz_node_set_serializer(lz_pull_node(pull), "raw") == 0 &&
             lz_push_send_bytes(push, "hi", 2) == 0;
    lz_message_t *msg = ok ? lz_pull_recv(pull, 2000) : NULL;
    ok = msg && strcmp(lz_version(), LZ_VERSION_STRING) == 0;
    printf("consumer: %s (liberzmq %s)\n", ok ? "ok" : lz_last_error(), lz_version());
    lz_message_destroy(&msg);
    lz_push_destroy(&push);
    lz_pull_destroy(&pull);
    lz_context_destroy(&ctx);
    return ok ? 0 : 1;
}

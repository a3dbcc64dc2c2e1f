/* For test_config: a program it runs setuid root as another user, which
 * prints whether it runs in secure mode (AT_SECURE) and what liberzmq
 * made of its LIBERZMQ_* environment, on one line:
 *   secure=<0|1> env=<lz_config_load_env's code> io_threads=<n> context=<ok, or the detail>
 * LIBERZMQ_ZMQ__IO_THREADS and LIBERZMQ_CONFIG are what the test sets. */
#include <stdio.h>
#include <sys/auxv.h>

#include "liberzmq.h"

int main(void) {
    lz_config_t *config = lz_config_new();
    int env = config ? lz_config_load_env(config) : LZ_ENOMEM;
    int64_t io_threads = -1;
    lz_config_get_int(config, "zmq.io_threads", &io_threads);
    lz_context_t *ctx = lz_context_new(NULL);
    printf("secure=%d env=%d io_threads=%lld context=%s\n", getauxval(AT_SECURE) != 0, env, (long long)io_threads,
           ctx ? "ok" : lz_last_error());
    lz_context_destroy(&ctx);
    lz_config_destroy(&config);
    return 0;
}

/* Benchmark program for liberzmq: raw bytes by default, JSON values with
 * --codec json. Arguments and output are the harness's (see harness.h). */
#include <string.h>

#include "contenders.h"

int main(int argc, char **argv) {
    const lzb_ops_t *ops = &lzb_liberzmq_ops;
    for (int i = 1; i + 1 < argc; i++)
        if (strcmp(argv[i], "--codec") == 0 && strcmp(argv[i + 1], "json") == 0) ops = &lzb_liberzmq_json_ops;
    return lzb_main(argc, argv, ops);
}

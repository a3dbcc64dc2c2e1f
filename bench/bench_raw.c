/* Benchmark program for raw libzmq, the baseline. Arguments and output are
 * the harness's (see harness.h); scripts/bench.sh runs it next to the
 * other contenders. */
#include "contenders.h"

int main(int argc, char **argv) { return lzb_main(argc, argv, &lzb_raw_ops); }

#!/usr/bin/env bash
# Runs fuzz targets with libFuzzer, one after another, each for SECONDS.
#   fuzz/run.sh BUILD_DIR SECONDS [TARGET...]     (default: every target)
# BUILD_DIR is a build made with CC=clang CXX=clang++ cmake -DLZ_FUZZ=ON
# (fuzz/README.md). New inputs go to $LZ_FUZZ_WORK/<target> (default
# /tmp/lz-fuzz), never into fuzz/corpus: merge them in by hand with
# -merge=1. Failing inputs are written to $LZ_FUZZ_WORK/crashes/<target>-*.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
build="${1:?usage: fuzz/run.sh BUILD_DIR SECONDS [TARGET...]}"
seconds="${2:?usage: fuzz/run.sh BUILD_DIR SECONDS [TARGET...]}"
shift 2
targets=("$@")
[ ${#targets[@]} -gt 0 ] || targets=(json msgpack protobuf pubsub task request reply config schema)
work="${LZ_FUZZ_WORK:-/tmp/lz-fuzz}"
mkdir -p "$work/crashes"
status=0
for target in "${targets[@]}"; do
  mkdir -p "$work/$target"
  echo "== fuzz_$target for ${seconds}s (log: $work/$target.log)"
  # One job, a bounded memory and time per input: the machine is shared.
  "$build/fuzz/fuzz_$target" -max_total_time="$seconds" -rss_limit_mb=2048 -timeout=10 \
    -print_final_stats=1 -artifact_prefix="$work/crashes/$target-" \
    "$work/$target" "$here/corpus/$target" >"$work/$target.log" 2>&1 || status=1
  grep -E "DONE|stat::number_of_executed_units|ERROR|property broken" "$work/$target.log" || true
done
exit $status

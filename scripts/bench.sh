#!/usr/bin/env bash
# Regenerates BENCHMARKS.md: builds the bench programs, runs every contender
# interleaved row by row (LZ_BENCH_REPS repetitions, rotating who goes first),
# keeps every result line in $BUILD/bench-results.jsonl, tagged with its
# repetition, and lets bench/report.py take the medians and write the
# tables. 18-36 minutes on the 2-vCPU VMs it has run on.
set -uo pipefail
cd "$(dirname "$0")/.."

REPS=${LZ_BENCH_REPS:-7}          # repetitions per row and contender
SECS=${LZ_BENCH_SECONDS:-0.3}     # each throughput/latency measurement stops after this
BUILD=${LZ_BENCH_BUILD:-build-bench}
PY=/usr/bin/python3               # the Python with pyzmq (Debian's python3-zmq)
OUT=$BUILD/bench-results.jsonl
B=$BUILD/bench

cmake -S . -B "$BUILD" -DCMAKE_BUILD_TYPE=Release >/dev/null || exit 1
# Only the bench targets: the rest of the tree need not build for a benchmark.
cmake --build "$BUILD" -j2 --target bench_raw bench_liberzmq bench_proxy || exit 1
cmake --build "$BUILD" -j2 --target bench_czmq 2>/dev/null || echo "bench: no CZMQ, skipped"
cmake --build "$BUILD" -j2 --target bench_nng 2>/dev/null || echo "bench: no nng, skipped"

# Each contender: its command, and options that go after the pattern.
declare -A CMD=(
  [raw]="$B/bench_raw"
  [liberzmq]="$B/bench_liberzmq"
  [liberzmq-json]="$B/bench_liberzmq"
  [liberzmq-40]="$B/bench_liberzmq"
  [liberzmq-frame]="$B/bench_liberzmq"
  [czmq]="$B/bench_czmq"
  [nng]="$B/bench_nng"
  [pyzmq]="$PY bench/bench_pyzmq.py"
  [pyzmq-json]="$PY bench/bench_pyzmq.py"
  [python-liberzmq]="$PY bench/bench_pyzmq.py"
  [proxy-liberzmq]="$B/bench_proxy"
  [proxy-raw]="$B/bench_proxy"
)
# liberzmq-40: raw bytes the size of the JSON rows' message, in their row;
# liberzmq-frame: raw bytes the size of the frame liberzmq JSON puts on the
# wire for it (a task envelope, or the pub/sub payload), set per row by
# the JSON rows' loops.
declare -A OPTS=([liberzmq-json]="--codec json" [pyzmq-json]="--codec json" [liberzmq-40]="--size 40"
  [python-liberzmq]="--codec python-liberzmq" [proxy-liberzmq]="--proxy liberzmq" [proxy-raw]="--proxy raw")
available() { [ -x "${CMD[$1]%% *}" ]; }

: >"$OUT"
# row CONTENDERS... -- ARGS: every repetition runs each contender once. The
# first two are the pair the row's main ratio is judged on (liberzmq and
# what it must keep up with): they run back to back, in alternating order,
# so a swing of the VM's speed (2-3x between minutes here) seldom falls
# between them; the pair's place among the others rotates, so drift hits
# every contender alike. Each result line gets "rep", which report.py pairs
# on: a failed run leaves a gap instead of shifting the pairs after it; and
# "as", the contender's name here (liberzmq-40 is a liberzmq run).
row() {
  local names=() args
  while [ "$1" != -- ]; do available "$1" && names+=("$1"); shift; done
  shift
  args="$*"
  echo "bench: $args (${names[*]})" >&2
  for ((rep = 0; rep < REPS; rep++)); do
    local name
    for name in $(rep_order "$rep" "${names[@]}"); do
      timeout 120 ${CMD[$name]} $args ${OPTS[$name]:-} --max-seconds "$SECS" |
        sed "s/^{/{\"rep\":$rep,\"as\":\"$name\",/" >>"$OUT"
      [ "${PIPESTATUS[0]}" -eq 0 ] || echo "bench: $name $args failed" >&2
    done
  done
}

# rep_order REP NAMES...: the order of repetition REP (see row).
rep_order() {
  local rep=$1
  shift
  local pair=("$@") others=()
  if [ $# -gt 2 ]; then
    pair=("$1" "$2")
    others=("${@:3}")
  fi
  if ((rep % 2)) && [ ${#pair[@]} -eq 2 ]; then pair=("${pair[1]}" "${pair[0]}"); fi
  local at=$((rep % (${#others[@]} + 1)))
  echo "${others[@]:0:at}" "${pair[@]}" "${others[@]:at}"
}

# json_frame ARGS...: the bytes of the frame liberzmq JSON sends in a row
# of ARGS, from a short run's "frame_bytes" (what its receiver last took).
json_frame() {
  local frame
  frame=$($B/bench_liberzmq "$@" --codec json --count 1000 --max-seconds 1 | grep -o '"frame_bytes":[0-9]*')
  echo "${frame#*:}"
}

THROUGHPUT=(raw liberzmq czmq nng pyzmq)
for pattern in pushpull pubsub; do
  for transport in tcp ipc inproc; do
    # Over tcp and ipc the two ends are two processes, as two services are
    # (pyzmq's too, which must not share a GIL); inproc is one process.
    where="--transport $transport"
    [ "$transport" = inproc ] || where+=" --processes 2"
    for size in 16 256 4096 65536; do
      row "${THROUGHPUT[@]}" -- $pattern $where --size $size
    done
    # JSON: the seeds' message against pyzmq + json, the Python LiberZMQ's
    # per-message work on pyzmq, and liberzmq raw bytes of its size and of
    # its frame's.
    OPTS[liberzmq-frame]="--size $(json_frame $pattern $where)"
    row liberzmq-json liberzmq-40 pyzmq-json python-liberzmq liberzmq-frame -- $pattern $where
  done
done

# The tcp and ipc rows again with each process on its own CPU (--spread),
# for the judged pairs only: unpinned, one cell's pairs swing between two
# speeds 2x apart; spread, a 16 B cell's ratios mostly span under 0.2
# (see BENCHMARKS.md).
for pattern in pushpull pubsub; do
  for transport in tcp ipc; do
    where="--transport $transport --processes 2 --spread"
    for size in 16 256 4096 65536; do
      row raw liberzmq -- $pattern $where --size $size
    done
    OPTS[liberzmq-frame]="--size $(json_frame $pattern $where)"
    row liberzmq-json liberzmq-40 pyzmq-json liberzmq-frame -- $pattern $where
  done
done

# A forwarder between a raw PUB and a raw SUB (bench/bench_proxy.c): lz_proxy
# against zmq_proxy_steerable, all in one process. Two sizes only: about a
# minute in all.
for transport in tcp ipc inproc; do
  for size in 16 4096; do
    row proxy-liberzmq proxy-raw -- pubsub --transport $transport --size $size
  done
done

LATENCY=(raw liberzmq liberzmq-json czmq nng pyzmq pyzmq-json)
for transport in tcp ipc; do
  for pin in "" --pin; do
    row "${LATENCY[@]}" -- reqrep --transport $transport --size 16 $pin
  done
done

for name in "${LATENCY[@]}"; do
  row "$name" -- memory --transport tcp --size 256
done

# The machine and library versions, for the report.
MACHINE="nproc=$(nproc); cpu=$(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //')"
MACHINE+="; kernel=$(uname -r); os=$(. /etc/os-release && echo "$PRETTY_NAME")"
MACHINE+="; python=$($PY -c 'import platform; print(platform.python_version())')"
MACHINE+="; date=$(date -u +%Y-%m-%dT%H:%MZ); reps=$REPS; seconds=$SECS"
echo "$MACHINE" >"$BUILD/bench-machine.txt"  # report.py can be rerun on the same results
$PY bench/report.py "$OUT" "$MACHINE" >BENCHMARKS.md && echo "bench: wrote BENCHMARKS.md" >&2

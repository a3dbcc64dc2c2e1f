#!/usr/bin/env bash
# Runs every example as docs/examples.md shows it, on ipc endpoints in a
# temporary directory (so ctest may run this beside anything), and checks
# the lines the document promises. Each program is bounded by `timeout`;
# a long-running one is stopped with SIGINT, as Ctrl-C, and must exit 0.
# Args: EXAMPLES_DIR (the build's examples/).
set -euo pipefail
bin=$1
dir=$(mktemp -d /tmp/lzexamples.XXXXXX)
pids=()
cleanup() {
    for pid in "${pids[@]}"; do kill -KILL "$pid" 2>/dev/null || true; done
    rm -rf "$dir"
}
trap cleanup EXIT
passed=0

fail() {
    echo "FAIL $*" >&2
    for log in "$dir"/*.log; do echo "--- $log" >&2; cat "$log" >&2; done
    exit 1
}

# expect LOG TEXT: the program's output holds TEXT (a fixed string).
expect() { grep -qF -- "$2" "$dir/$1.log" || fail "$1: no line with '$2'"; }

# run NAME ARGS...: runs an example to its end, within 60 s, status 0.
run() {
    local name=$1
    shift
    timeout 60 "$bin/$name" "$@" >"$dir/$name.log" 2>&1 || fail "$name $*: exit status $?"
}

# start LOG NAME ARGS...: runs an example in the background; its pid is
# in $started. --foreground: timeout passes our SIGINT to the program alone.
# Without it timeout also sends it to its process group, so the program gets
# a second one while it exits, and so may LeakSanitizer's helper process at
# exit, which then never reports back: under load, a hang of 30 s and more.
start() {
    local log=$1 name=$2
    shift 2
    timeout --foreground 60 "$bin/$name" "$@" >"$dir/$log.log" 2>&1 &
    started=$!
    pids+=("$started")
}

# stop PID LOG: Ctrl-C, then the program must end with status 0. One that
# ended before (a sanitizer's report ends it with its own status) fails
# with its status and every log, instead of a bare error from kill.
stop() {
    if ! kill -INT "$1" 2>/dev/null; then
        local status=0
        wait "$1" || status=$?
        fail "$2: had already ended, status $status, before its SIGINT"
    fi
    wait "$1" || fail "$2: exit status $? after SIGINT"
}

# wait_for LOG TEXT: until a background program has printed TEXT (20 s).
wait_for() {
    for _ in $(seq 200); do
        grep -qF -- "$2" "$dir/$1.log" 2>/dev/null && return 0
        sleep 0.1
    done
    fail "$1: never printed '$2'"
}

ok() {
    echo "ok   $1"
    passed=$((passed + 1))
}

run demo
expect demo "alice    -> the server sees key"
expect demo "refused, nothing reached the server"
expect demo "server price    span"
expect demo "thumbnail of busy-dog.png made on attempt 2"
expect demo '"final_error":"handler for '"'"'thumbnail'"'"' failed: corrupt-bird.png: corrupt PNG header","retry_count":3'
expect demo "refused: $.amount: -3 is not greater than the exclusive minimum 0"
expect demo "worker-b  acquire -> busy: held by another owner (worker-a holds it)"
expect demo "every check passed"
ok demo

run async_dealer_router
expect async_dealer_router "dealer: 9 squared is 81"
expect async_dealer_router "push to nobody:   peer unreachable"
ok async_dealer_router

run distributed_lock "ipc://$dir/lock"
expect distributed_lock "B try_acquire: LZ_EBUSY"
expect distributed_lock "B holds the lock after A's lease ended"
expect distributed_lock "store refused A's write"
expect distributed_lock "A renew: LZ_ESTATE"
expect distributed_lock "store holds: B's report"
ok distributed_lock

run custom_serializer
expect custom_serializer "serializer json+zstd"
ok custom_serializer

run broker
expect broker "answered by server A"
expect broker "answered by server B"
ok broker

start weather_publisher weather_publisher "ipc://$dir/weather" 0 10
publisher=$started
run weather_subscriber "ipc://$dir/weather" 5 weather.beijing
expect weather_subscriber "average temperature over 5 readings"
grep -q "Shanghai" "$dir/weather_subscriber.log" && fail "weather_subscriber: got Shanghai, subscribed to Beijing only"
stop "$publisher" weather_publisher
ok "weather_publisher, weather_subscriber"

start calculator_server calculator_server "ipc://$dir/calc"
server=$started
wait_for calculator_server "calculator serving on"
run calculator_client "ipc://$dir/calc"
expect calculator_client "add(2, 3) = 5"
expect calculator_client "division by zero (LZ_EVALIDATION)"
expect calculator_client "unknown action 'modulo' (LZ_ENOTFOUND)"
stop "$server" calculator_server
ok "calculator_server, calculator_client"

start tasksink tasksink "ipc://$dir/sink" 20
sink=$started
start taskworker1 taskworker "ipc://$dir/tasks" "ipc://$dir/sink" 2
worker1=$started
start taskworker2 taskworker "ipc://$dir/tasks" "ipc://$dir/sink" 1
worker2=$started
# The pipe's newline is the "Enter" taskvent waits for, once the workers
# have had a second to connect.
(sleep 1; echo) | timeout 60 "$bin/taskvent" "ipc://$dir/tasks" "ipc://$dir/sink" 20 >"$dir/taskvent.log" 2>&1 ||
    fail "taskvent: exit status $?"
wait "$sink" || fail "tasksink: exit status $?"
expect tasksink "Total elapsed time"
stop "$worker1" taskworker1
stop "$worker2" taskworker2
ok "taskvent, taskworker, tasksink"

# The sample plugins, loaded into lz (the build's, beside examples/).
lz=$bin/../lz
timeout 60 "$lz" sub --bind "ipc://$dir/rot13" --count 1 --timeout 10 --plugin "$bin/plugins/rot13.so" \
    --format json+rot13 >"$dir/rot13_sub.log" 2>&1 &
sub=$!
pids+=("$sub")
for _ in $(seq 200); do [ -S "$dir/rot13" ] && break; sleep 0.1; done
echo '{"secret": "attack at dawn"}' | timeout 60 "$lz" pub --connect "ipc://$dir/rot13" --settle 300 --topic t \
    --plugin "$bin/plugins/rot13.so" --format json+rot13 >"$dir/rot13_pub.log" 2>&1 || fail "rot13 pub: exit status $?"
wait "$sub" || fail "rot13 sub: exit status $?"
expect rot13_sub '{"topic":"t","data":{"secret":"attack at dawn"}}'
echo '{"n": 1}' | timeout 60 "$lz" pub --bind "ipc://$dir/audit" --topic internal.keys \
    --plugin "$bin/plugins/audit.so" >"$dir/audit.log" 2>&1 && fail "audit: a denied topic was published"
expect audit "lz pub: line 1: pub: 'internal.keys' refused: audit: keys under 'internal.' stay inside"
ok "plugins rot13, audit"

echo "$passed passed, 0 failed"

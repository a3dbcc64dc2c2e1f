#!/usr/bin/env bash
# Installs the build into a temporary prefix, then builds consumer.c against it
# twice: with find_package(liberzmq) and with pkg-config. Args: BUILD_DIR SOURCE_DIR
set -euo pipefail
build=$1 src=$2
prefix=$(mktemp -d /tmp/lzinstall.XXXXXX)
trap 'rm -rf "$prefix"' EXIT
cmake --install "$build" --prefix "$prefix" >/dev/null
test -x "$prefix/bin/lz"
cmake -S "$src" -B "$prefix/consumer" -DCMAKE_PREFIX_PATH="$prefix" >/dev/null
cmake --build "$prefix/consumer" >/dev/null
LD_LIBRARY_PATH="$prefix/lib:$prefix/lib64" "$prefix/consumer/consumer"
libdir=$(dirname "$(find "$prefix" -name liberzmq.pc | head -1)")
PKG_CONFIG_PATH="$libdir" cc -std=c11 "$src/consumer.c" -o "$prefix/consumer-pc" \
    $(PKG_CONFIG_PATH="$libdir" pkg-config --cflags --libs liberzmq)
LD_LIBRARY_PATH="$prefix/lib:$prefix/lib64" "$prefix/consumer-pc"
echo "1 passed, 0 failed"

#!/usr/bin/env bash
# Installs the Debian packages liberzmq needs to build, test, demo and benchmark.
# Idempotent: only asks apt-get for what is missing, so a ready machine pays nothing.
set -euo pipefail

packages=(
  build-essential cmake pkg-config
  libzmq3-dev          # the engine
  libsimdjson-dev g++  # JSON reading (simdjson, C++; see README "Choices")
  libyajl-dev          # JSON: precise error positions for rejected input
  libfmt-dev           # JSON: shortest round-trip doubles ({fmt})
  libmsgpack-dev       # MessagePack (msgpack-c)
  libyaml-dev          # YAML configuration files
  libmicrohttpd-dev    # the Prometheus exporter's HTTP server (and test_otlp's collector)
  libcurl4-openssl-dev # the OTLP span exporter's HTTP client
  libprotobuf-c-dev    # the Protocol Buffers serializer (protobuf-c)
  protobuf-c-compiler  # protoc-c: the tests' and example's .proto files
  protobuf-compiler python3-protobuf  # protoc --python_out: protobuf interop tests
  libpcre2-dev         # JSON Schema patterns (PCRE2), src/serial/schema*.c
  libcrypt-dev         # PLAIN users files: crypt_r (libxcrypt), src/core/security.c
  json-schema-test-suite  # the official JSON Schema test suite: tests/test_schema.c
  libzstd-dev          # the compressed-JSON example serializer
  python3-zmq          # interop tests with /usr/bin/python3
  krb5-kdc krb5-admin-server  # test_gssapi's throwaway Kerberos realm (krb5kdc, kdb5_util, kadmin.local)
  clang libclang-rt-14-dev    # the fuzz build: clang, libFuzzer and its sanitizers (fuzz/README.md)
  valgrind             # make test's memcheck pass (tests/CMakeLists.txt)
)
if [ "${LZ_BENCH_DEPS:-0}" = 1 ]; then
  packages+=(libczmq-dev libnng-dev)   # peers measured by bench/
fi

missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
[ ${#missing[@]} -eq 0 ] && exit 0

echo "install-deps: installing ${missing[*]}"
if [ "$(id -u)" -ne 0 ]; then SUDO=sudo; else SUDO=; fi
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"

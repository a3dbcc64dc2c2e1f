# The two commands of the README, plus their parts. Each installs missing
# Debian packages first (scripts/install-deps.sh), then builds with CMake.
JOBS ?= 2
BUILD := build
ASAN_BUILD := build-asan
TSAN_BUILD := build-tsan
FUZZ_BUILD := build-fuzz
CLANG_BUILD := build-clang
CMAKE_FLAGS ?=
# CMake's own makefiles say what they build; the directory lines between would only bury it.
MAKEFLAGS += --no-print-directory

.PHONY: all deps build build-asan build-tsan build-fuzz build-clang test test-asan test-tsan test-fuzz test-clang \
  test-valgrind demo bench install clean

all: build

deps:
	@bash scripts/install-deps.sh

# Its tests are also defined under valgrind (label valgrind, a pass of its own).
build: deps
	@cmake -S . -B $(BUILD) -DCMAKE_BUILD_TYPE=RelWithDebInfo -DLZ_VALGRIND_TESTS=ON $(CMAKE_FLAGS) >/dev/null
	@cmake --build $(BUILD) -j$(JOBS)

build-asan: deps
	@cmake -S . -B $(ASAN_BUILD) -DCMAKE_BUILD_TYPE=Debug -DLZ_SANITIZE=ON -DLZ_BUILD_BENCH=OFF $(CMAKE_FLAGS) >/dev/null
	@cmake --build $(ASAN_BUILD) -j$(JOBS)

# ThreadSanitizer at -O1, its suggested level (-O0 only makes it slower).
build-tsan: deps
	@cmake -S . -B $(TSAN_BUILD) -DCMAKE_BUILD_TYPE=Debug -DCMAKE_C_FLAGS_DEBUG="-g -O1" \
	  -DCMAKE_CXX_FLAGS_DEBUG="-g -O1" -DLZ_TSAN=ON -DLZ_BUILD_BENCH=OFF $(CMAKE_FLAGS) >/dev/null
	@cmake --build $(TSAN_BUILD) -j$(JOBS)

# The fuzz targets built as fuzz/README.md says, with clang and libFuzzer
# (ASan, UBSan and coverage).
build-fuzz: deps
	@CC=clang CXX=clang++ cmake -S . -B $(FUZZ_BUILD) -DLZ_FUZZ=ON -DLZ_BUILD_TESTS=OFF -DLZ_BUILD_EXAMPLES=OFF \
	  -DLZ_BUILD_BENCH=OFF $(CMAKE_FLAGS) >/dev/null
	@cmake --build $(FUZZ_BUILD) --target fuzz_targets -j$(JOBS)

# Every program compiled by clang as well, optimised as the normal build:
# -Werror makes clang's own warnings errors too, and the tests then run on
# the other compiler's code (its inlining and its reading of undefined
# behaviour differ from gcc's).
build-clang: deps
	@CC=clang CXX=clang++ cmake -S . -B $(CLANG_BUILD) -DCMAKE_BUILD_TYPE=RelWithDebInfo -DLZ_BUILD_BENCH=OFF \
	  $(CMAKE_FLAGS) >/dev/null
	@cmake --build $(CLANG_BUILD) -j$(JOBS)

# The tests run five times: on the normal build, under ASan+UBSan, under
# ThreadSanitizer, on the clang build, and the normal build's under
# valgrind's memcheck; then each libFuzzer target replays its corpus. All
# six runs always happen; the target fails if any did.
test: build build-asan build-tsan build-fuzz build-clang
	@status=0; \
	ctest --test-dir $(BUILD) -LE valgrind --output-on-failure -j$(JOBS) --timeout 180 || status=1; \
	ctest --test-dir $(ASAN_BUILD) --output-on-failure -j$(JOBS) --timeout 300 || status=1; \
	ctest --test-dir $(TSAN_BUILD) --output-on-failure -j$(JOBS) --timeout 300 || status=1; \
	ctest --test-dir $(CLANG_BUILD) --output-on-failure -j$(JOBS) --timeout 180 || status=1; \
	ctest --test-dir $(BUILD) -L valgrind --output-on-failure -j$(JOBS) || status=1; \
	ctest --test-dir $(FUZZ_BUILD) --output-on-failure -j$(JOBS) --timeout 120 || status=1; \
	exit $$status

test-asan: build-asan
	ctest --test-dir $(ASAN_BUILD) --output-on-failure -j$(JOBS) --timeout 300

test-tsan: build-tsan
	ctest --test-dir $(TSAN_BUILD) --output-on-failure -j$(JOBS) --timeout 300

test-fuzz: build-fuzz
	ctest --test-dir $(FUZZ_BUILD) --output-on-failure -j$(JOBS) --timeout 120

test-clang: build-clang
	ctest --test-dir $(CLANG_BUILD) --output-on-failure -j$(JOBS) --timeout 180

test-valgrind: build
	ctest --test-dir $(BUILD) -L valgrind --output-on-failure -j$(JOBS)

demo: build
	@$(BUILD)/examples/demo

bench:
	@LZ_BENCH_DEPS=1 bash scripts/install-deps.sh
	@bash scripts/bench.sh

install: build
	cmake --install $(BUILD)

clean:
	rm -rf $(BUILD) $(ASAN_BUILD) $(TSAN_BUILD) $(FUZZ_BUILD) $(CLANG_BUILD)

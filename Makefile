# The two commands of the README, plus their parts. Each installs missing
# Debian packages first (scripts/install-deps.sh), then builds with CMake.
JOBS ?= 2
BUILD := build
ASAN_BUILD := build-asan
CMAKE_FLAGS ?=

.PHONY: all deps build build-asan test test-asan demo bench install clean

all: build

deps:
	@bash scripts/install-deps.sh

build: deps
	@cmake -S . -B $(BUILD) -DCMAKE_BUILD_TYPE=RelWithDebInfo $(CMAKE_FLAGS) >/dev/null
	@cmake --build $(BUILD) -j$(JOBS)

build-asan: deps
	@cmake -S . -B $(ASAN_BUILD) -DCMAKE_BUILD_TYPE=Debug -DLZ_SANITIZE=ON -DLZ_BUILD_BENCH=OFF $(CMAKE_FLAGS) >/dev/null
	@cmake --build $(ASAN_BUILD) -j$(JOBS)

# The tests run twice: on the normal build, then under ASan+UBSan.
# Both runs always happen; the target fails if either did.
test: build build-asan
	@status=0; \
	ctest --test-dir $(BUILD) --output-on-failure -j$(JOBS) --timeout 180 || status=1; \
	ctest --test-dir $(ASAN_BUILD) --output-on-failure -j$(JOBS) --timeout 300 || status=1; \
	exit $$status

test-asan: build-asan
	ctest --test-dir $(ASAN_BUILD) --output-on-failure -j$(JOBS) --timeout 300

demo: build
	@$(BUILD)/examples/demo

bench:
	@LZ_BENCH_DEPS=1 bash scripts/install-deps.sh
	@bash scripts/bench.sh

install: build
	cmake --install $(BUILD)

clean:
	rm -rf $(BUILD) $(ASAN_BUILD)

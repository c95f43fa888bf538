# Thin wrapper around CMake for the two commands of the README.
#   make demo   install missing packages, build, run the demo
#   make test   install missing packages, build, run every test twice
#               (normal build, then AddressSanitizer + UBSan build), then
#               a short run of each fuzzer (clang, libFuzzer) and the
#               threaded tests under ThreadSanitizer, and the runtime
#               built without the agent (test-noagent)
#   make fuzz   run each fuzzer FUZZ_TIME seconds (default 60)
JOBS ?= $(shell nproc 2>/dev/null || echo 2)
BUILD ?= build
ASAN_BUILD ?= build-asan
FUZZ_BUILD ?= build-fuzz
TSAN_BUILD ?= build-tsan
NOAGENT_BUILD ?= build-noagent
FUZZ_TIME ?= 60
FUZZ_HARNESSES ?= file file_crc segment symbols check
CMAKE_FLAGS ?=

.PHONY: all deps build build-asan demo test test-normal test-asan bench clean \
	build-fuzz test-fuzz fuzz build-tsan test-tsan build-noagent test-noagent

all: build

deps:
	@sh scripts/install-deps.sh

build: deps
	cmake -S . -B $(BUILD) $(CMAKE_FLAGS)
	cmake --build $(BUILD) -j $(JOBS)

build-asan: deps
	cmake -S . -B $(ASAN_BUILD) -DCMAKE_BUILD_TYPE=Debug -DCOSCOPE_SANITIZE=ON \
	  -DCOSCOPE_BENCH=OFF $(CMAKE_FLAGS)
	cmake --build $(ASAN_BUILD) -j $(JOBS)

# libFuzzer harnesses (tests/fuzz), clang; seeds from the normal build.
build-fuzz: build
	cmake -S . -B $(FUZZ_BUILD) -DCMAKE_C_COMPILER=clang -DCOSCOPE_FUZZ=ON \
	  -DCOSCOPE_TESTS=OFF -DCOSCOPE_BENCH=OFF -DCOSCOPE_EXAMPLES=OFF \
	  -DCOSCOPE_FUZZ_SEEDS=$(abspath $(BUILD))/fuzz-corpus $(CMAKE_FLAGS)
	cmake --build $(FUZZ_BUILD) -j $(JOBS) --target fuzzers

demo: build
	@sh scripts/demo.sh $(BUILD)

test-normal: build
	cd $(BUILD) && ctest --output-on-failure -j $(JOBS)

test-asan: build-asan
	cd $(ASAN_BUILD) && ctest --output-on-failure -j $(JOBS)

# A fixed number of inputs per harness (the smoke).
test-fuzz: build-fuzz
	cd $(FUZZ_BUILD) && ctest --output-on-failure -j $(JOBS) -L fuzz

# ThreadSanitizer: only the threaded tests and what they need (tests/tsan.cmake).
build-tsan: deps
	cmake -S . -B $(TSAN_BUILD) -DCOSCOPE_TSAN=ON -DCOSCOPE_BENCH=OFF \
	  $(CMAKE_FLAGS)
	cmake --build $(TSAN_BUILD) -j $(JOBS) --target tsan_tests

test-tsan: build-tsan
	cd $(TSAN_BUILD) && ctest --output-on-failure -j $(JOBS) -L tsan

# The runtime without the agent (cmake -DCOSCOPE_AGENT=OFF): libcoscope
# links neither libunwind nor libdw/libelf (build_agent_link checks it);
# only the runtime's tests and the examples are built and run there.
NOAGENT_TESTS = ^(build_agent_link|runtime_|example_)
NOAGENT_SKIP = ^(runtime_scale|example_aarch64_.*)$$
build-noagent: deps
	cmake -S . -B $(NOAGENT_BUILD) -DCOSCOPE_AGENT=OFF -DCOSCOPE_BENCH=OFF \
	  $(CMAKE_FLAGS)
	cmake --build $(NOAGENT_BUILD) -j $(JOBS) --target runtime_tests

test-noagent: build-noagent
	cd $(NOAGENT_BUILD) && ctest --output-on-failure -j $(JOBS) \
	  -R '$(NOAGENT_TESTS)' -E '$(NOAGENT_SKIP)'

test: test-normal test-noagent test-asan test-fuzz test-tsan

# make fuzz [FUZZ_TIME=seconds per harness] [FUZZ_HARNESSES="file ..."]:
# a crash is saved in tests/fuzz/regress/<harness>/, replayed by make test.
fuzz: build-fuzz
	@for h in $(FUZZ_HARNESSES); do \
	  sh tests/fuzz/run.sh $(FUZZ_BUILD)/tests/fuzz $$h $(FUZZ_BUILD)/corpus \
	    time=$(FUZZ_TIME) $(abspath $(BUILD))/fuzz-corpus tests/fuzz/regress \
	    tests/fuzz/regress || exit 1; \
	done

bench: build
	@sh bench/run.sh $(BUILD)

clean:
	rm -rf $(BUILD) $(ASAN_BUILD) $(FUZZ_BUILD) $(TSAN_BUILD) $(NOAGENT_BUILD)

# Thin wrapper around CMake/CTest: `make`, `make run ARGS="--port 0"`, `make test`.
# Each target first checks for (and installs) what is missing, then builds.

BUILD_DIR  ?= build
ASAN_DIR   ?= build-asan
BUILD_TYPE ?= RelWithDebInfo
ARGS       ?=
JOBS       ?= 2

CMAKE ?= cmake
CTEST ?= ctest
GENERATOR := $(if $(shell command -v ninja 2>/dev/null),Ninja,Unix Makefiles)
# Warnings are errors in every build made here (and so in CI); a plain `cmake`
# or a distribution's build leaves DARNER_WERROR off. `make WERROR=OFF` to relax.
WERROR ?= ON
CONFIGURE = $(CMAKE) -S . -G "$(GENERATOR)" -DDARNER_WERROR=$(WERROR)

.PHONY: all deps configure build run test test-asan clean fuzz test-tsan bench install check-builds format-check format deb windows test-windows

all: build

# `make deps` installs everything; each target asks scripts/install-deps only
# for its groups (make run never installs clang, Chromium or the test modules).
deps:
	@scripts/install-deps

DEP_GROUPS := build test fuzz check bench deb format windows
.PHONY: $(addprefix deps-,$(DEP_GROUPS))
$(addprefix deps-,$(DEP_GROUPS)): deps-%:
	@scripts/install-deps $*
# one install-deps at a time (apt-get holds a lock): the build group first
$(addprefix deps-,test fuzz check bench deb windows): deps-build

# Configure once, and again when this Makefile (its flags) changes; CMake
# re-runs itself when CMakeLists.txt or the globbed source lists change.
$(BUILD_DIR)/CMakeCache.txt: Makefile | deps-build
	$(CONFIGURE) -B $(BUILD_DIR) -DCMAKE_BUILD_TYPE=$(BUILD_TYPE)
	@touch $@

configure: $(BUILD_DIR)/CMakeCache.txt

build: deps-build configure
	$(CMAKE) --build $(BUILD_DIR)

run: build
	./$(BUILD_DIR)/darner $(ARGS)

# PREFIX=/opt/darner or DESTDIR=/tmp/stage work as usual (default prefix /usr/local).
install: build
	DESTDIR=$(DESTDIR) $(CMAKE) --install $(BUILD_DIR) $(if $(PREFIX),--prefix $(PREFIX))

test: deps-test build
	$(CTEST) --test-dir $(BUILD_DIR) --output-on-failure -j$(JOBS)

$(ASAN_DIR)/CMakeCache.txt: Makefile | deps-build
	$(CONFIGURE) -B $(ASAN_DIR) -DCMAKE_BUILD_TYPE=Debug -DDARNER_SANITIZE=address,undefined
	@touch $@

test-asan: deps-test $(ASAN_DIR)/CMakeCache.txt
	$(CMAKE) --build $(ASAN_DIR)
	LSAN_OPTIONS="suppressions=$(CURDIR)/tests/lsan.supp $(LSAN_OPTIONS)" \
		$(CTEST) --test-dir $(ASAN_DIR) --output-on-failure -j$(JOBS)

clean:
	rm -rf $(BUILD_DIR) $(ASAN_DIR) build-tsan $(CHECK_DIR)-*

# ---- build checks: what a packager meets first ----
# Built only, never tested, each with -Werror: a Release build (-O3 -DNDEBUG:
# other inlining, other warnings), one with Debian's hardening flags as
# dpkg-buildflags gives them to a package build (build type None, so only
# those flags), and a clang Release build of the whole tree.
CHECK_DIR ?= build-check
HARDENING = DEB_BUILD_MAINT_OPTIONS=hardening=+all dpkg-buildflags --get
check-builds: deps-check
	$(CONFIGURE) -B $(CHECK_DIR)-rel -DCMAKE_BUILD_TYPE=Release
	$(CMAKE) --build $(CHECK_DIR)-rel
	$(CONFIGURE) -B $(CHECK_DIR)-hard -DCMAKE_BUILD_TYPE=None \
		-DCMAKE_C_FLAGS="$$($(HARDENING) CFLAGS) $$($(HARDENING) CPPFLAGS)" \
		-DCMAKE_EXE_LINKER_FLAGS="$$($(HARDENING) LDFLAGS)" \
		-DCMAKE_SHARED_LINKER_FLAGS="$$($(HARDENING) LDFLAGS)"
	$(CMAKE) --build $(CHECK_DIR)-hard
	$(CONFIGURE) -B $(CHECK_DIR)-clang -DCMAKE_BUILD_TYPE=Release -DCMAKE_C_COMPILER=clang
	$(CMAKE) --build $(CHECK_DIR)-clang
	scripts/check-platforms $(CHECK_DIR)-musl

# ---- Debian packages (docs/operations.md, "Installing the Debian package") ----
# darner, libdarner1 and libdarner-dev, built by dpkg-buildpackage from a copy
# of the tree; the .deb files land in DEB_DIR. tests/package/test-deb installs
# and runs them.
DEB_DIR ?= build-deb
deb: deps-deb
	scripts/build-deb $(DEB_DIR)

# ---- formatting (.clang-format) ----
# format-check changes nothing and fails if a file would change; format
# rewrites the files in place.
FORMAT_DIRS  ?= src tests bench
FORMAT_FILES  = $(shell find $(FORMAT_DIRS) -name '*.[ch]' | sort)
format-check: deps-format
	@clang-format --dry-run --Werror $(FORMAT_FILES)
format: deps-format
	clang-format -i $(FORMAT_FILES)

# ---- fuzz and tsan (docs/hardening.md) ----
FUZZ_DIR     ?= build-fuzz
FUZZ_SECONDS ?= 60
TSAN_DIR     ?= build-tsan

# libFuzzer targets, built with clang in their own folder, each run for
# FUZZ_SECONDS (`make fuzz FUZZ_SECONDS=300`).
$(FUZZ_DIR)/CMakeCache.txt: Makefile | deps-fuzz
	$(CONFIGURE) -B $(FUZZ_DIR) -DCMAKE_BUILD_TYPE=RelWithDebInfo \
		-DCMAKE_C_COMPILER=clang -DDARNER_FUZZ=ON -DBUILD_TESTING=OFF
	@touch $@

fuzz: deps-fuzz $(FUZZ_DIR)/CMakeCache.txt
	$(CMAKE) --build $(FUZZ_DIR) --target fuzz_parse fuzz_journal fuzz_batch fuzz_bin
	tests/fuzz/run $(FUZZ_DIR) $(FUZZ_SECONDS)

# Every test under ThreadSanitizer (the fsync jobs run on libuv's pool).
$(TSAN_DIR)/CMakeCache.txt: Makefile | deps-build
	$(CONFIGURE) -B $(TSAN_DIR) -DCMAKE_BUILD_TYPE=Debug -DDARNER_SANITIZE=thread
	@touch $@

test-tsan: deps-test $(TSAN_DIR)/CMakeCache.txt
	$(CMAKE) --build $(TSAN_DIR)
	TSAN_OPTIONS="halt_on_error=1 second_deadlock_stack=1 $(TSAN_OPTIONS)" \
		$(CTEST) --test-dir $(TSAN_DIR) --output-on-failure -j$(JOBS)

# Benchmarks against memcached, Redis and beanstalkd, which bench/run installs
# if missing. BENCH_QUICK=1 is a one-minute smoke run; see docs/benchmarks.md.
bench: deps-bench build
	BENCH_BUILD=$(abspath $(BUILD_DIR)) bench/run

# ---- Windows (docs/platforms.md) ----
# Cross-compiled with Debian's mingw-w64: the dependencies from their Debian
# source packages (scripts/windows/fetch-sources, build-deps; static, into
# WIN_DIR/prefix), then darner.exe, darner-cli.exe, darner-journal.exe and
# the unit tests in WIN_DIR/darner, and the zip for Windows users.
# test-windows runs the unit tests and the integration suite (what Wine can
# run: tests/windows/run says which) against darner.exe under Wine.
WIN_DIR ?= build-win
windows: deps-windows
	scripts/windows/fetch-sources
	scripts/windows/build-deps
	$(CMAKE) -S . -G "$(GENERATOR)" -B $(WIN_DIR)/darner -DDARNER_WERROR=$(WERROR) \
		-DCMAKE_BUILD_TYPE=$(BUILD_TYPE) -DCMAKE_TOOLCHAIN_FILE=$(abspath cmake/mingw-w64.cmake) \
		-DCMAKE_PREFIX_PATH=$(abspath $(WIN_DIR))/prefix
	$(CMAKE) --build $(WIN_DIR)/darner
	scripts/windows/package $(WIN_DIR)/darner $(WIN_DIR)

test-windows: windows deps-test
	tests/windows/run $(WIN_DIR)/darner

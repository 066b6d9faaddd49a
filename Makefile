# weft: the two commands are `make demo` and `make test`.
# CMake does the work underneath; each flavour builds in its own directory.

PREFIX ?= /usr/local
JOBS ?= $(shell nproc)
CMAKE ?= cmake
CTEST_ARGS ?= --output-on-failure -j2

.PHONY: all build test demo bench bench-instr race asan valgrind arm64 install format format-check \
	check-layers clean deb amalgamation

all: build

build/Makefile:
	$(CMAKE) -S . -B build -DCMAKE_BUILD_TYPE=RelWithDebInfo

build: build/Makefile
	$(CMAKE) --build build -j$(JOBS)

test: build
	cd build && ctest $(CTEST_ARGS)

demo: build
	./build/examples/tour

bench: build
	./tools/bench.sh

# Instructions per operation under callgrind: unmoved by the machine's load.
bench-instr: build
	./tools/bench.sh --instr

race:
	$(CMAKE) -S . -B build-tsan -DCMAKE_BUILD_TYPE=RelWithDebInfo -DWEFT_SANITIZE=thread
	$(CMAKE) --build build-tsan -j$(JOBS)
	cd build-tsan && TSAN_OPTIONS="halt_on_error=1 second_deadlock_stack=1" WEFT_SANITIZER=thread ctest $(CTEST_ARGS) -LE nosan

asan:
	$(CMAKE) -S . -B build-asan -DCMAKE_BUILD_TYPE=RelWithDebInfo -DWEFT_SANITIZE=address,undefined
	$(CMAKE) --build build-asan -j$(JOBS)
	cd build-asan && ASAN_OPTIONS="detect_leaks=1" UBSAN_OPTIONS="halt_on_error=1 print_stacktrace=1" WEFT_SANITIZER=address ctest $(CTEST_ARGS) -LE nosan

valgrind: build
	cd build && WEFT_VALGRIND=1 ctest $(CTEST_ARGS) -L valgrind

# The AArch64 context switch, cross-built and tested under qemu-user.
arm64:
	$(CMAKE) -S . -B build-arm64 -DCMAKE_TOOLCHAIN_FILE=cmake/aarch64-linux-gnu.cmake
	$(CMAKE) --build build-arm64 -j$(JOBS)
	# test_http_server execs the example server itself, which qemu would
	# have to be asked to run: it is left to the native suite
	cd build-arm64 && WEFT_SANITIZER=qemu ctest $(CTEST_ARGS) -LE "bench|nosan" -E test_http_server

# dist/weft.c and dist/weft.h: weft as one file (cc prog.c weft.c -lpthread)
amalgamation:
	python3 tools/amalgamate

# Debian packages (CPack): libweft0, libweft-dev, libweft-nats, in build-deb/
deb:
	$(CMAKE) -S . -B build-deb -DCMAKE_BUILD_TYPE=RelWithDebInfo \
		-DCMAKE_INSTALL_PREFIX=/usr -DWEFT_BUILD_TESTS=OFF -DWEFT_SANITIZER_LIBS=ON
	$(CMAKE) --build build-deb -j$(JOBS)
	cd build-deb && cpack -G DEB

# with the sanitizer libraries, which a plain `make build` leaves out
install:
	$(CMAKE) -S . -B build -DCMAKE_BUILD_TYPE=RelWithDebInfo -DWEFT_SANITIZER_LIBS=ON
	$(CMAKE) --build build -j$(JOBS)
	$(CMAKE) --install build --prefix $(PREFIX)

# Every C file of the tree, subdirectories (src/nats, src/arch, tests/nats,
# examples/nats, bench/nats) included; format-check changes nothing, names
# every line clang-format would change and fails if there is one.
CLANG_FORMAT ?= clang-format
FORMAT_FILES = $(shell find include src tests examples bench -name '*.[ch]' | sort)

format:
	$(CLANG_FORMAT) -i $(FORMAT_FILES)

format-check:
	$(CLANG_FORMAT) --dry-run --Werror $(FORMAT_FILES)

# The layers hold (docs/design.md): no cycle of more than 3 object files in
# the link graph (the scheduler, the netpoller and the waiter), and the
# shared libraries export the public API only.  The graph is read from
# weft_objs, one object per source file, which the one-translation-unit
# libraries (WEFT_UNITY) leave unbuilt otherwise.
check-layers: build
	$(CMAKE) --build build --target weft_objs -j$(JOBS)
	tools/linkgraph --max 3
	tools/check-exports

clean:
	rm -rf build build-tsan build-asan build-arm64 build-deb

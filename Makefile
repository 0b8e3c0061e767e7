# HyperMesh build: userspace with gcc, BPF with clang -target bpf, skeletons
# with bpftool gen skeleton.  Everything lands in build/.
#
#   make            build everything
#   make test       install deps, build, run every test (the CI entry point)
#   make demo       install deps, start a 4-replica cluster, use it, stop it
#   make bench      benchmarks (not tests): prints a table, writes build/bench.json
#   make soak       longer randomized and fault runs
#   make fuzz       coverage-guided fuzzing of the wire and DNS parsers (libFuzzer)

BUILD   ?= build
CC      := gcc
CLANG   ?= clang
BPFTOOL ?= bpftool

PKGS      := libsodium yaml-0.1 libbpf libxdp jansson libnl-3.0 libnl-route-3.0 \
             libcrypto libssl libcurl ldns libunbound libmicrohttpd
PKG_CFLAGS := $(shell pkg-config --cflags $(PKGS) 2>/dev/null)
PKG_LIBS   := $(shell pkg-config --libs $(PKGS) 2>/dev/null)
# pkg-config answers nothing at all when one package is missing: say so
# rather than fail later on a missing header (deps, test, ... install first).
ifeq ($(shell pkg-config --exists $(PKGS) && echo yes),)
ifneq ($(filter-out deps clean test demo bench soak fuzz,$(or $(MAKECMDGOALS),all)),)
$(error pkg-config cannot resolve all of: $(PKGS) ($(shell pkg-config --print-errors --exists $(PKGS) 2>&1 | head -1)); run `make deps`)
endif
endif

CFLAGS_COMMON := -std=gnu11 -g -Wall -Wextra -Werror -Wno-missing-field-initializers \
                 -Iheaders -Iuser -I$(BUILD) $(PKG_CFLAGS) -D_GNU_SOURCE
CFLAGS  ?= -O2
LDLIBS  := $(PKG_LIBS) -lelf -lz -lm -lpthread
SAN_FLAGS := -O1 -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=all

# Userspace: every user/*.c but the programs' mains goes into libhm.
PROGRAMS  := hypermeshd hmctl loss_ctl
LIB_SRCS  := $(filter-out $(PROGRAMS:%=user/%.c),$(wildcard user/*.c))
LIB_OBJS  := $(LIB_SRCS:user/%.c=$(BUILD)/obj/%.o)
SAN_OBJS  := $(LIB_SRCS:user/%.c=$(BUILD)/san/obj/%.o)

# BPF: every kern/*.bpf.c becomes build/NAME.bpf.o and build/NAME.skel.h.
BPF_SRCS  := $(wildcard kern/*.bpf.c)
BPF_OBJS  := $(BPF_SRCS:kern/%.bpf.c=$(BUILD)/%.bpf.o)
SKELS     := $(BPF_SRCS:kern/%.bpf.c=$(BUILD)/%.skel.h)
ARCH      := $(shell uname -m | sed 's/x86_64/x86/;s/aarch64/arm64/')
BPF_CFLAGS := -g -O2 -target bpf -D__TARGET_ARCH_$(ARCH) -Wall -Werror \
              -Iheaders -Ivmlinux -Ikern

# Tests: every selftests/test_*.c is one binary, built twice: plain and with
# AddressSanitizer + UndefinedBehaviorSanitizer.
TEST_SRCS := $(wildcard selftests/test_*.c)
TESTS     := $(TEST_SRCS:selftests/%.c=$(BUILD)/tests/%)
SAN_TESTS := $(TEST_SRCS:selftests/%.c=$(BUILD)/san/tests/%)
# Helper programs the shell suites drive (not test binaries themselves).
TEST_PROGS := $(BUILD)/dns_testd

.PHONY: all deps test unit e2e demo bench soak fuzz clean
.SECONDARY:

all: $(PROGRAMS:%=$(BUILD)/%) $(BPF_OBJS) $(SKELS) $(TESTS) $(SAN_TESTS) $(TEST_PROGS) \
     $(BUILD)/bench_xdp

deps:
	bash scripts/deps.sh

vmlinux/vmlinux.h:
	@mkdir -p $(@D)
	$(BPFTOOL) btf dump file /sys/kernel/btf/vmlinux format c > $@.tmp && mv $@.tmp $@

$(BUILD)/%.bpf.o: kern/%.bpf.c vmlinux/vmlinux.h $(wildcard headers/*.h kern/*.h)
	@mkdir -p $(@D)
	$(CLANG) $(BPF_CFLAGS) -c $< -o $@
	llvm-strip -g $@ -o $@.stripped 2>/dev/null && rm -f $@.stripped || true

$(BUILD)/%.skel.h: $(BUILD)/%.bpf.o
	$(BPFTOOL) gen skeleton $< > $@.tmp && mv $@.tmp $@

$(BUILD)/obj/%.o: user/%.c $(wildcard headers/*.h user/*.h) | $(SKELS)
	@mkdir -p $(@D)
	$(CC) $(CFLAGS_COMMON) $(CFLAGS) -c $< -o $@

$(BUILD)/san/obj/%.o: user/%.c $(wildcard headers/*.h user/*.h) | $(SKELS)
	@mkdir -p $(@D)
	$(CC) $(CFLAGS_COMMON) $(SAN_FLAGS) -c $< -o $@

$(BUILD)/libhm.a: $(LIB_OBJS)
	ar rcs $@ $^

$(BUILD)/san/libhm.a: $(SAN_OBJS)
	ar rcs $@ $^

$(BUILD)/%: user/%.c $(BUILD)/libhm.a
	$(CC) $(CFLAGS_COMMON) $(CFLAGS) $< $(BUILD)/libhm.a $(LDLIBS) -o $@

# Benchmark programs (not tests): selftests/bench_*.c.
$(BUILD)/bench_%: selftests/bench_%.c $(BUILD)/libhm.a $(wildcard selftests/*.h) $(SKELS)
	$(CC) $(CFLAGS_COMMON) $(CFLAGS) -Iselftests $< $(BUILD)/libhm.a $(LDLIBS) -o $@

$(BUILD)/dns_testd: selftests/dns_testd.c $(BUILD)/libhm.a
	$(CC) $(CFLAGS_COMMON) $(CFLAGS) $< $(BUILD)/libhm.a $(LDLIBS) -o $@

$(BUILD)/tests/%: selftests/%.c $(BUILD)/libhm.a $(wildcard selftests/*.h) $(SKELS)
	@mkdir -p $(@D)
	$(CC) $(CFLAGS_COMMON) $(CFLAGS) -Iselftests $< $(BUILD)/libhm.a $(LDLIBS) -o $@

$(BUILD)/san/tests/%: selftests/%.c $(BUILD)/san/libhm.a $(wildcard selftests/*.h) $(SKELS)
	@mkdir -p $(@D)
	$(CC) $(CFLAGS_COMMON) $(SAN_FLAGS) -Iselftests $< $(BUILD)/san/libhm.a $(LDLIBS) -o $@

# The CI entry point: unit tests under the sanitizers, then the namespace suites.
test: deps
	$(MAKE) all
	bash scripts/run-tests.sh

unit: all
	bash scripts/run-tests.sh --unit

e2e: all
	bash scripts/run-tests.sh --e2e

demo: deps
	$(MAKE) all
	bash scripts/demo.sh

bench: deps
	$(MAKE) all
	bash scripts/bench.sh

soak: deps
	$(MAKE) all
	bash scripts/run-tests.sh --soak

fuzz: deps
	$(MAKE) all
	bash scripts/fuzz.sh

clean:
	rm -rf $(BUILD) vmlinux/vmlinux.h

# HyperMesh build: userspace with gcc, BPF with clang -target bpf, skeletons
# with bpftool gen skeleton.  Everything lands in build/.
#
#   make            build everything
#   make test       install deps, build, run every test (the CI entry point)
#   make demo       install deps, start a 4-replica cluster, use it, stop it
#   make bench      benchmarks (not tests): prints a table, writes build/bench.json
#   make soak       longer randomized and fault runs
#   make fuzz       coverage-guided fuzzing of the wire and DNS parsers (libFuzzer)
#   make vmtest     the BPF selftests in a qemu VM on Debian kernels (KERNELS="6.1 6.12");
#                   not part of make test (scripts/vmtest.sh, README "BPF selftests in a VM")

BUILD   ?= build
CC      := gcc
CLANG   ?= clang
BPFTOOL ?= bpftool

PKGS      := libsodium yaml-0.1 libbpf libxdp jansson libnl-3.0 libnl-route-3.0 \
             libcrypto libssl libcurl ldns libunbound libmicrohttpd libsystemd \
             libzstd
PKG_CFLAGS := $(shell pkg-config --cflags $(PKGS) 2>/dev/null)
PKG_LIBS   := $(shell pkg-config --libs $(PKGS) 2>/dev/null)
# pkg-config answers nothing at all when one package is missing: say so
# rather than fail later on a missing header (deps, test, ... install first).
ifeq ($(shell pkg-config --exists $(PKGS) && echo yes),)
ifneq ($(filter-out deps clean test demo bench soak fuzz vmtest uninstall,$(or $(MAKECMDGOALS),all)),)
$(error pkg-config cannot resolve all of: $(PKGS) ($(shell pkg-config --print-errors --exists $(PKGS) 2>&1 | head -1)); run `make deps`)
endif
endif

CFLAGS_COMMON := -std=gnu11 -g -Wall -Wextra -Werror -Wno-missing-field-initializers \
                 -Iheaders -Iuser -I$(BUILD) $(PKG_CFLAGS) -D_GNU_SOURCE
# Every object also writes its header dependencies (build/**/*.d).
DEPFLAGS := -MMD -MP
CFLAGS  ?= -O2
LDLIBS  := $(PKG_LIBS) -lelf -lz -lm -lpthread
SAN_FLAGS := -O1 -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=all

# Userspace, one folder per concern (README "Layout"); dependencies point
# down: common <- core <- replica, dataplane, client <- service, detect <-
# cli, daemon.  libhm.a is what the shipped programs link: every folder but
# the programs' own (cli/, daemon/) and testing/ (the simulator and the
# test-only Byzantine behaviour), which tests link from libhm_testing.a.
find_src   = $(sort $(shell find $(1) -name '$(2)'))
USER_SRCS  := $(call find_src,user,*.c)
LIB_SRCS   := $(filter-out user/cli/% user/daemon/% user/testing/%,$(USER_SRCS))
CLI_SRCS   := $(filter-out user/cli/hmctl.c user/cli/loss_ctl.c,$(filter user/cli/%,$(USER_SRCS)))
# The daemon's own helpers (service manager), linked by both daemon builds.
DAEMON_SRCS := $(filter-out user/daemon/hypermeshd.c,$(filter user/daemon/%,$(USER_SRCS)))
TESTING_SRCS := $(filter user/testing/%,$(USER_SRCS))
obj   = $(1:user/%.c=$(BUILD)/obj/%.o)
sanobj = $(1:user/%.c=$(BUILD)/san/obj/%.o)
LIBHM      := $(BUILD)/libhm.a
LIBHM_CLI  := $(BUILD)/libhm_cli.a
LIBHM_TEST := $(BUILD)/libhm_testing.a
SAN_LIBS   := $(BUILD)/san/libhm_testing.a $(BUILD)/san/libhm_cli.a $(BUILD)/san/libhm.a
TEST_LIBS  := $(LIBHM_TEST) $(LIBHM_CLI) $(LIBHM)

# BPF: every kern/*.bpf.c becomes build/NAME.bpf.o and build/NAME.skel.h.
BPF_SRCS  := $(wildcard kern/*.bpf.c)
BPF_OBJS  := $(BPF_SRCS:kern/%.bpf.c=$(BUILD)/%.bpf.o)
SKELS     := $(BPF_SRCS:kern/%.bpf.c=$(BUILD)/%.skel.h)
ARCH      := $(shell uname -m | sed 's/x86_64/x86/;s/aarch64/arm64/')
BPF_CFLAGS := -g -O2 -target bpf -D__TARGET_ARCH_$(ARCH) -Wall -Werror \
              -Iheaders -Ivmlinux -Ikern

# Tests: every selftests/<concern>/test_*.c is one binary, build/tests/test_*,
# built twice: plain and with AddressSanitizer + UndefinedBehaviorSanitizer.
TEST_SRCS := $(call find_src,selftests,test_*.c)
TESTS     := $(patsubst %.c,$(BUILD)/tests/%,$(notdir $(TEST_SRCS)))
SAN_TESTS := $(patsubst %.c,$(BUILD)/san/tests/%,$(notdir $(TEST_SRCS)))
TEST_HDRS := $(call find_src,selftests,*.h)
vpath test_%.c $(sort $(dir $(TEST_SRCS)))
vpath bench_%.c $(sort $(dir $(call find_src,selftests,bench_*.c)))
# Helper programs the shell suites drive (not test binaries themselves):
# hypermeshd-test is the daemon built with -DHM_TESTING and libhm_testing.a
# (--byzantine); the shipped build/hypermeshd has neither.  hm_bad_client is
# a client whose MACs are bad at chosen replicas (e2e_request_auth.sh).
TEST_PROGS := $(BUILD)/dns_testd $(BUILD)/hypermeshd-test $(BUILD)/hm_bad_client
PROGRAMS   := $(BUILD)/hypermeshd $(BUILD)/hmctl $(BUILD)/loss_ctl
# Man pages, generated from docs/man/*.md (and configuration.md) by go-md2man.
MAN_PAGES  := $(BUILD)/man/hypermeshd.8 $(BUILD)/man/hmctl.8 $(BUILD)/man/hypermesh.yaml.5

.PHONY: all deps test unit e2e demo bench soak fuzz vmtest clean install uninstall FORCE
.SECONDARY:

all: $(PROGRAMS) $(BPF_OBJS) $(SKELS) $(TESTS) $(SAN_TESTS) $(TEST_PROGS) \
     $(BUILD)/bench_xdp $(MAN_PAGES)

# The release, in one place: `git describe` in a git checkout, else the
# VERSION file (a source tarball).  build/hm_version.h is rewritten only when
# the text changes, so a rebuild recompiles only when the version moved.
HM_RELEASE := $(shell git describe --tags --always --dirty 2>/dev/null | sed 's/^v//')
ifeq ($(HM_RELEASE),)
HM_RELEASE := $(shell cat VERSION)
else ifeq ($(shell git describe --tags 2>/dev/null),)
HM_RELEASE := $(shell cat VERSION)+g$(HM_RELEASE)
endif
$(BUILD)/hm_version.h: FORCE
	@mkdir -p $(@D)
	@printf '#define HM_RELEASE "%s"\n' '$(HM_RELEASE)' > $@.tmp
	@cmp -s $@.tmp $@ && rm -f $@.tmp || mv -f $@.tmp $@

deps:
	bash scripts/deps.sh

vmlinux/vmlinux.h:
	@mkdir -p $(@D)
	$(BPFTOOL) btf dump file /sys/kernel/btf/vmlinux format c > $@.tmp && mv $@.tmp $@

$(BUILD)/%.bpf.o: kern/%.bpf.c vmlinux/vmlinux.h
	@mkdir -p $(@D)
	$(CLANG) $(BPF_CFLAGS) $(DEPFLAGS) -c $< -o $@
	llvm-strip -g $@ -o $@.stripped 2>/dev/null && rm -f $@.stripped || true

$(BUILD)/%.skel.h: $(BUILD)/%.bpf.o
	$(BPFTOOL) gen skeleton $< > $@.tmp && mv $@.tmp $@

# Man pages: docs/man/NAME.SECTION.md through go-md2man, @VERSION@ filled
# in; hypermesh.yaml(5) is its head page followed by docs/configuration.md
# (its title dropped, its sections raised one level), so the reference is
# written once.
MD2MAN ?= go-md2man
MD2MAN_CHECK = @command -v $(MD2MAN) >/dev/null || { echo "$(MD2MAN) is missing: run make deps" >&2; exit 1; }
$(BUILD)/man/%.8: docs/man/%.8.md $(BUILD)/hm_version.h
	$(MD2MAN_CHECK)
	@mkdir -p $(@D)
	sed 's/@VERSION@/$(HM_RELEASE)/g' $< | $(MD2MAN) > $@.tmp && mv $@.tmp $@
$(BUILD)/man/hypermesh.yaml.5: docs/man/hypermesh.yaml.5.md docs/configuration.md $(BUILD)/hm_version.h
	$(MD2MAN_CHECK)
	@mkdir -p $(@D)
	{ sed 's/@VERSION@/$(HM_RELEASE)/g' $<; \
	  sed -e '0,/^# /d' -e 's/^## /# /' -e 's/^### /## /' docs/configuration.md; } \
	  | $(MD2MAN) > $@.tmp && mv $@.tmp $@

$(BUILD)/obj/%.o: user/%.c | $(SKELS) $(BUILD)/hm_version.h
	@mkdir -p $(@D)
	$(CC) $(CFLAGS_COMMON) $(CFLAGS) $(DEPFLAGS) -c $< -o $@

$(BUILD)/san/obj/%.o: user/%.c | $(SKELS) $(BUILD)/hm_version.h
	@mkdir -p $(@D)
	$(CC) $(CFLAGS_COMMON) $(SAN_FLAGS) $(DEPFLAGS) -c $< -o $@

$(LIBHM): $(call obj,$(LIB_SRCS))
	ar rcs $@ $^
$(LIBHM_CLI): $(call obj,$(CLI_SRCS))
	ar rcs $@ $^
$(LIBHM_TEST): $(call obj,$(TESTING_SRCS))
	ar rcs $@ $^
$(BUILD)/san/libhm.a: $(call sanobj,$(LIB_SRCS))
	ar rcs $@ $^
$(BUILD)/san/libhm_cli.a: $(call sanobj,$(CLI_SRCS))
	ar rcs $@ $^
$(BUILD)/san/libhm_testing.a: $(call sanobj,$(TESTING_SRCS))
	ar rcs $@ $^

$(BUILD)/hypermeshd: $(BUILD)/obj/daemon/hypermeshd.o $(call obj,$(DAEMON_SRCS)) $(LIBHM)
	$(CC) $^ $(LDLIBS) -o $@
$(BUILD)/obj/daemon/hypermeshd-test.o: user/daemon/hypermeshd.c | $(SKELS) $(BUILD)/hm_version.h
	@mkdir -p $(@D)
	$(CC) $(CFLAGS_COMMON) $(CFLAGS) -DHM_TESTING $(DEPFLAGS) -c $< -o $@
$(BUILD)/hypermeshd-test: $(BUILD)/obj/daemon/hypermeshd-test.o $(call obj,$(DAEMON_SRCS)) \
                          $(LIBHM_TEST) $(LIBHM)
	$(CC) $^ $(LDLIBS) -o $@
$(BUILD)/hmctl: $(BUILD)/obj/cli/hmctl.o $(LIBHM_CLI) $(LIBHM)
	$(CC) $^ $(LDLIBS) -o $@
$(BUILD)/loss_ctl: $(BUILD)/obj/cli/loss_ctl.o $(LIBHM)
	$(CC) $^ $(LDLIBS) -o $@

TEST_CFLAGS = $(CFLAGS_COMMON) $(DEPFLAGS) -MF $(@D)/.$(@F).d -Iselftests

# Benchmark programs (not tests): selftests/**/bench_*.c.
$(BUILD)/bench_%: bench_%.c $(TEST_LIBS) | $(SKELS)
	$(CC) $(TEST_CFLAGS) $(CFLAGS) $< $(TEST_LIBS) $(LDLIBS) -o $@

$(BUILD)/dns_testd: selftests/service/dns/dns_testd.c $(LIBHM)
	$(CC) $(TEST_CFLAGS) $(CFLAGS) $< $(LIBHM) $(LDLIBS) -o $@

$(BUILD)/hm_bad_client: selftests/e2e/tools/bad_client.c $(LIBHM)
	$(CC) $(TEST_CFLAGS) $(CFLAGS) $< $(LIBHM) $(LDLIBS) -o $@

$(BUILD)/tests/%: %.c $(TEST_LIBS) | $(SKELS)
	@mkdir -p $(@D)
	$(CC) $(TEST_CFLAGS) $(CFLAGS) $< $(TEST_LIBS) $(LDLIBS) -o $@

$(BUILD)/san/tests/%: %.c $(SAN_LIBS) | $(SKELS)
	@mkdir -p $(@D)
	$(CC) $(TEST_CFLAGS) $(SAN_FLAGS) $< $(SAN_LIBS) $(LDLIBS) -o $@

-include $(shell find $(BUILD) -name '*.d' 2>/dev/null)

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

# BPF selftests in a VM, one boot per kernel: KERNELS lists Debian kernel
# versions (6.1, 6.12, or exact ABIs such as 6.1.0-57); VMTEST_ARGS passes
# more options to scripts/vmtest.sh (--kernel PATH, --accel, --tests ...).
KERNELS ?= 6.1 6.12
vmtest: deps
	$(MAKE) all
	bash scripts/vmtest.sh $(foreach k,$(KERNELS),--debian-kernel $(k)) $(VMTEST_ARGS)

# Install the shipped programs, the systemd unit, the man pages, a sample
# configuration (/etc/hypermesh/hypermesh.yaml.example) and the BPF objects
# (for attaching by hand); DESTDIR for staging (packages, the install test).
# The unit's ExecStart names $(SBINDIR).  A configuration already in
# /etc/hypermesh is never touched.
PREFIX     ?= /usr/local
BINDIR     ?= $(PREFIX)/bin
SBINDIR    ?= $(PREFIX)/sbin
MANDIR     ?= $(PREFIX)/share/man
UNITDIR    ?= $(PREFIX)/lib/systemd/system
BPFDIR     ?= $(PREFIX)/lib/hypermesh
DOCDIR     ?= $(PREFIX)/share/doc/hypermesh
SYSCONFDIR ?= /etc
INSTALLED := $(SBINDIR)/hypermeshd $(BINDIR)/hmctl $(UNITDIR)/hypermeshd.service \
             $(MANDIR)/man8/hypermeshd.8 $(MANDIR)/man8/hmctl.8 $(MANDIR)/man5/hypermesh.yaml.5 \
             $(BPFDIR)/hm_xdp.bpf.o $(BPFDIR)/hm_tc.bpf.o $(DOCDIR)/deployment.md \
             $(DOCDIR)/configuration.md $(SYSCONFDIR)/hypermesh/hypermesh.yaml.example

install: $(BUILD)/hypermeshd $(BUILD)/hmctl $(MAN_PAGES) $(BUILD)/hm_xdp.bpf.o $(BUILD)/hm_tc.bpf.o
	install -d $(DESTDIR)$(BINDIR) $(DESTDIR)$(SBINDIR) $(DESTDIR)$(UNITDIR) \
	  $(DESTDIR)$(MANDIR)/man5 $(DESTDIR)$(MANDIR)/man8 $(DESTDIR)$(BPFDIR) $(DESTDIR)$(DOCDIR)
	install -d -m 0755 $(DESTDIR)$(SYSCONFDIR)/hypermesh
	install -m 0755 $(BUILD)/hypermeshd $(DESTDIR)$(SBINDIR)/hypermeshd
	install -m 0755 $(BUILD)/hmctl $(DESTDIR)$(BINDIR)/hmctl
	sed 's|@SBINDIR@|$(SBINDIR)|g' dist/hypermeshd.service.in > $(DESTDIR)$(UNITDIR)/hypermeshd.service
	chmod 0644 $(DESTDIR)$(UNITDIR)/hypermeshd.service
	install -m 0644 $(BUILD)/man/hypermeshd.8 $(BUILD)/man/hmctl.8 $(DESTDIR)$(MANDIR)/man8/
	install -m 0644 $(BUILD)/man/hypermesh.yaml.5 $(DESTDIR)$(MANDIR)/man5/
	install -m 0644 $(BUILD)/hm_xdp.bpf.o $(BUILD)/hm_tc.bpf.o $(DESTDIR)$(BPFDIR)/
	install -m 0644 docs/deployment.md docs/configuration.md $(DESTDIR)$(DOCDIR)/
	install -m 0644 dist/hypermesh.yaml.example $(DESTDIR)$(SYSCONFDIR)/hypermesh/

uninstall:
	rm -f $(addprefix $(DESTDIR),$(INSTALLED))
	-rmdir $(DESTDIR)$(BPFDIR) $(DESTDIR)$(DOCDIR) 2>/dev/null

clean:
	rm -rf $(BUILD) vmlinux/vmlinux.h

# constel: see README.md. `make`, `make check`, `make demo`, `make SANITIZE=1 check`.
PREFIX ?= /usr/local
CC ?= cc
PKGS := libssh libgit2 yaml-0.1 jansson
VERSION := 0.1.0

WARNINGS := -Wall -Wextra -Wshadow -Wstrict-prototypes -Wmissing-prototypes \
	-Wformat=2 -Wvla
ifeq ($(WERROR),1)
WARNINGS += -Werror
endif

CFLAGS ?= -O2 -g
ALL_CFLAGS := -std=c11 -D_GNU_SOURCE -DCONSTEL_VERSION='"$(VERSION)"' -I. $(WARNINGS) \
	$(shell pkg-config --cflags $(PKGS)) $(CFLAGS)
LIBS := $(shell pkg-config --libs $(PKGS)) -lpthread

BUILD := build
ifeq ($(SANITIZE),1)
ALL_CFLAGS += -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=undefined
LDFLAGS += -fsanitize=address,undefined
BUILD := build/sanitize
endif

MODULES := common inventory graph transport deploy
LIB_SRC := $(foreach m,$(MODULES),$(wildcard $(m)/*.c))
CMD_SRC := $(wildcard cmd/*.c)
# The host scripts, embedded as C strings (deploy/host_sh.h).
HOST_SH := $(wildcard deploy/sh/*.sh)
GEN_SRC := build/gen/host_sh.c
LIB_OBJ := $(LIB_SRC:%.c=$(BUILD)/%.o) $(BUILD)/gen/host_sh.o
CMD_OBJ := $(CMD_SRC:%.c=$(BUILD)/%.o)
LIB := $(BUILD)/libconstel.a

UNIT_SRC := $(wildcard tests/unit/test_*.c)
UNIT_BIN := $(UNIT_SRC:tests/unit/%.c=$(BUILD)/tests/%)
UNIT_HELPER_SRC := $(filter-out $(UNIT_SRC),$(wildcard tests/unit/*.c))
UNIT_HELPER_OBJ := $(UNIT_HELPER_SRC:%.c=$(BUILD)/%.o)

all: constel

constel: $(BUILD)/constel
	cp $< $@.tmp && mv -f $@.tmp $@

$(BUILD)/constel: $(CMD_OBJ) $(LIB)
	$(CC) $(LDFLAGS) -o $@ $(CMD_OBJ) $(LIB) $(LIBS)

$(LIB): $(LIB_OBJ)
	rm -f $@
	ar rcs $@ $^

$(BUILD)/%.o: %.c
	@mkdir -p $(dir $@)
	$(CC) $(ALL_CFLAGS) -MMD -MP -c -o $@ $<

$(GEN_SRC): deploy/sh/embed $(HOST_SH)
	@mkdir -p $(dir $@)
	deploy/sh/embed $@ $(HOST_SH)

$(BUILD)/gen/host_sh.o: $(GEN_SRC)
	@mkdir -p $(dir $@)
	$(CC) $(ALL_CFLAGS) -c -o $@ $<

# The host scripts are POSIX sh: parsed by sh and dash, and shellcheck-clean.
lint-sh:
	@set -e; for f in $(HOST_SH); do sh -n $$f; dash -n $$f; done; \
		shellcheck -s sh $(HOST_SH) tests/unit/test_host_sh.sh

$(BUILD)/tests/%: tests/unit/%.c $(UNIT_HELPER_OBJ) $(LIB)
	@mkdir -p $(dir $@)
	$(CC) $(ALL_CFLAGS) $(LDFLAGS) -o $@ $< $(UNIT_HELPER_OBJ) $(LIB) $(LIBS) \
		$(shell pkg-config --libs cmocka)

-include $(shell find $(BUILD) -name '*.d' 2>/dev/null)

# The transport test driver (tests/tools/ssh-tool.c), for the integration
# tests and the copy benchmark; at build/ssh-tool whatever the variant.
tools: build/ssh-tool

build/ssh-tool: $(BUILD)/ssh-tool-bin
	cp $< $@.tmp && mv -f $@.tmp $@

$(BUILD)/ssh-tool-bin: tests/tools/ssh-tool.c $(LIB)
	$(CC) $(ALL_CFLAGS) $(LDFLAGS) -o $@ $< $(LIB) $(LIBS)

unit: $(UNIT_BIN) lint-sh
	@set -e; for t in $(UNIT_BIN); do echo "== $$t"; $$t; done
	@tests/unit/test_host_sh.sh

# Under the sanitizers, the tests of the harness alone (no constel in them)
# are not run again.
ifeq ($(SANITIZE),1)
INTEGRATION_SKIP := test_fleet_basic test_fleet_knobs test_fleet_lifecycle test_demo
endif
integration: constel tools
	@SKIP="$(INTEGRATION_SKIP)" tests/integration/run

# The two commands of the README work on a fresh Debian machine: each first
# installs what is missing (tests/setup.sh), then builds.
deps:
	@tests/setup.sh

check: deps
	@$(MAKE) --no-print-directory constel tools
	@$(MAKE) --no-print-directory unit
	@$(MAKE) --no-print-directory integration

demo: deps
	@$(MAKE) --no-print-directory constel
	@tests/demo.sh

FUZZ_SRC := $(wildcard tests/fuzz/fuzz_*.c)
FUZZ_BIN := $(FUZZ_SRC:tests/fuzz/%.c=build/fuzz/%)
FUZZ_LIB_SRC := $(filter-out cmd/%,$(LIB_SRC))
FUZZ_SECONDS ?= 20

build/fuzz/%: tests/fuzz/%.c $(FUZZ_LIB_SRC) $(GEN_SRC)
	@mkdir -p $(dir $@)
	clang -std=c11 -D_GNU_SOURCE -DCONSTEL_VERSION='"$(VERSION)"' -I. -g -O1 -fsanitize=fuzzer,address,undefined \
		$(shell pkg-config --cflags $(PKGS)) -o $@ $^ $(LIBS)

fuzz: $(FUZZ_BIN)
	@set -e; for f in $(FUZZ_BIN); do \
		name=$$(basename $$f); mkdir -p build/fuzz/corpus-$$name; \
		echo "== $$name for $(FUZZ_SECONDS)s"; \
		$$f -max_total_time=$(FUZZ_SECONDS) -timeout=10 build/fuzz/corpus-$$name \
			tests/fuzz/seeds/$$name; \
	done

install: constel
	install -D -m 755 constel $(DESTDIR)$(PREFIX)/bin/constel
	install -D -m 644 docs/constel.1 $(DESTDIR)$(PREFIX)/share/man/man1/constel.1

format:
	clang-format -i $(LIB_SRC) $(CMD_SRC) $(wildcard */*.h) $(UNIT_SRC)

clean:
	rm -rf build constel

.PHONY: all deps tools check unit lint-sh integration demo fuzz install format clean
.SECONDARY:

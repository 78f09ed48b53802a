# Zygo build.
#   make            release build: build/release/zygo
#   make run        install missing Debian packages, build, start the server on port 3000
#   make test       the whole test suite (release build)
#   make test SANITIZE=1   the same suite under AddressSanitizer + UndefinedBehaviorSanitizer
# Dependencies come from Debian packages found with pkg-config; scripts/deps.sh installs the
# missing ones.

SANITIZE ?=
ifeq ($(SANITIZE),)
VARIANT := release
OPT := -O2 -g
else
VARIANT := asan
OPT := -O1 -g -fno-omit-frame-pointer -fsanitize=address,undefined -fno-sanitize-recover=all \
       -DZYGO_ARENA_DEBUG=1
endif

BUILD := build/$(VARIANT)
# V=1 shows full compiler command lines.
Q := $(if $(V),,@)
CC ?= cc
PKGS := libmicrohttpd jansson sqlite3 libcurl libsodium libpq libjwt liboath libqrencode zlib
PKG_CFLAGS := $(shell pkg-config --cflags $(PKGS) 2>/dev/null)
PKG_LIBS := $(shell pkg-config --libs $(PKGS) 2>/dev/null)
# Debian's libwslay-dev ships no pkg-config file: linked by name (header in the default path).
PKG_LIBS += -lwslay

WARN := -Wall -Wextra -Werror -Wshadow -Wformat=2 -Wpointer-arith -Wvla \
        -Wstrict-prototypes -Wmissing-prototypes -Wno-missing-field-initializers
CFLAGS_COMMON := -std=c17 -D_GNU_SOURCE -pthread $(OPT) -Isrc -I$(BUILD)/gen $(PKG_CFLAGS) \
                 -DZYGO_VERSION='"$(shell cat VERSION)"'
LDLIBS := $(PKG_LIBS) -lm -pthread

SRC := $(shell find src -name '*.c' ! -path src/main.c | sort)
OBJ := $(SRC:%.c=$(BUILD)/%.o) $(BUILD)/gen/embedded.o
TEST_SRC := $(shell find tests -name '*.c' | sort)
TEST_OBJ := $(TEST_SRC:%.c=$(BUILD)/%.o)
# Files compiled into the binary: SQL migrations per dialect and static assets.
EMBED := $(sort $(wildcard src/db/migrations/*/*.sql)) $(sort $(wildcard src/routes/assets/*))

.PHONY: all run test check clean deps tests bench-server bench-queue bench-ws
all: $(BUILD)/zygo

deps:
	@scripts/deps.sh

$(BUILD)/zygo: $(BUILD)/src/main.o $(BUILD)/libzygo.a
	$(CC) $(CFLAGS_COMMON) -o $@ $^ $(LDLIBS)

$(BUILD)/libzygo.a: $(OBJ)
	@rm -f $@
	ar rcs $@ $^

$(BUILD)/src/%.o: src/%.c VERSION
	@mkdir -p $(dir $@)
	@echo "  CC    $<"
	$(Q)$(CC) $(CFLAGS_COMMON) $(WARN) -MMD -MP -c -o $@ $<

# Test files use Criterion's macros, which define functions without prototypes.
$(BUILD)/tests/%.o: tests/%.c
	@mkdir -p $(dir $@)
	@echo "  CC    $<"
	$(Q)$(CC) $(CFLAGS_COMMON) -Itests -Itests/support -Wall -Wextra -Werror -Wshadow -Wno-missing-field-initializers -MMD -MP -c -o $@ $<

$(BUILD)/tools/embed: tools/embed.c
	@mkdir -p $(dir $@)
	$(CC) -std=c17 -O1 -Wall -Wextra -Werror -o $@ $<

$(BUILD)/gen/embedded.c: $(BUILD)/tools/embed $(EMBED)
	@mkdir -p $(dir $@)
	$(BUILD)/tools/embed $@ $(EMBED)

$(BUILD)/gen/embedded.o: $(BUILD)/gen/embedded.c
	$(CC) $(CFLAGS_COMMON) -c -o $@ $<

$(BUILD)/zygo-tests: $(TEST_OBJ) $(BUILD)/libzygo.a
	$(CC) $(CFLAGS_COMMON) -o $@ $^ $(LDLIBS) -lcriterion

tests: $(BUILD)/zygo $(BUILD)/zygo-tests

# The benchmark's server: the real app plus one benchmark route (bench/pg_server.c).
$(BUILD)/zygo-bench-server: bench/pg_server.c $(BUILD)/libzygo.a
	$(CC) $(CFLAGS_COMMON) $(WARN) -o $@ $^ $(LDLIBS)

bench-server: $(BUILD)/zygo-bench-server

# The WebSocket benchmark's load client (bench/ws_load.c) and server (the bench server above).
$(BUILD)/zygo-ws-load: bench/ws_load.c
	@mkdir -p $(dir $@)
	$(CC) -std=c17 -O2 -g $(WARN) -o $@ $<

bench-ws: $(BUILD)/zygo-bench-server $(BUILD)/zygo-ws-load

# The queue benchmark's driver: the real job runner on no-op jobs (bench/queue_bench.c).
$(BUILD)/zygo-bench-queue: bench/queue_bench.c $(BUILD)/libzygo.a
	$(CC) $(CFLAGS_COMMON) $(WARN) -o $@ $^ $(LDLIBS)

bench-queue: $(BUILD)/zygo-bench-queue

run: deps
	@$(MAKE) --no-print-directory all
	./$(BUILD)/zygo serve

test: deps
	@$(MAKE) --no-print-directory tests
	@scripts/test.sh $(VARIANT)

check: test

clean:
	rm -rf build

-include $(OBJ:.o=.d) $(TEST_OBJ:.o=.d) $(BUILD)/src/main.d

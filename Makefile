# A thin layer over meson: the two set-up commands (`make run`, `make test`)
# install what is missing from Debian, build, and go.
BUILD ?= build
MESON_OPTS ?= -Dwerror=true

# Build, test and run-time dependencies, all from Debian 12.
PACKAGES = meson ninja-build pkg-config gcc libc6-dev \
  libglib2.0-dev libjson-glib-dev libcups2-dev libmicrohttpd-dev \
  libcurl4-openssl-dev libssl-dev libsqlite3-dev libpoppler-glib-dev \
  libargon2-dev check libjpeg62-turbo-dev libpng-dev zlib1g-dev \
  cups cups-client cups-ipp-utils cups-filters avahi-daemon dbus \
  ghostscript qpdf poppler-utils openssl curl ca-certificates jq sqlite3 iproute2 \
  python3-aiosmtpd \
  libgtk-4-dev libcairo2-dev librsvg2-common xvfb python3-gi gettext fonts-ipafont-gothic \
  libavahi-client-dev avahi-utils gnome-keyring libsecret-1-dev libsecret-tools \
  at-spi2-core python3-pyatspi xdotool

.PHONY: all deps build run test test-sanitize bench fuzz clean

all: build

deps:
	@tools/install-deps.sh $(PACKAGES)

$(BUILD)/build.ninja:
	meson setup $(BUILD) $(MESON_OPTS)

build: deps $(BUILD)/build.ninja
	ninja -C $(BUILD)

run: build
	tools/run.sh $(BUILD)

test: build
	meson test -C $(BUILD) --print-errorlogs
	$(MAKE) test-sanitize

# Unit and fuzz-replay suites again under AddressSanitizer (with leak checks)
# and UndefinedBehaviorSanitizer; any report fails the run.
test-sanitize: deps
	[ -f $(BUILD)-asan/build.ninja ] || \
	  meson setup $(BUILD)-asan $(MESON_OPTS) -Db_sanitize=address,undefined -Db_lundef=false
	ninja -C $(BUILD)-asan
	ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 \
	UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1 \
	  meson test -C $(BUILD)-asan --suite unit --suite fuzz --print-errorlogs

bench: build
	tools/bench.sh $(BUILD)

fuzz: deps
	@tools/install-deps.sh clang libclang-rt-14-dev
	CC=clang meson setup build-fuzz -Dfuzz=true -Dtests=false --reconfigure 2>/dev/null || \
	  CC=clang meson setup build-fuzz -Dfuzz=true -Dtests=false
	ninja -C build-fuzz

clean:
	rm -rf $(BUILD) $(BUILD)-asan build-fuzz

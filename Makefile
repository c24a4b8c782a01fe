# Hamal — the two commands a new machine needs are `make demo` and `make test`.
GO      ?= go
VERSION ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
LDFLAGS := -X main.version=$(VERSION)
# Integration tests start real MariaDB servers. The e2e package alone has
# taken 15-25 minutes on two cores, longer on a loaded machine: the limit
# (per package) leaves it room.
TEST_TIMEOUT ?= 60m
# SLOW_PKGS are named before ./... so go test starts them first (it runs
# packages in the order given, -p at a time): the longest ones overlap
# with everything else instead of running alone at the end. Longest first.
SLOW_PKGS := ./test/e2e ./sink/mysql ./test/chaos ./sink/redis ./admin ./reshard ./source/mysql ./bench/mysql

.PHONY: all build test test-matrix test-mongo vet fmt demo clean deps chaos soak bench

all: build

build:
	$(GO) build -ldflags "$(LDFLAGS)" -o bin/hamal ./cmd/hamal

# deps installs the servers the tests and the demo start (Debian/Ubuntu,
# as root). The test harness does the same on demand; this is for humans.
deps:
	@{ { command -v mariadbd || [ -x /usr/sbin/mariadbd ]; } && command -v redis-server; } >/dev/null 2>&1 || \
	  { [ "$$(id -u)" = 0 ] && apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq mariadb-server mariadb-client redis-server redis-tools; } || \
	  { echo "install the test servers: sudo apt-get install -y mariadb-server redis-server"; exit 1; }

vet:
	@out=$$(gofmt -l $$(git ls-files '*.go' 2>/dev/null || find . -name '*.go')); \
	  if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi
	$(GO) vet ./...

# test runs every unit and integration test with the race detector. The
# end-to-end suites (test/e2e, test/chaos) run the bin/hamal that build
# made, through HAMAL_TEST_BIN, instead of each linking its own.
test: vet deps build
	HAMAL_TEST_BIN=$(CURDIR)/bin/hamal $(GO) test -race -count=1 -timeout $(TEST_TIMEOUT) $(SLOW_PKGS) ./...
	cd deploy/k8s && $(GO) test -count=1 ./...

# test-matrix runs the suites that take server settings on every row of
# the server-settings matrix (test/harness/settings.go: latin1 default,
# +08:00 with TZ Asia/Shanghai, ANSI_QUOTES+NO_BACKSLASH_ESCAPES,
# lower_case_table_names=1 on the target, binlog_row_metadata=MINIMAL
# refused); make test runs one row. The MySQL sink suite runs once per row,
# its shared target taking the row's settings.
MATRIX_ROWS := utf8mb4-utc latin1-default tz-shanghai ansi-quotes lower-case-target
MATRIX_E2E := TestMixedWorkloadSurvivesKill9|TestDualMasterNoEcho|TestMatrixRefusedRows
test-matrix: deps build
	@set -e; for row in $(MATRIX_ROWS); do \
	  echo "== sink/mysql on matrix row $$row"; \
	  HAMAL_MATRIX=$$row $(GO) test -race -count=1 -timeout $(TEST_TIMEOUT) ./sink/mysql; \
	done
	HAMAL_MATRIX=all HAMAL_TEST_BIN=$(CURDIR)/bin/hamal $(GO) test -race -count=1 -v -timeout $(TEST_TIMEOUT) -run '$(MATRIX_E2E)' ./test/e2e

# test-mongo runs the MongoDB sink against an embedded FerretDB, which
# make test skips: its cold build takes 10-45 minutes on 2 cores.
test-mongo:
	HAMAL_TEST_FERRETDB=1 $(GO) test -count=1 -timeout $(TEST_TIMEOUT) ./sink/mongo/...

# chaos runs the fault-injection suite at full size (30 s cuts, kill -9 of
# every process, source failover, lock contention, a failing checkpoint
# filesystem, a 1M-row transaction during a cut); make test runs a short
# version. See docs/reliability.md.
chaos: deps
	HAMAL_CHAOS=long $(GO) test -race -count=1 -v -timeout 90m ./test/chaos/

# soak runs a steady workload with a random fault every minute for
# DURATION, then checks the target and prints hamal's RSS and goroutines.
DURATION ?= 30m
soak: deps
	HAMAL_SOAK=$(DURATION) $(GO) test -race -count=1 -v -timeout 0 -run TestSoak ./test/chaos/

# bench runs every benchmark program under bench/ (one directory per
# engine, each a main package that starts its own servers, prints a table
# and cleans up): bench/mysql races Hamal against MariaDB's own parallel
# replica (docs/performance.md); bench/redis runs Hamal and, with
# BENCH_REDISSHAKE=/path/to/redis-shake, RedisShake side by side
# (docs/redis.md). BENCH_SCALE=0.05 runs a quick, smaller version. Never
# part of make test.
bench: deps
	@fail=0; for d in bench/*/; do \
	  ls $$d*.go >/dev/null 2>&1 || continue; \
	  echo "== $${d%/}"; $(GO) run ./$${d%/} || fail=1; \
	done; exit $$fail

# demo starts two local MariaDB servers, replicates a workload with hamal,
# shows status and lag, checks equality, and cleans up.
demo: deps
	$(GO) run ./test/demo

clean:
	rm -rf bin var

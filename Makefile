# imscloud: the two commands a newcomer needs.
#   make run    installs what is missing, builds, starts imscloud (embedded default, foreground)
#   make test   installs the test dependencies and runs the whole test suite
JOBS ?= $(shell nproc)
BUILD ?= build

.PHONY: all deps build run test bench clean lint

all: build

deps:
	tools/install-deps.sh build

build: deps
	cmake -S . -B $(BUILD) -DCMAKE_BUILD_TYPE=RelWithDebInfo -DIMS_TESTS=OFF >/dev/null
	cmake --build $(BUILD) -j$(JOBS)

run: build
	tools/dev-certs.sh run/certs
	$(BUILD)/imscloud -c etc/imscloud.conf

test:
	tools/run-tests.sh

bench:
	tools/install-deps.sh bench
	bench/run.sh

lint:
	tools/lint.sh

clean:
	rm -rf build build-* run

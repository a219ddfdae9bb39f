# Thin wrapper for people who have the toolchain; ./run.sh and ./test.sh also
# install missing packages.
.PHONY: build test run bench asan tsan clean

build:
	cmake --preset dev >/dev/null
	cmake --build --preset dev -j$$(nproc)

test:
	./test.sh

run:
	./run.sh

bench:
	cmake --preset release >/dev/null
	cmake --build --preset release -j$$(nproc)
	OPSC_BENCH_BIN=build/release/bin bash bench/run.sh

asan:
	cmake --preset asan >/dev/null
	cmake --build --preset asan -j$$(nproc)
	ctest --preset asan

tsan:
	cmake --preset tsan >/dev/null
	cmake --build --preset tsan -j$$(nproc)
	ctest --preset tsan

clean:
	rm -rf build

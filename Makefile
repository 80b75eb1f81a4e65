# Makefile - the README's commands. CMake does the building; this file only sequences it.
#
#   make run     set up, build, make the default model if missing, start the daemon
#   make test    set up, build, run the whole suite (unit + integration)
#   make asan    the suite again under AddressSanitizer + UndefinedBehaviorSanitizer

BUILD      ?= build
JOBS       ?= $(shell nproc)
HOME_DIR   ?= $(or $(PRECHARGE_HOME),$(HOME)/.precharge)
MODEL      ?= tinyllama-random
SETUP_OK    = deps/llama/.stamp

.PHONY: all deps build run test asan format clean

all: build

deps:
	@bash scripts/setup.sh

$(SETUP_OK): scripts/setup.sh deps/llama.lock
	@bash scripts/setup.sh

$(BUILD)/Makefile: $(SETUP_OK) CMakeLists.txt
	cmake -S . -B $(BUILD) -DCMAKE_BUILD_TYPE=RelWithDebInfo

build: $(BUILD)/Makefile
	@bash scripts/setup.sh debs
	cmake --build $(BUILD) -j $(JOBS)

# The default model: TinyLlama's shape with random weights, made here because no weights can
# be downloaded. Its answers are noise; its speed and memory are those of the real thing.
$(HOME_DIR)/models/$(MODEL).gguf: | build
	@mkdir -p $(HOME_DIR)/models
	$(BUILD)/bin/mkmodel --preset tinyllama --name "$(MODEL) (random weights)" -o $@

run: build $(HOME_DIR)/models/$(MODEL).gguf
	PRECHARGE_HOME=$(HOME_DIR) $(BUILD)/bin/precharge serve --preload $(MODEL)

# The whole suite, then the same suite under ASan+UBSan.
test: build
	cd $(BUILD) && ctest --output-on-failure -j $(JOBS)
	$(MAKE) asan

asan: $(SETUP_OK)
	@bash scripts/setup.sh debs
	cmake -S . -B build-asan -DCMAKE_BUILD_TYPE=Debug -DPC_SANITIZE=ON
	cmake --build build-asan -j $(JOBS)
	cd build-asan && ctest --output-on-failure -j $(JOBS)

format:
	clang-format -i $$(git ls-files '*.c' '*.h' '*.cpp')

clean:
	rm -rf $(BUILD) build-asan

# pyeunomia: `make run` sets everything up and traces; `make test` checks it all.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-$(shell cat pyproject.toml | cksum | cut -d' ' -f1)

# What running needs, what compiling packages needs, and what tests add.
APT_RUN := libbpf1
APT_BUILD := clang llvm bpftool libbpf-dev
APT_TEST := $(APT_RUN) $(APT_BUILD) prometheus gcc openssl util-linux docker-registry apache2-utils \
	iproute2 podman runc mmdebstrap debian-archive-keyring containerd
APT_BENCH := $(APT_RUN) $(APT_BUILD) bpftrace libbpf-tools gcc util-linux coreutils
APT_KERNELS := $(APT_BUILD) gcc qemu-system-x86 mmdebstrap debian-archive-keyring lz4 zstd
APT_TOOLCHAIN := apt dpkg binutils debian-archive-keyring

# ecc's current libbpf headers and bpftool (Debian 12 has libbpf-dev 1.1 and bpftool 7.1): fetched from
# bookworm-backports by scripts/toolchain.py into a private prefix (/var/cache/pyeunomia/toolchain when
# writable, shared by every checkout) that the venv links to; the system's packages and sources are untouched.
TOOLCHAIN_LINK := $(VENV)/share/pyeunomia/toolchain
TOOLCHAIN := $(TOOLCHAIN_LINK)/toolchain.json

.PHONY: run test lint unit e2e bench soak deps deps-test clean test-kernels toolchain

run: deps
	$(BIN)/opensnoop

bench: $(STAMP) $(TOOLCHAIN)
	@scripts/apt-ensure $(APT_BENCH)
	@$(BIN)/python -m compileall -q src >/dev/null
	$(BIN)/python bench/run.py

soak: $(STAMP)
	@scripts/apt-ensure $(APT_BENCH)
	$(BIN)/python bench/soak.py --seconds 600 --write

test: deps-test lint
	$(BIN)/pytest -q

lint: $(STAMP)
	$(BIN)/ruff check src tests bench kernel_matrix scripts
	$(BIN)/mypy
	$(BIN)/mypy kernel_matrix scripts/toolchain.py

# Compile once, run everywhere: packages built here run in qemu guests with Debian's
# 5.10, 6.1 and 6.12 kernels (kernel_matrix/; KERNEL_MATRIX_ARGS="--kernel 6.1 --only opensnoop").
test-kernels: $(STAMP) $(TOOLCHAIN)
	@scripts/apt-ensure $(APT_KERNELS)
	$(BIN)/python -m kernel_matrix $(KERNEL_MATRIX_ARGS)

unit: $(STAMP)
	$(BIN)/pytest -q tests --ignore=tests/e2e

e2e: deps-test
	$(BIN)/pytest -q tests/e2e

deps: $(STAMP) $(TOOLCHAIN)
	@scripts/apt-ensure $(APT_RUN)
	@$(BIN)/python -m compileall -q src >/dev/null  # start-up reads bytecode even where writing it is off


deps-test: $(STAMP) $(TOOLCHAIN)
	@scripts/apt-ensure $(APT_TEST)
	@$(BIN)/python -m compileall -q src >/dev/null

toolchain: $(TOOLCHAIN)

# Order-only on the venv: a newer venv does not mean a new toolchain. A second run finds the file and does nothing.
$(TOOLCHAIN): | $(STAMP)
	@scripts/apt-ensure $(APT_TOOLCHAIN)
	@$(BIN)/python scripts/toolchain.py --link $(TOOLCHAIN_LINK)

$(STAMP): pyproject.toml
	@$(PYTHON) -c 'import sys; sys.exit(sys.version_info < (3, 11))' || \
		{ echo "pyeunomia needs Python 3.11 or newer as $(PYTHON)" >&2; exit 1; }
	@[ -x $(BIN)/python ] || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --disable-pip-version-check -e '.[test]'
	@rm -f $(VENV)/.installed-* && touch $@

clean:
	rm -rf $(VENV) build src/*.egg-info .pytest_cache .mypy_cache .ruff_cache

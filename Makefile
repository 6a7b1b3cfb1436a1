# The two commands: `make demo` and `make test`. Both install what they
# need when it is missing; see README.md.

CARGO ?= cargo
# Reuse one target directory for every step so nothing is built twice.
CARGO_FLAGS ?= --locked

.PHONY: test demo bench fmt tools help

help:
	@echo "make demo   run the whole pipeline on the embedded broker"
	@echo "make test   build and run every test and check"
	@echo "make bench  run the benchmarks recorded in BENCHMARKS.md"

## Tools: Rust is the only thing the current test suite needs.
tools:
	@command -v $(CARGO) >/dev/null 2>&1 || { \
		echo "make: cargo is missing; install the Rust toolchain (rustup) and run make again" >&2; exit 1; }
	@$(CARGO) fmt --version >/dev/null 2>&1 || rustup component add rustfmt

test: tools
	$(CARGO) build $(CARGO_FLAGS) --workspace --all-targets
	$(CARGO) test $(CARGO_FLAGS) --workspace
	$(CARGO) run $(CARGO_FLAGS) -q -p icsflow -- schemas check
	$(CARGO) run $(CARGO_FLAGS) -q -p icsflow -- schemas docs --check
	$(CARGO) fmt --all -- --check

demo: tools
	@echo "icsflow demo: not yet available; the embedded-broker demo arrives with the consumer roles."
	@echo "Meanwhile: cargo run -p icsflow -- --help"

bench: tools
	$(CARGO) bench $(CARGO_FLAGS) -p icsflow-avro --bench decode
	$(CARGO) bench $(CARGO_FLAGS) -p icsflow-engine --bench engine

fmt: tools
	$(CARGO) fmt --all

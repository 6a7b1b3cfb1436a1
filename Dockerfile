# The icsflow image: one binary for every role and tool.
#   docker build -t icsflow:0.1.0 .
# Used by deploy/compose (built there) and deploy/k8s (pushed to your
# registry, then set in the overlay's `images:`).

FROM rust:1.95-bookworm AS build
# librdkafka is built from source by rdkafka-sys, against OpenSSL and zlib.
RUN apt-get update \
    && apt-get install -y --no-install-recommends libssl-dev zlib1g-dev pkg-config cmake \
    && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY Cargo.toml Cargo.lock ./
COPY crates crates
COPY schemas schemas
# The demo ICS's reference data is compiled in (`icsflow demo`, tests).
COPY deploy/config/reference.toml deploy/config/reference.toml
RUN cargo build --release --locked -p icsflow

FROM debian:bookworm-slim
RUN apt-get update \
    && apt-get install -y --no-install-recommends libssl3 zlib1g ca-certificates \
    && rm -rf /var/lib/apt/lists/*
COPY --from=build /src/target/release/icsflow /usr/local/bin/icsflow
COPY deploy/config/icsflow.example.toml /etc/icsflow/icsflow.toml
# The example names `reference.toml` next to it: the demo ICS's, to be
# replaced by the ICS's own (a mounted file or ConfigMap).
COPY deploy/config/reference.toml /etc/icsflow/reference.toml
# In a container the admin port must be reached from outside it (probes,
# Prometheus); the binary's own default is this machine only.
ENV ICSFLOW__ADMIN__ADDR=0.0.0.0:9464
# Not root; no write access needed anywhere.
USER 65532:65532
# 9464: /metrics, /healthz, /readyz. 9465: the published view, if enabled.
EXPOSE 9464 9465
ENTRYPOINT ["icsflow"]
CMD ["--help"]

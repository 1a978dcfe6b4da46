# syntax=docker/dockerfile:1
# Builds the pos-gateway binary, then runs it as a non-root user on a slim Debian.
# (rust-toolchain.toml is left out by .dockerignore: the image's toolchain is used; the
# workspace needs Rust 1.88 or later.)
FROM rust:1-bookworm AS build
WORKDIR /src
COPY . .
# The registry and target directories are BuildKit caches, so a change to the gateway's code
# does not rebuild every dependency; the binary is copied out of the cache in the same step.
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    --mount=type=cache,target=/usr/local/cargo/git \
    --mount=type=cache,target=/src/target \
    cargo build --release --locked -p pos-gateway \
    && cp target/release/pos-gateway /usr/local/bin/pos-gateway

FROM debian:bookworm-slim
# ca-certificates is left unpinned on purpose: bookworm's security updates must reach it.
# hadolint ignore=DL3008
RUN apt-get update \
    && apt-get install -y --no-install-recommends ca-certificates \
    && rm -rf /var/lib/apt/lists/* \
    && groupadd --system --gid 10001 pos-gateway \
    && useradd --system --uid 10001 --gid 10001 --home-dir /var/lib/pos-gateway --create-home pos-gateway
COPY --from=build /usr/local/bin/pos-gateway /usr/local/bin/pos-gateway
# A numeric user, so that Kubernetes' runAsNonRoot can tell it is not root without reading
# /etc/passwd (with a user name it refuses to start the container).
USER 10001:10001
WORKDIR /var/lib/pos-gateway
ENV POS_GATEWAY_LISTEN=0.0.0.0:8080
# 8080: the API (POS_GATEWAY_LISTEN). Deployments add an operations listener
# (POS_GATEWAY_OPS_LISTEN, 9090 in docker-compose.yml and deploy/k8s/), never published.
EXPOSE 8080
ENTRYPOINT ["pos-gateway"]
CMD ["serve"]

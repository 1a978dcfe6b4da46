# Builds the pos-gateway binary, then runs it as a non-root user on a slim Debian.
# (rust-toolchain.toml is left out by .dockerignore: the image's toolchain is used.)
FROM rust:1-bookworm AS build
WORKDIR /src
COPY . .
RUN cargo build --release --locked -p pos-gateway

FROM debian:bookworm-slim
RUN apt-get update \
    && apt-get install -y --no-install-recommends ca-certificates \
    && rm -rf /var/lib/apt/lists/* \
    && useradd --system --home-dir /var/lib/pos-gateway --create-home pos-gateway
COPY --from=build /src/target/release/pos-gateway /usr/local/bin/pos-gateway
USER pos-gateway
WORKDIR /var/lib/pos-gateway
ENV POS_GATEWAY_LISTEN=0.0.0.0:8080
EXPOSE 8080
ENTRYPOINT ["pos-gateway"]
CMD ["serve"]

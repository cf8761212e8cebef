# syntax=docker/dockerfile:1.7
# The one Osprey image: `osprey coordinator`, `osprey executor`, `osprey shell` and `osprey
# local` are all this binary. Build from the repository root:
#
#     docker build -t osprey:dev .
#
# The build stage keeps Cargo's registry and target directory in BuildKit cache mounts, so a
# rebuild after a source change recompiles Osprey's crates, not its dependencies. The runtime
# stage is Debian slim with the binary, CA certificates (TLS to object stores) and tini, run
# as an unprivileged user; it has no compiler, no Cargo and no package manager caches.

ARG RUST_VERSION=1.95
ARG DEBIAN_RELEASE=bookworm

FROM rust:${RUST_VERSION}-slim-${DEBIAN_RELEASE} AS build
WORKDIR /src
COPY . .
RUN --mount=type=cache,target=/usr/local/cargo/registry,sharing=locked \
    --mount=type=cache,target=/usr/local/cargo/git,sharing=locked \
    --mount=type=cache,target=/src/target,sharing=locked \
    cargo build --release --locked --bin osprey \
    && install -D -m 0755 target/release/osprey /out/osprey

FROM debian:${DEBIAN_RELEASE}-slim AS runtime
RUN apt-get update \
    && apt-get install -y --no-install-recommends ca-certificates tini \
    && rm -rf /var/lib/apt/lists/* \
    && groupadd --system --gid 10001 osprey \
    && useradd --system --uid 10001 --gid osprey --home-dir /var/lib/osprey \
       --shell /usr/sbin/nologin osprey \
    && install -d -o osprey -g osprey /var/lib/osprey /var/lib/osprey/spill
COPY --from=build /out/osprey /usr/local/bin/osprey
USER 10001:10001
WORKDIR /var/lib/osprey
# Flight SQL, HTTP, executor gRPC, executor health.
EXPOSE 50051 8080 50061 8081
ENTRYPOINT ["/usr/bin/tini", "--", "/usr/local/bin/osprey"]
CMD ["--help"]

# The conformance runner and the reference server in a small image, for CI systems that would
# rather pull a container than build Rust.
#
#   docker build -t echowire .
#   docker run --rm --network host echowire --target 127.0.0.1:9000 --junit - > report.xml
#   docker run --rm echowire                      # the suite against the embedded reference
#   docker run --rm --entrypoint echowire-server echowire --listen 0.0.0.0:9000
#
# Not built by this repository's CI (no container engine on its machines); `.ci/run` builds the
# same two binaries and runs the main job with them.

FROM rust:1.88-slim-bookworm AS build
WORKDIR /src
COPY . .
RUN cargo build --release --locked -p echowire-conformance -p echowire-server \
 && strip target/release/echowire-conformance target/release/echowire-server

FROM debian:bookworm-slim
# python3 only for --exec templates that start a Python implementation; drop it if yours is not.
RUN apt-get update && apt-get install -y --no-install-recommends python3 ca-certificates \
 && rm -rf /var/lib/apt/lists/*
COPY --from=build /src/target/release/echowire-conformance /usr/local/bin/
COPY --from=build /src/target/release/echowire-server /usr/local/bin/
ENTRYPOINT ["echowire-conformance"]

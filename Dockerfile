# Build the service, then run it on a slim image. Reference data is mounted at run time
# (docker-compose.yml), never baked into the image. .dockerignore keeps target/ and .git out of
# the build context.
FROM rust:1.95-bookworm AS build
RUN apt-get update && apt-get install -y --no-install-recommends libpq-dev && rm -rf /var/lib/apt/lists/*
WORKDIR /src
# Everything `cargo build` reads: the manifest, the build script, the sources, and what the
# sources embed at compile time (migrations, knowledge/, the console's templates/ and assets/);
# benches/ because Cargo.toml declares it.
COPY Cargo.toml Cargo.lock build.rs ./
COPY src ./src
COPY migrations ./migrations
COPY knowledge ./knowledge
COPY templates ./templates
COPY assets ./assets
COPY benches ./benches
RUN cargo build --release --locked

FROM debian:bookworm-slim
RUN apt-get update && apt-get install -y --no-install-recommends libpq5 ca-certificates \
    && rm -rf /var/lib/apt/lists/* \
    && useradd --system --no-create-home --uid 10001 symbiose
WORKDIR /srv/symbiose
COPY --from=build /src/target/release/symbiose /usr/local/bin/symbiose
COPY config ./config
ENV SYMBIOSE_ENV=production
USER 10001
EXPOSE 8080
# `symbiose health` probes /health/ready: there is no curl in this image.
HEALTHCHECK --interval=10s --timeout=5s --start-period=60s --retries=3 CMD ["symbiose", "health"]
CMD ["symbiose", "serve"]

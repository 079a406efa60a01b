# Build the service, then run it on a slim image. Reference data is mounted at run time
# (docker-compose.yml), never baked into the image.
FROM rust:1.95-bookworm AS build
RUN apt-get update && apt-get install -y --no-install-recommends libpq-dev && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY Cargo.toml Cargo.lock build.rs ./
COPY src ./src
COPY migrations ./migrations
COPY knowledge ./knowledge
COPY benches ./benches
RUN cargo build --release --locked

FROM debian:bookworm-slim
RUN apt-get update && apt-get install -y --no-install-recommends libpq5 ca-certificates && rm -rf /var/lib/apt/lists/*
WORKDIR /srv/symbiose
COPY --from=build /src/target/release/symbiose /usr/local/bin/symbiose
COPY config ./config
ENV SYMBIOSE_ENV=production
EXPOSE 8080
CMD ["symbiose", "serve"]

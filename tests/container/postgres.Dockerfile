# PostgreSQL 15 from Debian's package, for `make container-test` only: a
# throwaway cluster with trust authentication and fsync off, listening on
# 127.0.0.1:$PGPORT (the test runs it with --network host).
FROM debian:bookworm-slim

RUN apt-get update \
    && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends postgresql-15 \
    && apt-get clean \
    && rm -rf /var/lib/apt/lists/*

COPY postgres-entrypoint.sh /usr/local/bin/postgres-entrypoint.sh
USER postgres
ENV PGPORT=5432 PGDATA=/var/lib/postgresql/test-cluster
ENTRYPOINT ["/usr/local/bin/postgres-entrypoint.sh"]

# syntax=docker/dockerfile:1
# The production image: the `dispenser` command as compiled JavaScript (deploy/image/bundle.ts)
# beside production dependencies only; no TypeScript, tsx or test tools. One image, every role:
#   docker run dispenser ledger --help
#   docker run dispenser edge --help
#   docker run dispenser status --edge edge:50051
# The `certs` target is the dev CA recipe (deploy/certs/make-dev-certs.sh) with openssl, for the
# compose setup's one-shot certificate job.

# Only the files `pnpm install` reads, so the dependency layers below are rebuilt only when one of
# them changes, not on every source edit.
FROM node:20-slim AS manifests
WORKDIR /src
COPY . .
RUN find . -type f ! -name package.json ! -name pnpm-lock.yaml ! -name pnpm-workspace.yaml ! -name .npmrc -delete \
  && find . -depth -type d -empty -delete

# Every dependency, the sources, and the bundle.
FROM node:20-slim AS build
RUN npm i -g pnpm@10.34.9 && npm cache clean --force
WORKDIR /src
COPY --from=manifests /src/ ./
RUN pnpm install --frozen-lockfile
COPY . .
RUN pnpm build

# Production dependencies only, in a flat node_modules the bundle resolves from.
FROM node:20-slim AS deps
RUN npm i -g pnpm@10.34.9 && npm cache clean --force
WORKDIR /app
COPY --from=manifests /src/ ./
RUN pnpm install --prod --frozen-lockfile --config.node-linker=hoisted

FROM debian:bookworm-slim AS certs
RUN apt-get update && apt-get install -y --no-install-recommends openssl && rm -rf /var/lib/apt/lists/*
COPY deploy/certs/make-dev-certs.sh /usr/local/bin/make-dev-certs.sh
ENTRYPOINT ["/usr/local/bin/make-dev-certs.sh"]

FROM node:20-slim
WORKDIR /app
COPY --from=deps /app/node_modules ./node_modules
COPY --from=build /src/dist ./dist
# Data directories (ledger LevelDB, edge journal) are mounted here; owned by the unprivileged user.
RUN mkdir -p /data && chown node:node /data
USER node
# 7100 ledger clients, 7200 ledger peers, 9100 ledger metrics, 6380 RESP, 6390 RESP over TLS,
# 50051 edge gRPC, 9464 edge metrics.
EXPOSE 7100 7200 9100 6380 6390 50051 9464
ENTRYPOINT ["node", "/app/dist/bin/dispenser.mjs"]
CMD ["--help"]

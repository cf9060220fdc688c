# syntax=docker/dockerfile:1
# One image for both processes. The command picks the entry point:
#   docker run dispenser packages/ledger/src/main.ts --help
#   docker run dispenser packages/edge/src/main.ts --help
#   docker run dispenser packages/cli/src/main.ts status --edge edge:50051

# Only the files `pnpm install` reads, so the dependency layer below is rebuilt only when one of
# them changes, not on every source edit.
FROM node:20-slim AS manifests
WORKDIR /src
COPY . .
RUN find . -type f ! -name package.json ! -name pnpm-lock.yaml ! -name pnpm-workspace.yaml ! -name .npmrc -delete \
  && find . -depth -type d -empty -delete

FROM node:20-slim
RUN npm i -g pnpm@10.34.9 && npm cache clean --force
WORKDIR /app
COPY --from=manifests /src/ ./
RUN pnpm install --frozen-lockfile --prod=false && pnpm store prune
COPY . .
# Data directories (ledger LevelDB, edge journal) are mounted here; owned by the unprivileged user.
RUN mkdir -p /data && chown node:node /data
USER node
# 7100 ledger gRPC (peers and clients), 9100 ledger metrics, 6380 RESP, 50051 edge gRPC, 9464 edge metrics.
EXPOSE 7100 9100 6380 50051 9464
ENTRYPOINT ["node", "--import", "tsx"]
CMD ["packages/cli/src/main.ts", "--help"]

# syntax=docker/dockerfile:1
# The control plane. Build from the repository root:  docker build -t sandbox-mounts .
# Production runs with no local agent (LOCAL_SANDBOX is empty): sandboxes are registered by
# the orchestrator and served by the agent inside each VM (images/sandbox/).

ARG NODE_IMAGE=node:20-bookworm-slim

FROM ${NODE_IMAGE} AS build
WORKDIR /app
# better-sqlite3 compiles from source when no prebuilt binary matches the platform.
RUN apt-get update \
 && apt-get install -y --no-install-recommends python3 make g++ \
 && rm -rf /var/lib/apt/lists/*
COPY package.json package-lock.json ./
RUN npm ci --no-audit --no-fund
COPY tsconfig.json tsconfig.build.json ./
COPY src ./src
COPY routes ./routes
COPY bench ./bench
RUN npm run build && npm prune --omit=dev --no-audit --no-fund

FROM ${NODE_IMAGE} AS runtime
# tini is PID 1: it forwards SIGTERM to node (graceful close) and reaps children.
RUN apt-get update \
 && apt-get install -y --no-install-recommends tini \
 && rm -rf /var/lib/apt/lists/* \
 && mkdir -p /var/lib/sandbox-mounts \
 && chown node:node /var/lib/sandbox-mounts \
 && chmod 0700 /var/lib/sandbox-mounts
WORKDIR /app
COPY --from=build /app/package.json ./package.json
COPY --from=build /app/node_modules ./node_modules
COPY --from=build /app/dist ./dist
COPY templates ./templates
COPY openapi.yaml ./openapi.yaml
ENV HOST=0.0.0.0 \
    PORT=8080 \
    DATA_DIR=/var/lib/sandbox-mounts \
    LOCAL_SANDBOX=
USER node
EXPOSE 8080
VOLUME ["/var/lib/sandbox-mounts"]
HEALTHCHECK --interval=30s --timeout=3s \
  CMD ["node", "-e", "fetch('http://127.0.0.1:' + (process.env.PORT || 8080) + '/readyz').then(r => process.exit(r.ok ? 0 : 1), () => process.exit(1))"]
ENTRYPOINT ["/usr/bin/tini", "--"]
CMD ["node", "dist/src/server.js"]

# syntax=docker/dockerfile:1
#
# Lanekeeper images: one multi-target file for both services.
#
#   docker build --target proxy         -t lanekeeper/proxy .
#   docker build --target control-plane -t lanekeeper/control-plane .
#
# Why one file at the root and not proxy/Dockerfile + control-plane/Dockerfile: the two
# packages (and the contract/ package both depend on) are npm workspaces of one repository with ONE package-lock.json, and both run
# through the same `lanekeeper` CLI (proxy/bin/lanekeeper.js). Both images therefore need
# the root as build context, share the TypeScript build stage, and differ only in which
# production dependencies they install, the command, the port and the health check. One
# file builds the shared stages once (BuildKit caches them across both targets).
#
# Signals: tini is PID 1. It forwards SIGTERM to node (which drains in-flight requests and
# streams itself, up to shutdown_grace_ms) and reaps any child process, and it returns the
# child's exit code. Give Kubernetes/compose a termination grace period longer than the
# drain grace period.

ARG NODE_IMAGE=node:24-slim

# ---------------------------------------------------------------------------------------
# build: full install (dev dependencies included) and `tsc` to dist/.
FROM ${NODE_IMAGE} AS build
WORKDIR /app
COPY package.json package-lock.json ./
COPY contract/package.json contract/package.json
COPY proxy/package.json proxy/package.json
COPY control-plane/package.json control-plane/package.json
# --ignore-scripts: nothing we build needs an install script (tsc is plain JS).
RUN npm ci --ignore-scripts --no-audit --no-fund
COPY tsconfig.base.json tsconfig.build.json ./
COPY contract contract
COPY proxy proxy
COPY control-plane control-plane
# `npm run build` is tsc plus scripts/copy-build-assets.mjs, which puts the files the code
# loads relative to itself (Lua scripts, SQL migrations) at the same place under dist/.
COPY scripts scripts
RUN npm run build

# ---------------------------------------------------------------------------------------
# runtime: the common base of both images: tini, a non-root user, a writable state dir.
FROM ${NODE_IMAGE} AS runtime
RUN apt-get update \
 && apt-get install -y --no-install-recommends tini \
 && rm -rf /var/lib/apt/lists/* \
 && mkdir -p /var/lib/lanekeeper /etc/lanekeeper \
 && chown node:node /var/lib/lanekeeper
ENV NODE_ENV=production
WORKDIR /app
COPY package.json package-lock.json ./
COPY contract/package.json contract/package.json
COPY proxy/package.json proxy/package.json
COPY control-plane/package.json control-plane/package.json
ENTRYPOINT ["/usr/bin/tini", "--"]
STOPSIGNAL SIGTERM

# ---------------------------------------------------------------------------------------
# proxy: only the proxy workspace's production dependencies.
FROM runtime AS proxy
RUN npm ci --omit=dev --ignore-scripts --no-audit --no-fund --workspace proxy \
 && npm cache clean --force
COPY proxy proxy
COPY --from=build /app/dist dist
USER node
EXPOSE 8080 9464
HEALTHCHECK --interval=10s --timeout=3s --start-period=10s --retries=3 \
  CMD ["node", "-e", "fetch(process.env.LANEKEEPER_HEALTH_URL||'http://127.0.0.1:9464/healthz',{signal:AbortSignal.timeout(2500)}).then(r=>process.exit(r.ok?0:1),()=>process.exit(1))"]
# Mount the config at /etc/lanekeeper/config.yaml (a ConfigMap, or a file in compose). It must
# set admin_listen: "0.0.0.0:9464" so probes and Prometheus reach the admin port.
# A young generation that never shrinks below 16 MiB: at a moderate rate V8 shrinks it to
# 1-3 MiB, so request garbage gets promoted and full collections (10-50 ms pauses) follow
# every few seconds; docs/performance.md, "After a burst". NODE_OPTIONS cannot carry it.
CMD ["node", "--min-semi-space-size=16", "proxy/bin/lanekeeper.js", "proxy", "--config", "/etc/lanekeeper/config.yaml"]

# ---------------------------------------------------------------------------------------
# control-plane: both workspaces (the CLI lives in proxy/, the service in control-plane/).
FROM runtime AS control-plane
RUN npm ci --omit=dev --ignore-scripts --no-audit --no-fund \
 && npm cache clean --force
COPY proxy proxy
COPY control-plane control-plane
COPY --from=build /app/dist dist
# The CLI loads the control plane by its package name, whose "exports" point at the
# TypeScript sources (for tsx in development). In the image the compiled code runs, so the
# workspace link is replaced by a two-file package that re-exports dist/.
RUN rm node_modules/@lanekeeper/control-plane \
 && mkdir node_modules/@lanekeeper/control-plane \
 && printf '{"name":"@lanekeeper/control-plane","type":"module","exports":{".":"./index.js"}}\n' \
      > node_modules/@lanekeeper/control-plane/package.json \
 && printf "export * from '../../../dist/control-plane/src/main.js';\n" \
      > node_modules/@lanekeeper/control-plane/index.js
ENV PORT=8081
USER node
EXPOSE 8081
HEALTHCHECK --interval=10s --timeout=3s --start-period=20s --retries=3 \
  CMD ["node", "-e", "fetch('http://127.0.0.1:'+(process.env.PORT||8081)+'/healthz',{signal:AbortSignal.timeout(2500)}).then(r=>process.exit(r.ok?0:1),()=>process.exit(1))"]
# `migrate` is a separate command (compose runs it first; the chart runs it as a hook Job).
CMD ["node", "proxy/bin/lanekeeper.js", "control-plane"]

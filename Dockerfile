# Image for Fly.io (see fly.toml). Chromium comes from @sparticuz/chromium.
FROM node:24-bookworm-slim AS build
WORKDIR /app
COPY package.json package-lock.json ./
RUN npm ci --no-audit --no-fund
COPY . .
RUN npm run build && npm prune --omit=dev

FROM node:24-bookworm-slim
RUN apt-get update \
 && apt-get install -y --no-install-recommends libnss3 libexpat1 ca-certificates tini \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /app
COPY --from=build /app/package.json ./
COPY --from=build /app/node_modules ./node_modules
COPY --from=build /app/dist ./dist
# The console's page and style sheet (its scripts are compiled into dist/public).
COPY --from=build /app/public ./public
# The state file (SESSION_SEAL_KEY without REDIS_URL: sessions survive a
# restart of the container) lives in /data, a volume owned by the node user.
RUN mkdir -p /data && chown node:node /data && chmod 700 /data
ENV HOST=0.0.0.0 PORT=3010 STATE_DIR=/data
VOLUME ["/data"]
EXPOSE 3010
USER node
# tini reaps Chromium's helper processes and forwards SIGTERM.
ENTRYPOINT ["/usr/bin/tini", "--"]
CMD ["node", "dist/server.js"]

# numguard controller. Build: docker build -t numguard .   Run: see docker-compose.yml.
FROM node:20 AS build
WORKDIR /app
COPY package.json package-lock.json ./
RUN npm ci
COPY tsconfig.json tsconfig.build.json ./
COPY src ./src
RUN npm run build

FROM node:20-slim
ENV NODE_ENV=production
WORKDIR /app
COPY package.json package-lock.json ./
RUN npm ci --omit=dev && npm cache clean --force
COPY --from=build /app/dist ./dist
# tsc does not copy the SQL migrations; put them where dist/stores/migrate.js looks first.
COPY src/stores/migrations ./dist/stores/migrations
# Likewise the Redis Lua scripts, where dist/stores/redis.js looks first.
COPY src/stores/lua ./dist/stores/lua
# SIP texts waiting for Redis (MESSAGE_SPOOL_DIR); a named volume mounted here keeps this owner.
RUN mkdir -p /var/lib/numguard/message-spool && chown -R node:node /var/lib/numguard
USER node
# A young generation of 64 MiB semi-spaces (V8's default is 16): under load a request lives tens of
# ms, and with the default most of them were copied and promoted before they ended (README, "Write
# throughput"). Override NODE_OPTIONS to change it.
ENV NODE_OPTIONS=--max-semi-space-size=64
CMD ["node", "dist/main.js"]

# syntax=docker/dockerfile:1
# adgate gateway image. Two stages: build (compilers for the simdjson addon, dev dependencies,
# tsc) and run (production dependencies and the compiled output only, as the unprivileged user).

FROM node:20-bookworm AS build
WORKDIR /app
# node-gyp builds simdjson against the headers shipped in the image instead of downloading them.
ENV npm_config_nodedir=/usr/local
COPY package.json package-lock.json ./
# The native JSON → Avro addon is a file: dependency that npm ci builds (see native/).
COPY native ./native
RUN npm ci
COPY tsconfig.json ./
COPY bin ./bin
COPY cli ./cli
COPY config ./config
COPY decoders ./decoders
COPY events ./events
COPY gateway ./gateway
COPY generator ./generator
COPY kafka ./kafka
COPY quality ./quality
COPY schemas ./schemas
COPY workers ./workers
RUN npm run build && npm prune --omit=dev

FROM node:20-bookworm-slim
WORKDIR /app
ENV NODE_ENV=production PORT=8080 HOST=0.0.0.0 ADGATE_DATA_DIR=/app/data
COPY --from=build /app/package.json ./
COPY --from=build /app/node_modules ./node_modules
# node_modules/@adgate/native links to native/: its loader and the built addon.
COPY --from=build /app/native/package.json /app/native/index.js ./native/
COPY --from=build /app/native/build/Release/adgate_native.node ./native/build/Release/
COPY --from=build /app/dist ./dist
COPY --from=build /app/bin ./bin
COPY --from=build /app/schemas ./schemas
# The shipped data-quality rules (ADGATE_QUALITY_RULES=default) are read at start-up.
COPY --from=build /app/quality/default-rules.yaml ./quality/default-rules.yaml
RUN mkdir -p /app/data && chown node:node /app/data
USER node
EXPOSE 8080
HEALTHCHECK --interval=10s --timeout=3s --start-period=20s --retries=3 \
  CMD node -e "fetch('http://127.0.0.1:'+(process.env.PORT||8080)+'/healthz').then(r=>process.exit(r.ok?0:1),()=>process.exit(1))"
# SIGTERM drains in-flight requests and flushes Kafka before exiting (ADGATE_SHUTDOWN_TIMEOUT_MS).
STOPSIGNAL SIGTERM
ENTRYPOINT ["node", "dist/cli/main.js"]
CMD ["gateway"]

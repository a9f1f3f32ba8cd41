// Prometheus metrics (prom-client) on their own port, METRICS_PORT (0: off).
// Fly.io scrapes it over its private network ([metrics] in fly.toml); the
// port is not one of the app's public services, so the API key guards
// nothing here and nothing here needs it. Labels carry no key, URL or user:
// `machine` (a default label on every metric) is the instance id, `code` an error code from the catalogue.
import fp from 'fastify-plugin'
import type { FastifyPluginAsync, FastifyRequest } from 'fastify'
import { createServer } from 'node:http'
import { once } from 'node:events'
import type { AddressInfo } from 'node:net'
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client'
import type { ServiceError } from '../lib/errors.ts'

export interface Metrics {
  registry: Registry
  handshakes: Counter
  logins: Counter<'result' | 'code'>
  loginSeconds: Histogram<'result'>
  loginStageSeconds: Histogram<'stage' | 'result'>
  relogins: Counter<'result'>
  handovers: Counter<'direction' | 'result'>
  recoveries: Counter<'result'>
  replays: Counter<'kind'>
  registryErrors: Counter
  egressRefused: Counter<'reason'>
  egressBytes: Counter<'direction'>
}

declare module 'fastify' {
  interface FastifyInstance { metrics: Metrics }
  interface FastifyRequest { errorCode?: string }
}

const metricsPlugin: FastifyPluginAsync = async (fastify) => {
  const { config, sessions } = fastify
  const machine = config.instanceId
  const registry = new Registry()
  registry.setDefaultLabels({ machine })
  // The process metrics sample the event loop every 10 ms and observe every
  // GC: a steady wake-up of an idle service (measured: ~0.9 % of a core with
  // no session, docs/benchmarks.md). Only when something scrapes them.
  if (config.METRICS_PORT > 0) collectDefaultMetrics({ register: registry })
  const m: Metrics = {
    registry,
    handshakes: new Counter({ name: 'foundry_handshakes_total', help: 'Handshakes made', registers: [registry] }),
    logins: new Counter({ name: 'foundry_logins_total', help: 'start-session answers: ok, or failed with its error code', labelNames: ['result', 'code'], registers: [registry] }),
    loginSeconds: new Histogram({ name: 'foundry_login_duration_seconds', help: 'Time start-session took to answer, by result', labelNames: ['result'], buckets: [0.25, 0.5, 1, 2, 5, 10, 20, 40, 80, 160], registers: [registry] }),
    loginStageSeconds: new Histogram({ name: 'foundry_login_stage_duration_seconds', help: 'Time each stage of a login (first or again) took; result failed: the stage the login failed in', labelNames: ['stage', 'result'], buckets: [0.1, 0.25, 0.5, 1, 2, 5, 10, 20, 40, 80, 160], registers: [registry] }),
    relogins: new Counter({ name: 'foundry_relogins_total', help: 'Logins back into a running session (after it lost its login, or taken over from another machine): ok, or failed (one per failed attempt)', labelNames: ['result'], registers: [registry] }),
    handovers: new Counter({ name: 'foundry_handovers_total', help: 'Sessions handed to another machine on shutdown (out) or taken over from one (in); result ok, or failed (out: no machine took it; in: its credentials did not open)', labelNames: ['direction', 'result'], registers: [registry] }),
    recoveries: new Counter({ name: 'foundry_recoveries_total', help: 'Sessions of a machine that stopped without handing them over (crash, or this machine\'s previous life): taken over (ok), or ended because no sealed credentials were kept (no_seal_key) or they did not open (failed)', labelNames: ['result'], registers: [registry] }),
    replays: new Counter({ name: 'foundry_replays_total', help: 'Requests answered with fly-replay: instance (to the owner) or elsewhere (placement)', labelNames: ['kind'], registers: [registry] }),
    registryErrors: new Counter({ name: 'foundry_registry_errors_total', help: 'Requests refused because the fleet registry (Redis) could not be reached', registers: [registry] }),
    egressRefused: new Counter({ name: 'foundry_egress_refused_total', help: 'Connections of the session browser the egress gate refused, by reason: deny-list (FOUNDRY_URL_DENY), policy-<kind> (FOUNDRY_URL_POLICY: policy-loopback, policy-private, policy-metadata …), metadata-host, unresolvable, gate-port, service-port, bad-target', labelNames: ['reason'], registers: [registry] }),
    egressBytes: new Counter({ name: 'foundry_egress_bytes_total', help: 'Bytes the session browser exchanged with sites through the egress gate (in: from sites, out: to sites), counted when a session\'s browser context closes', labelNames: ['direction'], registers: [registry] })
  }
  for (const reason of ['deny-list', 'unresolvable']) m.egressRefused.inc({ reason }, 0)
  fastify.egress.onRefused((r) => { m.egressRefused.inc({ reason: r.reason }) })
  fastify.egress.onClosed((_label, s) => {
    m.egressBytes.inc({ direction: 'in' }, s.bytesIn)
    m.egressBytes.inc({ direction: 'out' }, s.bytesOut)
  })
  // Sessions on this machine by status, read at scrape time (the gauge
  // registers itself in `registry`).
  // eslint-disable-next-line no-new
  new Gauge({
    name: 'foundry_sessions',
    help: 'Sessions on this machine by status',
    labelNames: ['status'],
    registers: [registry],
    collect () {
      for (const [status, n] of Object.entries(sessions.counts())) this.set({ status }, n)
    }
  })
  fastify.decorate('metrics', m)

  // Login stages, timed from one stage event to the next; the last one ends
  // when the session's status changes (active: ok; still reconnecting with
  // a new reason, failed or ended: failed). Relogins: reconnecting → active
  // or a failed attempt.
  const stages = new Map<string, { stage: string, at: number }>()
  sessions.onEvent((event) => {
    const open = stages.get(event.sessionId)
    if (event.type === 'stage') {
      if (open !== undefined) m.loginStageSeconds.observe({ stage: open.stage, result: 'ok' }, (event.at - open.at) / 1000)
      stages.set(event.sessionId, { stage: event.stage, at: event.at })
      return
    }
    if (event.type !== 'status' || event.status === 'starting') return
    if (open !== undefined) {
      m.loginStageSeconds.observe({ stage: open.stage, result: event.status === 'active' ? 'ok' : 'failed' }, (event.at - open.at) / 1000)
      stages.delete(event.sessionId)
    }
    if (event.previous === 'reconnecting' && event.status !== 'ended') m.relogins.inc({ result: event.status === 'active' ? 'ok' : 'failed' })
  })

  const route = (request: FastifyRequest): string | undefined => request.routeOptions.url
  fastify.addHook('onError', async (request, _reply, err) => {
    request.errorCode = (err as ServiceError).code
    if ((err as ServiceError).code === 'FLEET_UNAVAILABLE') m.registryErrors.inc()
    const replay = (err as ServiceError).replay
    if (replay !== undefined) m.replays.inc({ kind: replay.startsWith('instance=') ? 'instance' : 'elsewhere' })
  })
  fastify.addHook('onResponse', async (request, reply) => {
    const url = route(request)
    if (url === '/session-handshake' && reply.statusCode === 200) m.handshakes.inc()
    if (url === '/start-session' && request.errorCode !== 'OTHER_MACHINE') {
      const ok = reply.statusCode === 200
      const result = ok ? 'ok' : 'failed'
      m.logins.inc({ result, code: ok ? '' : request.errorCode ?? String(reply.statusCode) })
      m.loginSeconds.observe({ result }, reply.elapsedTime / 1000)
    }
  })

  if (config.METRICS_PORT > 0) {
    const server = createServer((req, res) => {
      if (req.method !== 'GET' || req.url?.split('?')[0] !== '/metrics') {
        res.writeHead(404, { 'content-type': 'text/plain' }).end('metrics are at GET /metrics\n')
        return
      }
      registry.metrics().then((text) => {
        res.writeHead(200, { 'content-type': registry.contentType }).end(text)
      }, (err: Error) => {
        res.writeHead(500, { 'content-type': 'text/plain' }).end(`metrics failed: ${err.message}\n`)
      })
    })
    server.listen(config.METRICS_PORT, config.HOST)
    await once(server, 'listening')
    // No session's page may read the metrics through the egress gate.
    const { address, port } = server.address() as AddressInfo
    fastify.egress.refuseService(address, port)
    fastify.log.info({ port: config.METRICS_PORT }, 'Prometheus metrics at GET /metrics on this port')
    fastify.addHook('onClose', async () => {
      server.closeAllConnections()
      await new Promise((resolve) => server.close(resolve))
    })
  }
}

export default fp(metricsPlugin, { name: 'metrics', fastify: '5.x', dependencies: ['config', 'sessions', 'browser-pool'] })

// Security headers (helmet) on every answer, registered at the root
// so that they cover every route: the API, /docs (Swagger UI) and any page or
// static file added later (a console served with @fastify/static inherits
// them as long as it is registered after this plugin, which app.ts does by
// registering this one before any route).
// - Content-Security-Policy: only this origin's scripts, styles, images and
//   connections; no inline scripts (inline styles only: Swagger UI needs
//   them), no plugins, no framing, forms post to this origin only. Swagger UI works under it (test/security/headers.test.ts
//   checks it in Chromium). No upgrade-insecure-requests: a service on plain
//   HTTP on a LAN would lose its own console; use HTTPS in front (Fly does).
// - X-Frame-Options DENY and frame-ancestors 'none': no clickjacking of the
//   try-it console.
// - Referrer-Policy no-referrer, X-Content-Type-Options nosniff, and
//   helmet's other defaults (HSTS, COOP/CORP same-origin, …).
// helmet's middleware is built once here and run on each request's raw
// response. (@fastify/helmet builds it anew for every request, CSP parsing
// included: a fifth of a handshake's server CPU, docs/benchmarks.md.) No
// route sets its own headers or CSP nonces.
import fp from 'fastify-plugin'
import type { FastifyPluginAsync } from 'fastify'
import helmet from 'helmet'

const SELF = "'self'"

export const CSP_DIRECTIVES = {
  defaultSrc: [SELF],
  baseUri: [SELF],
  connectSrc: [SELF],
  fontSrc: [SELF, 'data:'],
  formAction: [SELF],
  frameAncestors: ["'none'"],
  imgSrc: [SELF, 'data:'],
  objectSrc: ["'none'"],
  scriptSrc: [SELF],
  scriptSrcAttr: ["'none'"],
  // Swagger UI adds <style> elements as it renders (syntax highlighting).
  styleSrc: [SELF, "'unsafe-inline'"]
}

const securityHeaders: FastifyPluginAsync = async (fastify) => {
  const headers = helmet({
    contentSecurityPolicy: { useDefaults: false, directives: CSP_DIRECTIVES },
    frameguard: { action: 'deny' },
    referrerPolicy: { policy: 'no-referrer' }
  })
  fastify.addHook('onRequest', (request, reply, done) => {
    headers(request.raw, reply.raw, (err?: unknown) => { done(err as Error | undefined) })
  })
}

export default fp(securityHeaders, { name: 'security-headers', fastify: '5.x' })

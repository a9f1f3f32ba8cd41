// The Foundry URL policy (FOUNDRY_URL_POLICY, FOUNDRY_URL_ALLOW,
// FOUNDRY_URL_DENY), shared by the handshake's header check and the session
// browser's egress gate (plugins/browser-pool.ts).
import fp from 'fastify-plugin'
import type { FastifyPluginAsync } from 'fastify'
import { createUrlPolicy, parseAddressList, type Resolver, type UrlPolicy } from '../lib/access/url-policy.ts'

declare module 'fastify' {
  interface FastifyInstance { urlPolicy: UrlPolicy }
}

export interface UrlPolicyPluginOptions {
  /** Resolve host names with this instead of the system resolver (tests). */
  resolve?: Resolver
  /** How long a resolution is reused, ms (tests: 0, every connection resolves again; default 10 000). */
  resolveCacheMs?: number
}

const urlPolicy: FastifyPluginAsync<UrlPolicyPluginOptions> = async (fastify, opts) => {
  fastify.decorate('urlPolicy', createUrlPolicy({
    mode: fastify.config.FOUNDRY_URL_POLICY,
    // Checked by the config plugin: these parse.
    allow: parseAddressList('FOUNDRY_URL_ALLOW', fastify.config.FOUNDRY_URL_ALLOW),
    deny: parseAddressList('FOUNDRY_URL_DENY', fastify.config.FOUNDRY_URL_DENY),
    ...(opts.resolve !== undefined ? { resolve: opts.resolve } : {}),
    ...(opts.resolveCacheMs !== undefined ? { cacheMs: opts.resolveCacheMs } : {})
  }))
}

export default fp(urlPolicy, { name: 'url-policy', fastify: '5.x', dependencies: ['config'] })

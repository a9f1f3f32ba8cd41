// The Foundry URL policy (FOUNDRY_URL_POLICY), shared by the handshake's
// header check and the session browser's request guard.
import fp from 'fastify-plugin'
import type { FastifyPluginAsync } from 'fastify'
import { createUrlPolicy, type Resolver, type UrlPolicy } from '../lib/access/url-policy.js'

declare module 'fastify' {
  interface FastifyInstance { urlPolicy: UrlPolicy }
}

export interface UrlPolicyPluginOptions {
  /** Resolve host names with this instead of the system resolver (tests). */
  resolve?: Resolver
}

const urlPolicy: FastifyPluginAsync<UrlPolicyPluginOptions> = async (fastify, opts) => {
  fastify.decorate('urlPolicy', createUrlPolicy({
    mode: fastify.config.FOUNDRY_URL_POLICY,
    ...(opts.resolve !== undefined ? { resolve: opts.resolve } : {})
  }))
}

export default fp(urlPolicy, { name: 'url-policy', fastify: '5.x', dependencies: ['config'] })

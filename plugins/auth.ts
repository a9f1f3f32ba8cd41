// API key authentication, as an onRequest hook so that a missing key is a
// 401 before any validation runs. Keys are held as digests only. Wrong keys
// are counted per client address (plugins/rate-limit.ts): past
// API_KEY_FAIL_MAX, the address gets 429 before its key is even looked at.
import fp from 'fastify-plugin'
import type { FastifyPluginAsync, onRequestHookHandler } from 'fastify'
import { createApiKeys, generateApiKey, parseApiKeys, readApiKeysFile, type ApiKeys } from '../lib/access/api-keys.ts'
import { ApiKeyInvalid, ApiKeyMissing } from '../lib/errors.ts'

declare module 'fastify' {
  interface FastifyInstance {
    apiKeys: ApiKeys
    authenticate: onRequestHookHandler
  }
  interface FastifyRequest {
    /** SHA-256 digest of the caller's API key: the owner of its handshakes and sessions. */
    ownerId: string
  }
}

export interface AuthOptions {
  /** Called once with a key generated because none was configured. */
  onGeneratedKey?: (key: string) => void
}

const auth: FastifyPluginAsync<AuthOptions> = async (fastify, opts) => {
  let keys = parseApiKeys(fastify.config.API_KEYS)
  if (fastify.config.API_KEYS_FILE !== '') keys.push(...readApiKeysFile(fastify.config.API_KEYS_FILE))
  if (keys.length === 0) {
    const key = generateApiKey()
    keys = [key]
    opts.onGeneratedKey?.(key)
  }
  fastify.decorate('apiKeys', createApiKeys(keys))
  fastify.decorateRequest('ownerId', '')
  const { apiKeyThrottle } = fastify

  const authenticate: onRequestHookHandler = async function (request) {
    await apiKeyThrottle.check(request)
    const key = request.headers['x-api-key']
    if (typeof key !== 'string' || key === '') throw new ApiKeyMissing()
    // Bounded before hashing; no key this service issues is this long.
    const owner = key.length > 1024 ? null : fastify.apiKeys.verify(key)
    if (owner === null) {
      await apiKeyThrottle.failed(request)
      throw new ApiKeyInvalid()
    }
    request.ownerId = owner
  }
  fastify.decorate('authenticate', authenticate)
}

export default fp(auth, { name: 'auth', fastify: '5.x', dependencies: ['config', 'rate-limit'] })

import fp from 'fastify-plugin'
import type { FastifyPluginAsync } from 'fastify'
import { createKeystore, type Keystore } from '../lib/handshake/keystore.ts'

declare module 'fastify' {
  interface FastifyInstance { keystore: Keystore }
}

const keystore: FastifyPluginAsync = async (fastify) => {
  const { config } = fastify
  const store = createKeystore({
    ttlMs: config.HANDSHAKE_TTL_MS,
    maxHandshakes: config.HANDSHAKE_MAX,
    maxHandshakesPerOwner: config.HANDSHAKE_MAX_PER_KEY,
    rotateMs: config.KEY_ROTATE_MS
  })
  // The first key pair is made before the service accepts requests.
  await store.ready()
  fastify.decorate('keystore', store)
  fastify.addHook('onClose', async () => { store.close() })
}

export default fp(keystore, { name: 'keystore', fastify: '5.x', dependencies: ['config'] })

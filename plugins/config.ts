import fp from 'fastify-plugin'
import type { FastifyPluginAsync } from 'fastify'
import envSchema from 'env-schema'
import { EnvSchema, type Env } from '../schemas/env.js'
import { parseKeyring } from '../lib/fleet/seal.js'

declare module 'fastify' {
  interface FastifyInstance {
    config: Env & { instanceId: string }
  }
}

export interface ConfigOptions {
  /** Values that win over process.env (tests use this). */
  env?: Partial<Record<keyof Env, string | number>>
  /** Read process.env too (default true). */
  processEnv?: boolean
}

export class ConfigError extends Error {}

/** Validate and type the environment; a bad value stops start-up with the reason. */
export function loadConfig (opts: ConfigOptions = {}): Env & { instanceId: string } {
  const data: Record<string, unknown> = { ...(opts.processEnv === false ? {} : process.env), ...opts.env }
  let env: Env
  try {
    env = envSchema<Env>({ schema: EnvSchema, data, env: false, dotenv: false })
  } catch (err) {
    throw new ConfigError(`Invalid configuration: ${(err as Error).message}`)
  }
  const str = (v: unknown): string => typeof v === 'string' ? v : ''
  // FLY_MACHINE_ID is the id `fly-replay: instance=` takes.
  const instanceId = env.INSTANCE_ID !== ''
    ? env.INSTANCE_ID
    : str(data.FLY_MACHINE_ID) !== '' ? str(data.FLY_MACHINE_ID) : str(data.FLY_ALLOC_ID) !== '' ? str(data.FLY_ALLOC_ID) : 'local'
  if (env.REDIS_URL !== '') {
    let url: URL | undefined
    try { url = new URL(env.REDIS_URL) } catch {}
    if (url === undefined || (url.protocol !== 'redis:' && url.protocol !== 'rediss:')) {
      throw new ConfigError('Invalid configuration: REDIS_URL must be a redis:// or rediss:// URL')
    }
  }
  if (env.SESSION_SEAL_KEY !== '') {
    try { parseKeyring(env.SESSION_SEAL_KEY) } catch (err) { throw new ConfigError(`Invalid configuration: ${(err as Error).message}`) }
  }
  if (env.SESSION_SEAL_KEY !== '' && env.REDIS_URL === '') {
    throw new ConfigError('Invalid configuration: SESSION_SEAL_KEY needs REDIS_URL (sealed credentials are kept in the fleet registry)')
  }
  return { ...env, instanceId }
}

const config: FastifyPluginAsync<ConfigOptions> = async (fastify, opts) => {
  fastify.decorate('config', loadConfig(opts))
}

export default fp(config, { name: 'config', fastify: '5.x' })

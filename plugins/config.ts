import fp from 'fastify-plugin'
import type { FastifyPluginAsync } from 'fastify'
import envSchema from 'env-schema'
import { EnvSchema, type Env } from '../schemas/env.js'

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
  if (env.SESSION_SEAL_KEY !== '' && !/^[A-Za-z0-9+/]{43}=$/.test(env.SESSION_SEAL_KEY)) {
    throw new ConfigError('Invalid configuration: SESSION_SEAL_KEY must be the base64 of 32 random bytes (openssl rand -base64 32)')
  }
  if (env.SESSION_SEAL_KEY !== '' && env.REDIS_URL === '' && env.STATE_DIR.trim() === '') {
    throw new ConfigError('Invalid configuration: SESSION_SEAL_KEY without REDIS_URL needs STATE_DIR, the directory where the sealed state file is kept (or set REDIS_URL for a fleet)')
  }
  return { ...env, instanceId }
}

const config: FastifyPluginAsync<ConfigOptions> = async (fastify, opts) => {
  fastify.decorate('config', loadConfig(opts))
}

export default fp(config, { name: 'config', fastify: '5.x' })

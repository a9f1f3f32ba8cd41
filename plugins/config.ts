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
  const instanceId = env.INSTANCE_ID !== '' ? env.INSTANCE_ID : (process.env.FLY_ALLOC_ID ?? 'local')
  return { ...env, instanceId }
}

const config: FastifyPluginAsync<ConfigOptions> = async (fastify, opts) => {
  fastify.decorate('config', loadConfig(opts))
}

export default fp(config, { name: 'config', fastify: '5.x' })

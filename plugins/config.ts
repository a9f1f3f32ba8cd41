import fp from 'fastify-plugin'
import type { FastifyPluginAsync } from 'fastify'
import envSchema from 'env-schema'
import { EnvSchema, type Env } from '../schemas/env.ts'
import { isDiscordWebhook } from '../lib/webhooks/notifier.ts'
import { parseWebhookSecret } from '../lib/webhooks/url.ts'
import { AddressListError, parseAddressList } from '../lib/access/url-policy.ts'
import { parseKeyring } from '../lib/fleet/seal.ts'

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
  if (env.SESSION_SEAL_KEY !== '' && env.REDIS_URL === '' && env.STATE_DIR.trim() === '') {
    throw new ConfigError('Invalid configuration: SESSION_SEAL_KEY without REDIS_URL needs STATE_DIR, the directory where the sealed state file is kept (or set REDIS_URL for a fleet)')
  }
  if (env.WEBHOOK_URL !== '') {
    let url: URL | undefined
    try { url = new URL(env.WEBHOOK_URL) } catch {}
    // The URL is a secret: the message does not repeat it.
    if (url === undefined || (url.protocol !== 'http:' && url.protocol !== 'https:')) {
      throw new ConfigError('Invalid configuration: WEBHOOK_URL must be an http:// or https:// URL')
    }
    if (env.WEBHOOK_SECRET === '' && !isDiscordWebhook(env.WEBHOOK_URL)) {
      throw new ConfigError('Invalid configuration: WEBHOOK_URL needs WEBHOOK_SECRET (whsec_ and the base64 of 24 to 64 random bytes: echo whsec_$(openssl rand -base64 32))')
    }
  }
  if (env.WEBHOOK_SECRET !== '') {
    try { parseWebhookSecret(env.WEBHOOK_SECRET) } catch {
      throw new ConfigError('Invalid configuration: WEBHOOK_SECRET must be whsec_ and the base64 of 24 to 64 random bytes (echo whsec_$(openssl rand -base64 32))')
    }
  }
  for (const name of ['FOUNDRY_URL_ALLOW', 'FOUNDRY_URL_DENY'] as const) {
    try { parseAddressList(name, env[name]) } catch (err) {
      if (err instanceof AddressListError) throw new ConfigError(`Invalid configuration: ${err.message}`)
      throw err
    }
  }
  return { ...env, instanceId }
}

const config: FastifyPluginAsync<ConfigOptions> = async (fastify, opts) => {
  fastify.decorate('config', loadConfig(opts))
}

export default fp(config, { name: 'config', fastify: '5.x' })

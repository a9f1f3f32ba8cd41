// Builds the service for tests: a fresh app with overrides, and its whole
// log kept in memory so tests can check what reached it.
import Fastify, { type FastifyInstance } from 'fastify'
import type { ServerOptions } from 'node:http'
import { Writable } from 'node:stream'
import { constants, publicEncrypt, webcrypto } from 'node:crypto'
import service, { REDACT, serverOptions } from '../app.ts'
import type { Resolver } from '../lib/access/url-policy.ts'
import type { Env } from '../schemas/env.ts'

/** What build() needs of a tap test: its end-of-test hook (as the Fastify templates use it). */
export interface TestContext { after: (fn: () => unknown) => void }

export const API_KEY = 'test-key-one'
export const OTHER_KEY = 'test-key-two'

const testEnv: Partial<Record<keyof Env, string | number>> = {
  API_KEYS: `${API_KEY},${OTHER_KEY}`,
  LOG_LEVEL: 'debug',
  CHROMIUM_PATH: process.env.CHROMIUM_PATH ?? '',
  NAVIGATION_TIMEOUT_MS: 15_000,
  JOIN_FORM_TIMEOUT_MS: 10_000,
  WORLD_LAUNCH_TIMEOUT_MS: 20_000,
  GAME_READY_TIMEOUT_MS: 15_000,
  MODULE_CONNECT_TIMEOUT_MS: 10_000
}

/**
 * For services a test file never logs in with: Chromium is launched by the
 * first session that needs it (CHROMIUM_LAUNCH=first-session, as users can
 * set), not with the service, so these files do not pay a launch per build.
 */
export const NO_LOGIN = { CHROMIUM_LAUNCH: 'first-session' } as const

export interface TestApp {
  app: FastifyInstance
  /** Every log line written so far, raw. */
  logs: () => string
}

/** What a few tests change beyond the environment. */
export interface BuildOptions {
  /** Resolve host names with this instead of the system resolver (URL policy tests). */
  resolve?: Resolver
  /** How long the URL policy reuses a resolution, ms (0: a name changes its answer at once). */
  resolveCacheMs?: number
  /** Node's http server options (its timers), with the service's own server options. */
  http?: ServerOptions
  /** The rate limits' clock (rate-limit tests move it instead of waiting out a window). */
  now?: () => number
}

/**
 * The service as server.ts builds it (its server options, the app plugin),
 * with the test environment plus `env`, its log (at env LOG_LEVEL, default
 * debug) kept in memory; closed after the test.
 */
export async function build (t: TestContext, env: Partial<Record<keyof Env, string | number>> = {}, options: BuildOptions = {}): Promise<TestApp> {
  const lines: string[] = []
  const stream = new Writable({
    write (chunk, _enc, cb) { lines.push(String(chunk)); cb() }
  })
  const merged = { ...testEnv, ...env }
  const app = Fastify({ ...serverOptions, ...(options.http !== undefined ? { http: options.http } : {}), logger: { level: String(merged.LOG_LEVEL), redact: REDACT, stream } })
  await app.register(service, { env: merged, processEnv: false, ...(options.resolve !== undefined ? { resolve: options.resolve } : {}), ...(options.resolveCacheMs !== undefined ? { resolveCacheMs: options.resolveCacheMs } : {}), ...(options.now !== undefined ? { now: options.now } : {}) })
  t.after(async () => { await app.close() })
  await app.ready()
  return { app, logs: () => lines.join('') }
}

/** Node's crypto with its default OAEP hash (SHA-1), as the TypeScript client example does. */
export function encryptNode (publicKey: string, payload: unknown, oaepHash: 'sha1' | 'sha256' = 'sha1'): string {
  return publicEncrypt({ key: publicKey, padding: constants.RSA_PKCS1_OAEP_PADDING, oaepHash },
    Buffer.from(JSON.stringify(payload), 'utf8')).toString('base64')
}

/** WebCrypto RSA-OAEP, as the browser JavaScript client example does. */
export async function encryptWebCrypto (publicKey: string, payload: unknown, hash: 'SHA-1' | 'SHA-256' = 'SHA-1'): Promise<string> {
  const der = Buffer.from(publicKey.replace(/-----[^-]+-----/g, '').replace(/\s+/g, ''), 'base64')
  const key = await webcrypto.subtle.importKey('spki', der, { name: 'RSA-OAEP', hash }, false, ['encrypt'])
  const ct = await webcrypto.subtle.encrypt({ name: 'RSA-OAEP' }, key, new TextEncoder().encode(JSON.stringify(payload)))
  return Buffer.from(ct).toString('base64')
}

export interface HandshakeReply { token: string, publicKey: string, nonce: string, expires: number, expiresAt: string }

export async function handshake (app: FastifyInstance, headers: Record<string, string>, apiKey = API_KEY): Promise<HandshakeReply> {
  const res = await app.inject({ method: 'POST', url: '/session-handshake', headers: { 'x-api-key': apiKey, ...headers } })
  if (res.statusCode !== 200) throw new Error(`handshake failed: ${res.statusCode} ${res.body}`)
  return res.json()
}

/** Assert the one error shape with its status and code. */
export function expectError (t: { match: (found: unknown, wanted: unknown, msg: string) => boolean }, res: { statusCode: number, json: () => unknown }, status: number, code: string): boolean {
  return t.match({ status: res.statusCode, body: res.json() }, { status, body: { statusCode: status, code, error: /\w+ \w+/ } }, `${status} ${code}`)
}

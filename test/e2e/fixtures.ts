// Worlds, users and process helpers shared by the end-to-end tests.
import type { FastifyInstance } from 'fastify'
import { alive, processTree } from '../../support/proc.ts'
import { startFoundryStandin, type Standin, type StandinOptions, type StandinWorld } from '../../support/foundry/standin.ts'
import { startRelayStandin, type RelayStandin, type RelayStandinOptions } from '../../support/foundry/relay.ts'
import { API_KEY, encryptNode, encryptWebCrypto } from '../helper.ts'

export const GM = { id: 'aB3dE5gH7jK9mN1p', name: 'Gamemaster', role: 4 as const, password: 'gm-secret-Pa55word!' }
export const GM2 = { id: 'zZ9dE5gH7jK9mN1q', name: 'Second GM', role: 4 as const, password: 'second-secret-Pw' }
export const PLAYER = { id: 'qR4sT6uV8wX0yZ2a', name: 'Player One', role: 1 as const, password: 'player-secret-Pw' }
export const BANNED = { id: 'bB4sT6uV8wX0yZ2b', name: 'Banned', role: 0 as const, password: 'banned-secret-Pw' }

export const WORLD: StandinWorld = {
  id: 'lost-mine',
  title: 'Lost Mine of Phandelver',
  system: { id: 'dnd5e', title: 'Dungeons & Dragons Fifth Edition', version: '5.0.4' },
  users: [GM, PLAYER, BANNED]
}

export const OTHER_WORLD: StandinWorld = {
  id: 'curse-of-strahd',
  title: 'Curse of Strahd',
  system: { id: 'dnd5e', title: 'Dungeons & Dragons Fifth Edition', version: '5.0.4' },
  users: [GM2]
}

/** A Foundry stand-in running WORLD (by default) and its relay, closed after the test. */
export async function foundry (
  t: { teardown: (fn: () => unknown) => void },
  opts: Partial<StandinOptions> = {},
  relayOpts: RelayStandinOptions = {}
): Promise<{ standin: Standin, relay: RelayStandin }> {
  const relay = await startRelayStandin(relayOpts)
  const standin = await startFoundryStandin({ worlds: [WORLD], activeWorld: WORLD.id, relayUrl: relay.url, ...opts })
  t.teardown(async () => { await standin.close(); await relay.close() })
  return { standin, relay }
}

export type Encryption = 'node-sha1' | 'webcrypto-sha1' | 'node-sha256' | 'webcrypto-sha256'

export interface StartArgs {
  foundryUrl: string
  username: string
  password: string
  world?: string
  apiKey?: string
  encryption?: Encryption
  /** Sent as encryptedAdminPassword. */
  adminPassword?: string
  /** Sent as encryptedConnectionToken. */
  connectionToken?: string
  /** More start-session body fields. */
  body?: Record<string, unknown>
}

/** Handshake + encrypt + start-session through the API, as a client does. */
export async function startSession (app: FastifyInstance, a: StartArgs) {
  const apiKey = a.apiKey ?? API_KEY
  const hs = await app.inject({
    method: 'POST',
    url: '/session-handshake',
    headers: {
      'x-api-key': apiKey,
      'x-foundry-url': a.foundryUrl,
      'x-username': a.username,
      ...(a.world !== undefined ? { 'x-world-name': a.world } : {})
    }
  })
  if (hs.statusCode !== 200) throw new Error(`handshake ${hs.statusCode}: ${hs.body}`)
  const { token, publicKey, nonce } = hs.json()
  const payload = { password: a.password, nonce }
  const enc = a.encryption ?? 'node-sha1'
  const encryptedPassword = enc === 'node-sha1'
    ? encryptNode(publicKey, payload)
    : enc === 'node-sha256'
      ? encryptNode(publicKey, payload, 'sha256')
      : await encryptWebCrypto(publicKey, payload, enc === 'webcrypto-sha1' ? 'SHA-1' : 'SHA-256')
  return await app.inject({
    method: 'POST',
    url: '/start-session',
    headers: { 'x-api-key': apiKey, 'content-type': 'application/json' },
    payload: {
      handshakeToken: token,
      encryptedPassword,
      ...(a.adminPassword !== undefined ? { encryptedAdminPassword: encryptNode(publicKey, { adminPassword: a.adminPassword, nonce }) } : {}),
      ...(a.connectionToken !== undefined ? { encryptedConnectionToken: encryptNode(publicKey, { connectionToken: a.connectionToken, nonce }, 'sha256') } : {}),
      ...a.body
    }
  })
}

export async function listSessions (app: FastifyInstance, apiKey = API_KEY) {
  const res = await app.inject({ method: 'GET', url: '/session', headers: { 'x-api-key': apiKey } })
  return res.json() as { activeSessions: Array<Record<string, unknown>>, pendingSessions: Array<Record<string, unknown>>, endedSessions: Array<Record<string, unknown>> }
}

export async function endSession (app: FastifyInstance, sessionId: string, apiKey = API_KEY) {
  return await app.inject({ method: 'DELETE', url: `/end-session?sessionId=${encodeURIComponent(sessionId)}`, headers: { 'x-api-key': apiKey } })
}

/** Every live process below `pid` (Chromium's renderers, GPU and utility processes). */
export function descendants (pid: number): number[] {
  return processTree(pid).filter((p) => p !== pid)
}

export { alive }

/** Poll a condition (for process exits, which have no event) with a bound. */
export async function eventually (check: () => boolean | Promise<boolean>, timeoutMs = 10_000): Promise<boolean> {
  const deadline = Date.now() + timeoutMs
  while (Date.now() < deadline) {
    if (await check()) return true
    await new Promise((resolve) => setTimeout(resolve, 50))
  }
  return await check()
}

// One fleet per test file: a real Redis, the Foundry and relay stand-ins,
// three service processes (node dist/server.js) started as users start them,
// and the fly-replay proxy stand-in in front; with the client calls the
// scenarios make (handshake + start-session as a client does, list, end).
import { GM, foundry } from '../e2e/fixtures.ts'
import { encryptNode } from '../helper.ts'
import { processTree } from '../../support/proc.ts'
import type { Standin, StandinOptions } from '../../support/foundry/standin.ts'
import type { RelayStandin, RelayStandinOptions } from '../../support/foundry/relay.ts'
import { freePort, startRedis, type TestRedis } from './redis.ts'
import { startFlyProxy, type FlyProxy } from './proxy.ts'
import { startMachine, type MachineProc } from './machines.ts'

export interface Listed { sessionId: string, instanceId: string, status: string, statusReason: string, clientId: string, lastActivity: number, relogins: number }
export interface List { activeSessions: Listed[], endedSessions: Listed[], pendingSessions: Listed[] }
export interface Answer { status: number, body: Record<string, unknown>, retryAfter: string | null }

type Tap = { teardown: (fn: () => unknown) => void }

export interface Fleet {
  redis: TestRedis
  standin: Standin
  relay: RelayStandin
  machines: MachineProc[]
  proxy: FlyProxy
  apiKey: string
  /** Everything secret the test sent (password, API key, handshake tokens, nonces): never in Redis. */
  secrets: string[]
  byId: (id: string) => MachineProc
  /**
   * A handshake on `hsAt` (default: through the proxy), then start-session sent to `startAt` (default: the proxy);
   * with `connectionToken`, sent as encryptedConnectionToken (module 3.x) and counted among the secrets;
   * `foundry`: another Foundry than the fleet's own stand-in.
   */
  start: (opts?: { user?: { name: string, password: string }, hsAt?: string, startAt?: string, connectionToken?: string, body?: Record<string, unknown>, foundry?: Standin }) => Promise<Answer>
  list: (at: string) => Promise<List>
  /** The session as listed by `at` (any status), or undefined. */
  find: (at: string, sessionId: string) => Promise<Listed | undefined>
  /** Start another machine (a deploy's new machine, a restart) with the fleet's env, and put it behind the proxy. */
  add: (id: string, env?: Record<string, string>) => Promise<MachineProc>
  /** SIGKILL a machine and every process below it (Chromium cannot outlive it by itself), and take it off the proxy. */
  kill: (m: MachineProc) => Promise<void>
  /** Take a machine off the proxy (it is stopping). */
  drop: (m: MachineProc) => void
  /** The machine's Prometheus metrics (each machine has its own METRICS_PORT). */
  metrics: (m: MachineProc) => Promise<string>
  /** The machines whose process is still running. */
  running: () => MachineProc[]
}

/** The stand-ins' options (default: module 2.x, its relay accepting any id once). */
export interface FleetStandins { standin?: Partial<StandinOptions>, relay?: RelayStandinOptions }

export async function startFleet (t: Tap, env: Record<string, string>, ids = ['m1', 'm2', 'm3'], stand: FleetStandins = {}): Promise<Fleet> {
  const apiKey = 'fleet-test-key-0123456789abcdef'
  const redis = await startRedis(t)
  const { standin, relay } = await foundry(t, stand.standin, stand.relay)
  const fleetEnv = { API_KEYS: apiKey, REDIS_URL: redis.url, ...env }
  // One after the other: three cold starts at once on a busy 2-core box can pass Fastify's plugin timeout.
  const machines: MachineProc[] = []
  const metricsPorts = new Map<MachineProc, number>()
  const launch = async (id: string, more: Record<string, string> = {}): Promise<MachineProc> => {
    const port = await freePort()
    const m = await startMachine(id, { ...fleetEnv, METRICS_PORT: String(port), ...more }, t)
    metricsPorts.set(m, port)
    return m
  }
  for (const id of ids) machines.push(await launch(id))
  const proxy = await startFlyProxy(machines)
  t.teardown(proxy.close)
  const secrets = [GM.password, apiKey]
  const headers = { 'x-api-key': apiKey }
  const running = (): MachineProc[] => machines.filter((m) => m.child.exitCode === null && m.child.signalCode === null)

  const f: Fleet = {
    redis,
    standin,
    relay,
    machines,
    proxy,
    apiKey,
    secrets,
    byId: (id) => machines.find((m) => m.id === id)!,
    async start (opts = {}) {
      const user = opts.user ?? GM
      const hs = await (await fetch(`${opts.hsAt ?? proxy.url}/session-handshake`, {
        method: 'POST', headers: { ...headers, 'x-foundry-url': (opts.foundry ?? standin).url, 'x-username': user.name }
      })).json() as { token: string, publicKey: string, nonce: string }
      secrets.push(hs.token, hs.nonce)
      const token = opts.connectionToken
      if (token !== undefined && !secrets.includes(token)) secrets.push(token)
      const res = await fetch(`${opts.startAt ?? proxy.url}/start-session`, {
        method: 'POST',
        headers: { ...headers, 'content-type': 'application/json' },
        body: JSON.stringify({
          handshakeToken: hs.token,
          encryptedPassword: encryptNode(hs.publicKey, { password: user.password, nonce: hs.nonce }),
          ...(token !== undefined ? { encryptedConnectionToken: encryptNode(hs.publicKey, { connectionToken: token, nonce: hs.nonce }, 'sha256') } : {}),
          ...opts.body
        })
      })
      return { status: res.status, body: await res.json() as Record<string, unknown>, retryAfter: res.headers.get('retry-after') }
    },
    list: async (at) => await (await fetch(`${at}/session`, { headers })).json() as List,
    async find (at, sessionId) {
      const l = await f.list(at)
      return [...l.activeSessions, ...l.pendingSessions, ...l.endedSessions].find((s) => s.sessionId === sessionId)
    },
    async add (id, more = {}) {
      const m = await launch(id, more)
      machines.push(m)
      proxy.setMachines(running())
      return m
    },
    async kill (m) {
      const tree = processTree(m.child.pid!)
      m.kill('SIGKILL')
      await m.exited
      for (const pid of tree) { try { process.kill(pid, 'SIGKILL') } catch {} }
      proxy.setMachines(running())
    },
    drop (m) { proxy.setMachines(running().filter((x) => x !== m)) },
    metrics: async (m) => await (await fetch(`http://127.0.0.1:${metricsPorts.get(m)!}/metrics`)).text(),
    running
  }
  return f
}

/**
 * Whether a session ran twice, sampled every `everyMs` (200 ms) until
 * stop(): the Foundry stand-in with two live logins of the Gamemaster, the
 * relay with two open module connections of one client id, any module
 * connection the relay refused with 4004 (module 2.x: its id held
 * elsewhere; it refuses a duplicate at once, so open connections alone never
 * show one), or any 3.x connection the relay closed because another of the
 * same id authenticated (the Go relay replaces the older one at once). Each
 * finding is kept, with the time, in `seen`.
 */
export function watchTwice (f: { standin: Standin, relay: RelayStandin }, userId = GM.id, everyMs = 200): { seen: string[], samples: () => number, stop: () => void } {
  const seen: string[] = []
  let samples = 0
  const check = (): void => {
    samples++
    const at = new Date().toISOString()
    const logins = f.standin.liveLogins(userId)
    if (logins > 1) seen.push(`${at}: Foundry sees ${logins} live logins of user ${userId}`)
    const open = f.relay.open().map((c) => c.id)
    if (new Set(open).size !== open.length) seen.push(`${at}: the relay has two open connections of one client id (${open.join(', ')})`)
    for (const c of f.relay.connections) {
      if (c.closeCode === 4004 && !seen.some((s) => s.includes(`4004 at ${c.openedAt}`))) seen.push(`${at}: the relay refused client id ${c.id} with 4004 at ${c.openedAt}`)
      if (c.protocol === 'v3' && c.closedBy === 'relay' && c.closeCode === 1000 && !seen.some((s) => s.includes(`replaced at ${c.openedAt}`))) {
        seen.push(`${at}: the relay closed client id ${c.id}'s connection opened at ${c.openedAt}: another of the same id authenticated (replaced at ${c.openedAt})`)
      }
    }
  }
  const timer = setInterval(check, everyMs)
  return { seen, samples: () => samples, stop: () => { clearInterval(timer); check() } }
}

/** No client id has two module connections open at the relay (one sample; see watchTwice for the full check). */
export function neverTwice (relay: RelayStandin): boolean {
  const open = relay.open().map((c) => c.id)
  return new Set(open).size === open.length && !relay.connections.some((c) => c.closeCode === 4004 || (c.protocol === 'v3' && c.closedBy === 'relay' && c.closeCode === 1000))
}

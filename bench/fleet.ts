// 5. Fleet: the same service with the Redis registry (REDIS_URL, a local
// redis-server) against the in-memory one, in the same run: handshake
// throughput at 10 clients, and start-session latency (a full login). Then
// (benchFleetMoves) the module's downtime when its session moves to another
// machine: a handover (the machine closes as on SIGTERM) and a recovery
// (the machine is SIGKILLed), against a plain login in the same run.
import { spawn } from 'node:child_process'
import { randomBytes } from 'node:crypto'
import { once } from 'node:events'
import { createServer } from 'node:net'
import { endSession, prepareStart } from './client.ts'
import { BENCH_KEY, forkChild, fmt, killTree, log, median, p99, QUICK, ratio, serviceEnv, sleep, table, type Foundry, type Stage } from './lib.ts'
import { load } from './loadgen.ts'

export interface FleetResult {
  rows: Array<{ registry: string, handshakeRps: number, handshakeP50: number, loginP50: number, loginP99: number, logins: number }>
  markdown: string
}

async function freePort (): Promise<number> {
  const srv = createServer().listen(0, '127.0.0.1')
  await once(srv, 'listening')
  const { port } = srv.address() as { port: number }
  srv.close()
  return port
}

async function startRedis (): Promise<{ url: string, close: () => Promise<void> }> {
  const port = await freePort()
  const child = spawn('redis-server', ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no'], { stdio: ['ignore', 'pipe', 'inherit'] })
  let out = ''
  await new Promise<void>((resolve, reject) => {
    child.stdout!.on('data', (d: Buffer) => { out += d.toString(); if (out.includes('Ready to accept connections')) resolve() })
    child.once('exit', () => { reject(new Error(`redis-server exited: ${out}`)) })
  })
  return { url: `redis://127.0.0.1:${port}`, close: async () => { child.kill('SIGTERM'); await once(child, 'exit') } }
}

export async function benchFleet (stage: Stage): Promise<FleetResult> {
  const redis = await startRedis()
  const rows: FleetResult['rows'] = []
  const durationMs = QUICK ? 1500 : 3000
  const logins = QUICK ? 3 : 6
  try {
    // Alternate the two so that neither always runs first.
    for (const registry of ['memory', 'redis', 'memory', 'redis'].slice(0, QUICK ? 2 : 4)) {
      const env = serviceEnv(registry === 'redis' ? { REDIS_URL: redis.url, INSTANCE_ID: 'bench' } : {})
      const { child, ready } = await forkChild<{ port: number }>('service-proc.ts', env)
      try {
        const foundryUrl = stage.running[0]!.standin.url
        log(`fleet: ${registry} registry, handshakes, 10 clients, ${durationMs} ms`)
        const r = await load({ port: ready.port, method: 'POST', path: '/session-handshake', headers: { 'x-api-key': BENCH_KEY, 'x-foundry-url': foundryUrl, 'x-username': 'Gamemaster 0' }, connections: 10, durationMs, warmupMs: 500 })
        const ms: number[] = []
        for (let i = 0; i < logins; i++) {
          const f: Foundry = stage.running[i % stage.running.length]!
          const out = await (await prepareStart(ready.port, f))()
          if (out.status !== 200 || out.sessionId === undefined) throw new Error(`start-session ${out.status} ${out.code ?? ''}`)
          ms.push(out.ms)
          await endSession(ready.port, out.sessionId)
        }
        rows.push({ registry, handshakeRps: r.rps, handshakeP50: median(r.latencies), loginP50: median(ms), loginP99: p99(ms), logins: ms.length })
      } finally {
        await child.close()
      }
    }
  } finally {
    await redis.close()
  }
  const of = (name: string): FleetResult['rows'] => rows.filter((r) => r.registry === name)
  const mean = (xs: number[]): number => xs.reduce((a, b) => a + b, 0) / Math.max(1, xs.length)
  const mem = { rps: mean(of('memory').map((r) => r.handshakeRps)), login: mean(of('memory').map((r) => r.loginP50)) }
  const red = { rps: mean(of('redis').map((r) => r.handshakeRps)), login: mean(of('redis').map((r) => r.loginP50)) }
  const markdown = [
    table('5. Fleet registry: Redis (REDIS_URL, local redis-server) against in-memory, same run',
      ['registry', 'handshake req/s (10 clients)', 'handshake p50 ms', 'logins', 'start-session p50 ms', 'start-session p99 ms'],
      rows.map((r) => [r.registry, fmt(r.handshakeRps, 0), fmt(r.handshakeP50, 2), String(r.logins), fmt(r.loginP50, 0), fmt(r.loginP99, 0)])),
    '',
    `Redis over memory: handshakes ${ratio(red.rps, mem.rps)} the throughput; start-session ${ratio(red.login, mem.login)} the median latency.`
  ].join('\n')
  return { rows, markdown }
}

export interface MovesResult {
  rows: Array<{ move: string, sessions: number, p50: number, max: number }>
  markdown: string
}

const HEARTBEAT_MS = 1000

/**
 * Module downtime when sessions move: n sessions on machine A; A closes (the
 * SIGTERM path: app.close()) and hands them to B; then B is SIGKILLed and C
 * takes them over once B's heartbeat lapsed. Downtime per session: from its
 * module connection closing at the relay (or the SIGKILL) to its next one
 * opening. The reference is a login (start-session) in the same run.
 */
export async function benchFleetMoves (stage: Stage): Promise<MovesResult> {
  const redis = await startRedis()
  const env = serviceEnv({ REDIS_URL: redis.url, SESSION_SEAL_KEY: randomBytes(32).toString('base64'), FLEET_HEARTBEAT_MS: String(HEARTBEAT_MS) })
  const n = Math.min(stage.running.length, QUICK ? 2 : 4)
  const relay = stage.relay
  const rows: MovesResult['rows'] = []
  const machine = async (id: string): Promise<Awaited<ReturnType<typeof forkChild<{ port: number }>>>> => await forkChild<{ port: number }>('service-proc.ts', { ...env, INSTANCE_ID: id })
  /** ms from `since(clientId)` to the first module connection of each client opened after `after`. */
  const downtimes = async (clientIds: string[], after: number, since: (id: string) => number): Promise<number[]> => {
    const deadline = Date.now() + 120_000
    const out = new Map<string, number>()
    while (out.size < clientIds.length && Date.now() < deadline) {
      for (const id of clientIds) {
        if (out.has(id)) continue
        const c = relay.connections.find((x) => x.id === id && x.openedAt > after)
        if (c !== undefined) out.set(id, c.openedAt - since(id))
      }
      await sleep(20)
    }
    if (out.size < clientIds.length) throw new Error(`fleet moves: ${clientIds.length - out.size} sessions did not come back`)
    return [...out.values()]
  }
  const row = (move: string, ms: number[]): void => { rows.push({ move, sessions: ms.length, p50: median(ms), max: Math.max(...ms) }) }
  try {
    const a = await machine('bench-a')
    const b = await machine('bench-b')
    const clientIds: string[] = []
    const logins: number[] = []
    for (const f of stage.running.slice(0, n)) {
      const out = await (await prepareStart(a.ready.port, f))()
      if (out.status !== 200 || out.clientId === undefined) throw new Error(`start-session ${out.status} ${out.code ?? ''}`)
      clientIds.push(out.clientId)
      logins.push(out.ms)
    }
    row('a login (start-session, reference)', logins)

    log(`fleet: handover of ${n} sessions (machine A closes as on SIGTERM)`)
    let at = Date.now()
    await a.child.close()
    const closedAt = (id: string): number => relay.connections.filter((c) => c.id === id && c.openedAt < at).at(-1)?.closedAt ?? at
    row('handover (SIGTERM)', await downtimes(clientIds, at, closedAt))

    log(`fleet: recovery of ${n} sessions (machine B SIGKILLed, heartbeat ${HEARTBEAT_MS} ms)`)
    const c = await machine('bench-c')
    at = Date.now()
    killTree(b.child.pid)
    row(`recovery (SIGKILL, heartbeat ${HEARTBEAT_MS} ms)`, await downtimes(clientIds, at, () => at))
    await c.child.close()
  } finally {
    await redis.close()
  }
  const login = rows[0]!.p50
  const markdown = [
    table('5b. Fleet: module downtime when a session moves to another machine (SESSION_SEAL_KEY), same run',
      ['move', 'sessions', 'downtime p50 ms', 'downtime max ms', 'p50 vs a login'],
      rows.map((r) => [r.move, String(r.sessions), fmt(r.p50, 0), fmt(r.max, 0), r === rows[0] ? '1.00×' : ratio(r.p50, login)])),
    '',
    'Downtime: from the module\'s relay connection closing (or the SIGKILL) to the same client id connecting again from the new machine. A handover costs one login on the new machine; a recovery adds the wait for the lapsed heartbeat (3 beats, then two sweeps).'
  ].join('\n')
  return { rows, markdown }
}

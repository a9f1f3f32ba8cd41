// 5. Fleet: the same service with the Redis registry (REDIS_URL, a local
// redis-server) against the in-memory one, in the same run: handshake
// throughput at 10 clients, and start-session latency (a full login).
import { spawn } from 'node:child_process'
import { once } from 'node:events'
import { createServer } from 'node:net'
import { endSession, prepareStart } from './client.js'
import { BENCH_KEY, forkChild, fmt, log, median, p99, QUICK, ratio, serviceEnv, table, type Foundry, type Stage } from './lib.js'
import { load } from './loadgen.js'

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

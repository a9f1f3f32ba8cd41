// Handshake cost of this tree against another checkout of the service (an
// older commit), in the same run: both services started side by side, and
// round after round, at each client count, `/health` then the handshake of
// one, then of the other (order alternated). Reports the server's own CPU
// per request (µs; the figure a loaded host moves least) and req/s, medians
// over the rounds, and each service's handshake ÷ `/health` CPU.
//   git archive <commit> | tar -x -C /tmp/base && ln -s $PWD/node_modules /tmp/base/
//   BASE=/tmp/base BENCH_QUICK=1 node bench/handshake-ab.ts
// BENCH_HANDSHAKE_RATE_MAX=1000000000: with the handshake rate limit on (as in
// production, never reached) instead of off.
import { fork } from 'node:child_process'
import { join } from 'node:path'
import { loadavg } from 'node:os'
import { BENCH_DIR, BENCH_KEY, fmt, killTree, log, median, QUICK, serviceEnv, startStage, table } from './lib.ts'
import { load } from './loadgen.ts'

const base = process.env.BASE
if (base === undefined || base === '') throw new Error('BASE=<another checkout of the service> is required')
const rounds = Number(process.env.BENCH_ROUNDS ?? (QUICK ? 3 : 5))
const durationMs = QUICK ? 1000 : 2000
const levels = (process.env.BENCH_CLIENTS ?? '10,100').split(',').map(Number)

interface Svc { name: string, port: number, pid: number, cpu: () => Promise<number>, close: () => void }

async function start (name: string, root: string): Promise<Svc> {
  const proc = fork(join(root, 'bench', 'service-proc.ts'), [], {
    cwd: root,
    env: {
      ...process.env,
      ...serviceEnv(process.env.BENCH_HANDSHAKE_RATE_MAX !== undefined ? { HANDSHAKE_RATE_MAX: process.env.BENCH_HANDSHAKE_RATE_MAX } : {})
    },
    stdio: ['ignore', 'ignore', 'inherit', 'ipc']
  })
  const ready = await new Promise<{ port: number }>((resolve, reject) => {
    proc.once('exit', (code) => { reject(new Error(`${name} exited with ${code}`)) })
    proc.once('message', (m) => { resolve((m as { ready: { port: number } }).ready) })
  })
  let seq = 0
  return {
    name,
    port: ready.port,
    pid: proc.pid!,
    cpu: async () => await new Promise<number>((resolve) => {
      const id = ++seq
      const on = (m: { id?: number, user?: number, system?: number }): void => {
        if (m.id !== id) return
        proc.off('message', on)
        resolve(m.user! + m.system!)
      }
      proc.on('message', on)
      proc.send({ type: 'cpu', id })
    }),
    close: () => { killTree(proc.pid!) }
  }
}

const stage = await startStage(1, 0)
const foundryUrl = stage.running[0]!.standin.url
const svcs = [await start('base', base), await start('this', join(BENCH_DIR, '..'))]
// Both JIT-warm before any round counts.
for (const s of svcs) {
  for (const [path, method, headers] of [
    ['/health', 'GET', {}],
    ['/session-handshake', 'POST', { 'x-api-key': BENCH_KEY, 'x-foundry-url': foundryUrl, 'x-username': 'Gamemaster 0' }]
  ] as const) await load({ port: s.port, method, path, headers, connections: 10, durationMs: 1500, warmupMs: 0 })
}
const load0 = loadavg()[0]!
type Row = { health: number[], hs: number[], healthRps: number[], hsRps: number[] }
const res = new Map<string, Row>()
try {
  for (const c of levels) {
    for (let round = 0; round < rounds; round++) {
      const order = round % 2 === 0 ? svcs : [...svcs].reverse()
      for (const s of order) {
        const row = res.get(`${s.name} ${c}`) ?? { health: [], hs: [], healthRps: [], hsRps: [] }
        res.set(`${s.name} ${c}`, row)
        for (const [path, method, headers] of [
          ['/health', 'GET', {}],
          ['/session-handshake', 'POST', { 'x-api-key': BENCH_KEY, 'x-foundry-url': foundryUrl, 'x-username': 'Gamemaster 0' }]
        ] as const) {
          const c0 = await s.cpu()
          const r = await load({ port: s.port, method, path, headers, connections: c, durationMs, warmupMs: 300 })
          const us = (await s.cpu() - c0) / r.total
          if (r.non2xx > 0) log(`warning: ${s.name} ${path} answered ${r.non2xx} non-2xx`)
          if (path === '/health') { row.health.push(us); row.healthRps.push(r.rps) } else { row.hs.push(us); row.hsRps.push(r.rps) }
        }
        log(`${s.name}, ${c} clients, round ${round + 1}: /health ${fmt(row.health.at(-1)!, 0)} µs, handshake ${fmt(row.hs.at(-1)!, 0)} µs`)
      }
    }
  }
} finally {
  for (const s of svcs) s.close()
  await stage.close()
}
const rows: string[][] = []
for (const c of levels) {
  for (const s of svcs) {
    const r = res.get(`${s.name} ${c}`)!
    const h = median(r.health)
    const k = median(r.hs)
    rows.push([`${s.name === 'base' ? base : 'this tree'}`, String(c), fmt(h, 1), fmt(k, 1), fmt(k - h, 1), `${(h / k).toFixed(2)}×`, fmt(median(r.healthRps), 0), fmt(median(r.hsRps), 0)])
  }
}
process.stdout.write(table(`Handshake A/B, medians of ${rounds} rounds of ${durationMs} ms (load average ${load0.toFixed(1)} → ${loadavg()[0]!.toFixed(1)})`,
  ['service', 'clients', '/health CPU µs', 'handshake CPU µs', 'handshake − /health µs', 'CPU-bound ratio', '/health req/s', 'handshake req/s'], rows) + '\n')
process.exit(0)

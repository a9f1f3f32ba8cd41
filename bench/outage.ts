// 7. Outage: what sessions cost while they wait for a Foundry that is down
// (issue 17), against the same sessions active. The service holds n logins
// (light /game, one Foundry stand-in each); memory (PSS of the whole tree)
// and CPU are read while they are active, then every Foundry is stopped
// (connections refused) and, once every session is reconnecting, read again
// over the same windows; then Foundry comes back and the time until every
// session is active again is measured. The service runs its defaults
// (backoff to 1 minute), except BENCH_OUTAGE_CAP_MS for the backoff cap.
import { startSession } from './client.ts'
import { loadavg } from 'node:os'
import { BENCH_KEY, cpuSeconds, fmt, forkChild, log, median, pssMB, QUICK, serviceEnv, sleep, table, type Foundry, type Stage } from './lib.ts'

export const OUTAGE_SESSIONS = Number(process.env.BENCH_OUTAGE_SESSIONS ?? (QUICK ? 10 : 50))
const CAP_MS = Number(process.env.BENCH_OUTAGE_CAP_MS ?? 60_000)
const OPEN_CONCURRENCY = Number(process.env.BENCH_OPEN_CONCURRENCY ?? 2)

export interface OutageRow {
  state: 'active' | 'waiting'
  sessions: number
  pssMB: number
  procs: number
  cpuPct: number[]
  load: [number, number]
}

export interface OutageResult { rows: OutageRow[], recoverMs: number[], capMs: number, markdown: string }

interface Listed { id: string, status: string, reconnect?: { cause: string, attempts: number } }

async function list (port: number): Promise<Listed[]> {
  const res = await fetch(`http://127.0.0.1:${port}/session`, { headers: { 'x-api-key': BENCH_KEY } })
  const body = await res.json() as { activeSessions: Listed[] }
  return body.activeSessions
}

async function until (what: string, check: () => Promise<boolean>, ms: number): Promise<void> {
  const deadline = Date.now() + ms
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`outage: timed out waiting for ${what}`)
    await sleep(250)
  }
}

async function measure (pid: number, state: OutageRow['state'], n: number): Promise<OutageRow> {
  await sleep(QUICK ? 3000 : 10_000)
  const load0 = loadavg()[0]!
  const cpuPct: number[] = []
  for (let i = 0; i < (QUICK ? 3 : 6); i++) {
    const c0 = cpuSeconds(pid)
    const ms = QUICK ? 5000 : 10_000
    await sleep(ms)
    cpuPct.push((cpuSeconds(pid) - c0) / (ms / 1000) * 100)
  }
  const { mb, procs } = pssMB(pid)
  return { state, sessions: n, pssMB: mb, procs, cpuPct, load: [load0, loadavg()[0]!] }
}

export async function benchOutage (stage: Stage): Promise<OutageResult> {
  const n = OUTAGE_SESSIONS
  const foundries: Foundry[] = stage.light.slice(0, n)
  if (foundries.length < n) throw new Error(`outage needs ${n} light stand-ins`)
  const { child, ready } = await forkChild<{ port: number }>('service-proc.ts', serviceEnv({
    MAX_SESSIONS: String(n + 5), MAX_SESSIONS_PER_KEY: String(n + 5), MAX_CONCURRENT_LOGINS: '4', RELOGIN_MAX_DELAY_MS: String(CAP_MS)
  }))
  const rows: OutageRow[] = []
  const recoverMs: number[] = []
  try {
    let next = 0
    await Promise.all(Array.from({ length: OPEN_CONCURRENCY }, async () => {
      while (next < n) {
        const f = foundries[next++]!
        const r = await startSession(ready.port, f)
        if (r.status !== 200) throw new Error(`outage: start-session ${r.status} ${r.code ?? ''}`)
      }
    }))
    log(`outage: ${n} sessions active`)
    rows.push(await measure(child.pid, 'active', n))
    log(`outage: active: ${fmt(rows[0]!.pssMB, 0)} MB, CPU ${rows[0]!.cpuPct.map((x) => fmt(x, 1)).join('/')} %`)

    for (const f of foundries) await f.standin.down('refuse')
    await until('every session reconnecting', async () => (await list(ready.port)).filter((s) => s.status === 'reconnecting' && (s.reconnect?.attempts ?? 0) >= 1).length === n, 120_000)
    log(`outage: ${n} sessions waiting for Foundry`)
    rows.push(await measure(child.pid, 'waiting', n))
    log(`outage: waiting: ${fmt(rows[1]!.pssMB, 0)} MB (${rows[1]!.procs} processes), CPU ${rows[1]!.cpuPct.map((x) => fmt(x, 1)).join('/')} %`)

    const back = Date.now()
    for (const f of foundries) await f.standin.up()
    const seen = new Set<string>()
    await until('every session active again', async () => {
      for (const s of await list(ready.port)) {
        if (s.status === 'active' && !seen.has(s.id)) { seen.add(s.id); recoverMs.push(Date.now() - back) }
      }
      return seen.size === n
    }, CAP_MS + 180_000)
    log(`outage: back: every session active ${fmt(Math.max(...recoverMs) / 1000, 1)} s after Foundry's return (median ${fmt(median(recoverMs) / 1000, 1)} s)`)
  } finally {
    await child.close()
    for (const f of foundries) await f.standin.up().catch(() => {})
  }
  const base = rows[0]!
  const markdown = [
    table(`7. Outage: ${n} sessions waiting for a Foundry that is down, against the same ${n} active (light /game)`,
      ['state', 'sessions', 'PSS MB (whole tree)', 'processes', 'CPU % of a core (median window)', 'load avg'],
      rows.map((r) => [r.state, String(r.sessions), fmt(r.pssMB, 0), String(r.procs), fmt(median(r.cpuPct), 2), `${fmt(r.load[0], 1)}→${fmt(r.load[1], 1)}`])),
    '',
    `Waiting holds no page: ${fmt(rows[1] !== undefined ? base.pssMB - rows[1].pssMB : 0, 0)} MB less than active. ` +
    `Foundry back: every session active again within ${fmt(Math.max(...recoverMs, 0) / 1000, 1)} s (median ${fmt(median(recoverMs) / 1000, 1)} s; backoff cap ${fmt(CAP_MS / 1000, 0)} s, 4 logins at a time).`
  ].join('\n')
  return { rows, recoverMs, capMs: CAP_MS, markdown }
}

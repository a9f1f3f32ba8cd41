// 3. Memory per session: PSS of the whole process tree (Node + every
// Chromium process) with 0, 1, 10 and 50 live sessions on heavy-game
// stand-ins, against a reference that launches one Chromium per session.
import { startSession } from './client.ts'
import {
  collectGarbage, cpuSeconds, forkChild, fmt, FULL, median, log, p99, pssMB, QUICK, ratio, serviceEnv, sleep, table, type Child, type Stage
} from './lib.ts'
import { moduleRequests } from './module-request.ts'

export interface MemoryPoint { sessions: number, mb: number, procs: number }
export interface MemorySeries { name: string, points: MemoryPoint[], idleCpuPct?: number, openMs: number[] }
export interface MemoryResult { series: MemorySeries[], markdown: string }

const LEVELS = QUICK ? [1, 10] : [1, 10, 50]
/** The reference to 50 sessions (50 whole Chromiums) only with BENCH_FULL=1: it alone takes minutes. */
const REF_LEVELS = FULL ? LEVELS : [1, 10]
const UNTUNED = { PAGE_NO_CANVAS: 'false', PAGE_BLOCK_RESOURCES: 'none' }
/** Logins opened at once (BENCH_OPEN_CONCURRENCY; fewer on a loaded host, where four heavy logins can time out). */
const OPEN_CONCURRENCY = Number(process.env.BENCH_OPEN_CONCURRENCY ?? 4)

/**
 * PSS in the steady state: after a full GC in every page (what V8 does by
 * itself ~30 s after a login) and a pause, the median of three readings.
 */
async function measure (pid: number): Promise<{ mb: number, procs: number }> {
  await sleep(500)
  await collectGarbage(pid)
  await sleep(1500)
  const xs: Array<{ mb: number, procs: number }> = []
  for (let i = 0; i < 3; i++) { xs.push(pssMB(pid)); await sleep(300) }
  xs.sort((a, b) => a.mb - b.mb)
  return xs[1]!
}

/** CPU of the tree while the sessions idle, % of one core. */
async function idleCpu (pid: number): Promise<number> {
  const ms = QUICK ? 3000 : 5000
  const a = cpuSeconds(pid)
  await sleep(ms)
  return (cpuSeconds(pid) - a) / (ms / 1000) * 100
}

async function fill (from: number, to: number, open: (i: number) => Promise<number>, openMs: number[]): Promise<void> {
  let next = from
  const worker = async (): Promise<void> => {
    while (next < to) {
      const i = next++
      openMs.push(await open(i))
    }
  }
  await Promise.all(Array.from({ length: Math.min(OPEN_CONCURRENCY, to - from) }, worker))
}

async function series (name: string, child: Child, root: number, levels: number[], open: (i: number) => Promise<number>, withIdle: boolean): Promise<MemorySeries> {
  const s: MemorySeries = { name, points: [], openMs: [] }
  const base = await measure(root)
  s.points.push({ sessions: 0, ...base })
  let have = 0
  for (const n of levels) {
    log(`memory: ${name}: opening sessions ${have + 1}–${n}`)
    await fill(have, n, open, s.openMs)
    have = n
    const m = await measure(root)
    s.points.push({ sessions: n, ...m })
    log(`memory: ${name}: ${n} sessions, ${fmt(m.mb, 0)} MB PSS in ${m.procs} processes`)
  }
  if (withIdle) s.idleCpuPct = await idleCpu(root)
  await child.close()
  return s
}

export async function benchMemory (stage: Stage): Promise<MemoryResult> {
  const max = Math.max(...LEVELS)
  if (stage.running.length < max) throw new Error(`memory benchmark needs ${max} stand-ins`)
  const out: MemorySeries[] = []
  const env = serviceEnv({ MAX_SESSIONS: String(max + 10), MAX_SESSIONS_PER_KEY: String(max + 10) })

  const svc = async (name: string, levels: number[], tuned: boolean, withIdle: boolean, foundries = stage.running): Promise<MemorySeries> => {
    const { child, ready } = await forkChild<{ port: number }>('service-proc.ts', tuned ? env : { ...env, ...UNTUNED })
    return await series(name, child, child.pid, levels, async (i) => {
      const r = await startSession(ready.port, foundries[i]!)
      if (r.status !== 200) throw new Error(`start-session ${r.status} ${r.code ?? ''}`)
      return r.ms
    }, withIdle)
  }
  out.push(await svc('service (defaults)', LEVELS, true, true))
  // The tuning's effect one setting at a time is `npm run bench -- tuning`.
  if (FULL) out.push(await svc('service, tuning off', [1, 10], false, false))

  const reference = async (name: string, levels: number[], foundries: typeof stage.running, withIdle: boolean): Promise<MemorySeries> => {
    const { child } = await forkChild<{ pid: number }>('ref-proc.ts', { CHROMIUM_PATH: process.env.CHROMIUM_PATH ?? '' })
    return await series(name, child, child.pid, levels, async (i) => {
      const f = foundries[i]!
      const r = await child.call<{ ms: number }>({ type: 'open', url: f.standin.url, username: f.user.name, password: f.user.password })
      return r.ms
    }, withIdle)
  }
  // A light /game shows what the process model alone saves (BENCH_FULL=1).
  const light: MemorySeries[] = []
  if (FULL && stage.light.length >= 10) {
    light.push(await svc('light /game: service (defaults)', [1, 10], true, false, stage.light))
    light.push(await reference('light /game: reference', [1, 10], stage.light, false))
  }
  out.push(await reference('reference: one Chromium per session', REF_LEVELS, stage.running, true))

  const per = (s: MemorySeries, n: number): number => {
    const one = s.points.find((p) => p.sessions === 1)
    const at = s.points.find((p) => p.sessions === n)
    return one === undefined || at === undefined ? NaN : (at.mb - one.mb) / (n - 1)
  }
  const rows: string[][] = []
  for (const s of [...out, ...light]) {
    const ref = light.includes(s) ? light[1]! : out.at(-1)!
    for (const p of s.points) {
      const add = p.sessions > 1 ? per(s, p.sessions) : NaN
      const refAdd = p.sessions > 1 ? per(ref, p.sessions) : NaN
      rows.push([s.name, String(p.sessions), String(p.procs), fmt(p.mb, 0), p.sessions > 1 ? fmt(add, 1) : '', s !== ref && p.sessions > 1 && Number.isFinite(refAdd / add) ? `${fmt(refAdd / add, 1)}×` : ''])
    }
  }
  const cpuRows = out.filter((s) => s.idleCpuPct !== undefined).map((s) => [s.name, String(s.points.at(-1)?.sessions ?? 0), fmt(s.idleCpuPct!, 1)])
  const markdown = [
    table('3. Memory: PSS of the whole process tree (Node + Chromium), heavy /game',
      ['what', 'sessions', 'processes', 'PSS MB', 'MB per additional session', 'reference ÷ this'], rows),
    '',
    table('3b. CPU while the sessions idle (tree, % of one core)', ['what', 'sessions', 'CPU %'], cpuRows)
  ].join('\n')
  return { series: [...out, ...light], markdown }
}

export interface TuningRow {
  name: string
  env: Record<string, string>
  perSessionMB: number
  loginMs: number
  /** CPU seconds of the whole tree (Node + Chromium) per login. */
  loginCpuS: number
  /** Module request round trips (bench/module-request.ts), ms. */
  moduleMs: number[]
  /** CPU ms of the whole tree per module request. */
  moduleCpuMs: number
  /** Logins that failed and were retried. */
  failures: number
}

const flags = (...f: string[]): Record<string, string> => ({ CHROMIUM_ARGS: f.join(' ') })

/**
 * The settings tried one at a time: the page's (PAGE_*), then Chromium and
 * V8 flags through CHROMIUM_ARGS on top of the defaults.
 */
export const TUNING_VARIANTS: Array<{ name: string, env: Record<string, string> }> = [
  { name: 'defaults', env: {} },
  { name: 'images, media and fonts loaded (PAGE_BLOCK_RESOURCES=none)', env: { PAGE_BLOCK_RESOURCES: 'none' } },
  { name: 'canvas on (PAGE_NO_CANVAS=false)', env: { PAGE_NO_CANVAS: 'false' } },
  { name: 'defaults, FOUNDRY_URL_POLICY=any (no request guard)', env: { FOUNDRY_URL_POLICY: 'any' } },
  { name: '--js-flags=--max-semi-space-size=1', env: flags('--js-flags=--max-semi-space-size=1') },
  { name: '--js-flags=--optimize-for-size', env: flags('--js-flags=--optimize-for-size') },
  { name: '--js-flags=--bytecode-old-age=1', env: flags('--js-flags=--bytecode-old-age=1') },
  { name: '--js-flags=--single-threaded-gc', env: flags('--js-flags=--single-threaded-gc') },
  { name: '--js-flags=--lite-mode', env: flags('--js-flags=--lite-mode') },
  { name: '--enable-low-end-device-mode', env: flags('--enable-low-end-device-mode') },
  { name: '--disable-features=BackForwardCache', env: flags('--disable-features=BackForwardCache') },
  { name: 'defaults (again, for drift)', env: {} }
]

/**
 * What each setting costs and saves: PSS per session at n sessions (over
 * the tree at 0), the median login and the module request round trip,
 * one setting changed at a time. Not in the default run (`npm run bench --
 * tuning`); BENCH_VARIANTS=<regexp> runs only the matching variants.
 */
export async function benchTuning (stage: Stage, variants = TUNING_VARIANTS): Promise<{ rows: TuningRow[], markdown: string }> {
  const n = Number(process.env.BENCH_TUNING_SESSIONS ?? (QUICK ? 6 : 10))
  const rounds = QUICK ? 3 : 5
  const env = serviceEnv({ MAX_SESSIONS: String(n + 5), MAX_SESSIONS_PER_KEY: String(n + 5) })
  const only = process.env.BENCH_VARIANTS !== undefined ? new RegExp(process.env.BENCH_VARIANTS) : null
  const rows: TuningRow[] = []
  for (const v of variants.filter((x, i) => i === 0 || only === null || only.test(x.name))) {
    const { child, ready } = await forkChild<{ port: number }>('service-proc.ts', { ...env, ...v.env })
    try {
      const base = await measure(child.pid)
      const ms: number[] = []
      const clientIds: string[] = []
      let failures = 0
      log(`tuning: ${v.name}: ${n} sessions`)
      const cpu0 = cpuSeconds(child.pid)
      try {
        await fill(0, n, async (i) => {
          // On a loaded host a login can time out: retry twice, and count it.
          for (let attempt = 0; ; attempt++) {
            const r = await startSession(ready.port, stage.running[i]!)
            if (r.status === 200 && r.clientId !== undefined) { clientIds.push(r.clientId); return r.ms }
            failures++
            log(`tuning: ${v.name}: start-session ${r.status} ${r.code ?? ''}`)
            if (attempt >= 2) throw new Error(`start-session ${r.status} ${r.code ?? ''}`)
          }
        }, ms)
      } catch (err) {
        // A setting that breaks logins is a result too: its row says so.
        log(`tuning: ${v.name}: gave up (${(err as Error).message})`)
        rows.push({ name: v.name, env: v.env, perSessionMB: NaN, loginMs: NaN, loginCpuS: NaN, moduleMs: [], moduleCpuMs: NaN, failures })
        continue
      }
      const loginCpuS = (cpuSeconds(child.pid) - cpu0) / n
      const at = await measure(child.pid)
      const cpu1 = cpuSeconds(child.pid)
      const moduleMs = await moduleRequests(stage.relay, clientIds, rounds)
      const moduleCpuMs = (cpuSeconds(child.pid) - cpu1) * 1000 / moduleMs.length
      const row = { name: v.name, env: v.env, perSessionMB: (at.mb - base.mb) / n, loginMs: median(ms), loginCpuS, moduleMs, moduleCpuMs, failures }
      log(`tuning: ${v.name}: ${fmt(row.perSessionMB, 1)} MB a session, login ${fmt(row.loginMs, 0)} ms (${fmt(loginCpuS, 2)} CPU s), module request ${fmt(median(moduleMs), 1)} ms (${fmt(moduleCpuMs, 1)} CPU ms)`)
      rows.push(row)
    } finally {
      await child.close()
    }
  }
  const d = rows[0]!
  const signed = (x: number, digits: number): string => `${x >= 0 ? '+' : ''}${fmt(x, digits)}`
  const markdown = table(`Tuning, one setting at a time: ${n} sessions opened ${OPEN_CONCURRENCY} at a time (heavy /game)`,
    ['variant', 'MB per session', 'vs defaults', 'login p50 ms', 'login CPU s', 'vs defaults', 'module request p50 ms', 'p99 ms', 'CPU ms', 'vs defaults', 'failed logins'],
    rows.map((r) => [r.name, fmt(r.perSessionMB, 1), signed(r.perSessionMB - d.perSessionMB, 1), fmt(r.loginMs, 0),
      fmt(r.loginCpuS, 2), ratio(r.loginCpuS, d.loginCpuS), fmt(median(r.moduleMs), 1), fmt(p99(r.moduleMs), 1), fmt(r.moduleCpuMs, 1),
      ratio(r.moduleCpuMs, d.moduleCpuMs), String(r.failures)]))
  return { rows, markdown }
}

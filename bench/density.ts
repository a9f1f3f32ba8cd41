// 5. Density: what a session costs a host, side by side in one run.
//  a. Memory: PSS of the whole tree at 0, 1 and n sessions on the heavy and
//     the light /game, the page's own live JS heap (the floor), the peak of
//     one login above the idle tree, and from those the sessions that fit on
//     a 1 GB and a 2 GB machine with headroom for one more login — now, and
//     with the figures of the run before issue 12 (BEFORE). Also each login's
//     CPU and each module request's round trip and CPU.
//  b. Idle CPU: the service holding n logins against a bare browser holding
//     the same logins (one Chromium, a context per login, the same page
//     tuning and flags, nothing watching), both running at once and read
//     over the same windows, so the host's load hits both alike.
import { startSession } from './client.ts'
import { readFileSync } from 'node:fs'
import { loadavg } from 'node:os'
import {
  collectGarbage, cpuByKind, cpuSeconds, forkChild, fmt, FULL, jsHeapMB, log, median, p99, pssByKind, pssMB, QUICK, ratio, serviceEnv, sleep, table, tree,
  type Child, type CpuByKind, type Foundry, type PssByKind, type Stage
} from './lib.ts'
import { moduleRequests } from './module-request.ts'

/**
 * The service before issue 12: MB per additional session from the last run
 * of docs/benchmarks.md that measured it (BENCH_FULL, heavy and light /game),
 * and the idle tree of this run plus the launch's about:blank tab it kept
 * open then (one renderer, 16 MB measured). Neither can be switched back on
 * in a run: no browser flag was kept, and the tab is closed now.
 */
export const BEFORE = { blankTabMB: 16, perSessionMB: { heavy: 215.9, light: 21.3 } }
const OPEN_CONCURRENCY = Number(process.env.BENCH_OPEN_CONCURRENCY ?? 2)
const MACHINES_MB = [1024, 2048]
/**
 * A second launch of the service measured beside the defaults, page by page
 * in the same run: right after the defaults, or right before with `=first`.
 * - BENCH_DENSITY_NO_ZYGOTE=1|first: with CHROMIUM_ARGS=--no-zygote (every
 *   renderer a fresh exec of the binary, as root ran before the zygote was
 *   kept);
 * - BENCH_DENSITY_WITHOUT='--flag'|'first --flag': without one of the flags
 *   the service adds to every launch (BENCH_CHROMIUM_DROP, read by the bench's
 *   service process only: Chromium has no switch undoing another, so
 *   CHROMIUM_ARGS cannot remove one), e.g. --disable-gpu-compositing.
 */
export interface DensityVariant { name: string, env: Record<string, string>, first: boolean }

export function densityVariants (env: NodeJS.ProcessEnv = process.env): DensityVariant[] {
  const out: DensityVariant[] = []
  const noZygote = env.BENCH_DENSITY_NO_ZYGOTE ?? ''
  if (noZygote === '1' || noZygote === 'first') {
    out.push({ name: 'service, `--no-zygote`', env: { CHROMIUM_ARGS: `${env.CHROMIUM_ARGS ?? ''} --no-zygote`.trim() }, first: noZygote === 'first' })
  }
  const without = (env.BENCH_DENSITY_WITHOUT ?? '').split(/\s+/).filter((a) => a !== '')
  const flags = without.filter((a) => a !== 'first')
  if (flags.length > 0) {
    const dropped = [...(env.BENCH_CHROMIUM_DROP ?? '').split(/\s+/).filter((a) => a !== ''), ...flags]
    out.push({ name: `service without ${flags.map((f) => `\`${f}\``).join(' ')}`, env: { BENCH_CHROMIUM_DROP: dropped.join(' ') }, first: without.includes('first') })
  }
  return out
}

/** The Chromium browser process's flags in a tree (the process without --type=), to check what a launch was given. */
function browserFlags (pid: number): string[] {
  for (const p of tree(pid)) {
    if (p === pid) continue
    try {
      const cmd = readFileSync(`/proc/${p}/cmdline`, 'utf8').split('\0')
      if (!cmd.some((a) => a.startsWith('--type=')) && cmd.some((a) => a.startsWith('--remote-debugging-'))) return cmd
    } catch {}
  }
  return []
}

export interface DensityMemory {
  name: string
  page: 'heavy' | 'light'
  baseMB: number
  oneMB: number
  atMB: number
  n: number
  perSessionMB: number
  /** The page's own live JavaScript heap after a full GC, per session: the floor no browser setting removes. */
  jsHeapMB: number
  loginPeakMB: number
  loginMs: number[]
  loginCpuS: number
  moduleMs: number[]
  moduleCpuMs: number
  fits: number[]
  /** CHROMIUM_ARGS of this configuration, if any (e.g. --no-zygote). */
  chromiumArgs?: string
  /** The service's default flags this configuration launched without (BENCH_CHROMIUM_DROP), if any. */
  dropped?: string
  /** PSS of the tree by process kind idle, at 1 and at n sessions (the readings above): where a session's memory goes. */
  kindsBase?: PssByKind
  kindsOne?: PssByKind
  kindsAt?: PssByKind
}

/** MB per additional session by process kind, from a memory series' readings at 1 and n sessions. */
export function perSessionByKind (m: DensityMemory): PssByKind | undefined {
  if (m.kindsOne === undefined || m.kindsAt === undefined || m.n < 2) return undefined
  const d = (k: keyof PssByKind): number => (m.kindsAt![k] - m.kindsOne![k]) / (m.n - 1)
  return { node: d('node'), browser: d('browser'), renderer: d('renderer'), rendererAnon: d('rendererAnon'), zygote: d('zygote'), other: d('other') }
}

export interface DensityIdle {
  sessions: number
  serviceCpuPct: number[]
  bareCpuPct: number[]
  /** CPU % of a core over all windows, by process kind (Node, browser process, renderers, the rest). */
  serviceKinds: CpuByKind
  bareKinds: CpuByKind
  serviceMB: number
  bareMB: number
  /** The host's 1-minute load average at the start and the end of the windows. */
  load: [number, number]
  /** Logins of each side whose module was still connected at the relay after the windows (a dead page idles cheaply). */
  alive?: { service: number, bare: number }
}

/** Light-page sessions the idle CPU part holds, in steps: BENCH_IDLE_LEVELS=10,50 (default 10, 10 and 50 with BENCH_FULL). */
export const IDLE_LEVELS = (process.env.BENCH_IDLE_LEVELS ?? (FULL ? '10,50' : '10')).split(',').map(Number).filter((x) => x > 0)

export interface DensityResult { memory: DensityMemory[], idle: DensityIdle[], markdown: string }

/** PSS in the steady state: a full GC in every page, then the median of three readings. */
async function steadyPss (pid: number): Promise<number> {
  return (await steadyKinds(pid)).mb
}

/** The same, with the median reading split by process kind. */
async function steadyKinds (pid: number): Promise<{ mb: number, kinds: PssByKind }> {
  await sleep(500)
  await collectGarbage(pid)
  await sleep(1500)
  const xs: Array<{ mb: number, kinds: PssByKind }> = []
  for (let i = 0; i < 3; i++) {
    const kinds = pssByKind(pid)
    xs.push({ mb: kinds.node + kinds.browser + kinds.renderer + kinds.zygote + kinds.other, kinds })
    await sleep(300)
  }
  return xs.sort((a, b) => a.mb - b.mb)[1]!
}

async function pool<T> (items: T[], concurrency: number, fn: (item: T) => Promise<void>): Promise<void> {
  let next = 0
  await Promise.all(Array.from({ length: Math.min(concurrency, items.length) }, async () => {
    while (next < items.length) await fn(items[next++]!)
  }))
}

type Opener = (f: Foundry) => Promise<{ ms: number, clientId: string }>

function serviceOpener (port: number): Opener {
  return async (f) => {
    for (let attempt = 0; ; attempt++) {
      const r = await startSession(port, f)
      if (r.status === 200 && r.clientId !== undefined) return { ms: r.ms, clientId: r.clientId }
      log(`density: start-session ${r.status} ${r.code ?? ''}`)
      if (attempt >= 2) throw new Error(`start-session ${r.status} ${r.code ?? ''}`)
    }
  }
}

function bareOpener (child: Child): Opener {
  return async (f) => await child.call<{ ms: number, clientId: string }>({ type: 'open', url: f.standin.url, username: f.user.name, password: f.user.password })
}

/** Memory, login and module-request cost of one configuration. */
async function memorySeries (stage: Stage, name: string, page: 'heavy' | 'light', env: Record<string, string>, foundries: Foundry[]): Promise<DensityMemory> {
  const n = foundries.length
  const { child, ready } = await forkChild<{ port: number }>('service-proc.ts', serviceEnv({ ...env, MAX_SESSIONS: String(n + 5), MAX_SESSIONS_PER_KEY: String(n + 5) }))
  try {
    const open = serviceOpener(ready.port)
    const { mb: baseMB, kinds: kindsBase } = await steadyKinds(child.pid)
    // The first login alone, its tree sampled every 100 ms: the peak above
    // the idle tree is the headroom a host must keep for one more login.
    let peak = 0
    let sampling = true
    const sampler = (async () => { while (sampling) { peak = Math.max(peak, pssMB(child.pid).mb); await sleep(100) } })()
    const loginMs: number[] = []
    const clientIds: string[] = []
    const cpu0 = cpuSeconds(child.pid)
    const first = await open(foundries[0]!)
    sampling = false
    await sampler
    loginMs.push(first.ms)
    clientIds.push(first.clientId)
    // What the launch was given, read off the running browser: a dropped
    // flag that is still there would measure the defaults twice.
    const flags = browserFlags(child.pid)
    const droppedFlags = env.BENCH_CHROMIUM_DROP ?? process.env.BENCH_CHROMIUM_DROP
    const dropped = (droppedFlags ?? '').split(/\s+/).filter((a) => a !== '')
    if (flags.length === 0) log(`density: ${name}: the browser's flags could not be read`)
    else if (dropped.some((f) => flags.includes(f))) throw new Error(`density: ${name}: launched with ${dropped.filter((f) => flags.includes(f)).join(' ')}, which it was to go without`)
    else log(`density: ${name}: browser launched with ${flags.filter((a) => a.includes('gpu') || a.includes('zygote')).join(' ') || 'no gpu/zygote flag'}`)
    const { mb: oneMB, kinds: kindsOne } = await steadyKinds(child.pid)
    log(`density: ${name} (${page}): 1 session, ${fmt(oneMB, 0)} MB, login peak +${fmt(peak - baseMB, 0)} MB`)
    const cpu1 = cpuSeconds(child.pid)
    await pool(foundries.slice(1), OPEN_CONCURRENCY, async (f) => {
      const r = await open(f)
      loginMs.push(r.ms)
      clientIds.push(r.clientId)
    })
    const loginCpuS = (cpuSeconds(child.pid) - cpu1 + (cpu1 - cpu0)) / n
    const { mb: atMB, kinds: kindsAt } = await steadyKinds(child.pid)
    // Per page; the median, as a page busy with its own work may not answer.
    const heaps = await jsHeapMB(child.pid)
    const jsHeap = median(heaps.filter((x) => x > 0))
    log(`density: ${name} (${page}): JS heap per page ${heaps.map((x) => fmt(x, 1)).join(', ')} MB`)
    const cpu2 = cpuSeconds(child.pid)
    const moduleMs = await moduleRequests(stage.relay, clientIds, QUICK ? 2 : 4)
    const moduleCpuMs = (cpuSeconds(child.pid) - cpu2) * 1000 / moduleMs.length
    const perSessionMB = (atMB - oneMB) / (n - 1)
    const loginPeakMB = peak - baseMB
    const fits = MACHINES_MB.map((m) => Math.max(0, Math.floor((m - baseMB - Math.max(loginPeakMB, perSessionMB)) / perSessionMB)))  // as fitsOn below
    log(`density: ${name} (${page}): ${n} sessions, ${fmt(atMB, 0)} MB, ${fmt(perSessionMB, 1)} MB a session; module request ${fmt(median(moduleMs), 1)} ms`)
    return { name, page, baseMB, oneMB, atMB, n, perSessionMB, jsHeapMB: jsHeap, loginPeakMB, loginMs, loginCpuS, moduleMs, moduleCpuMs, fits, chromiumArgs: env.CHROMIUM_ARGS, dropped: droppedFlags, kindsBase, kindsOne, kindsAt }
  } finally {
    await child.close()
  }
}

const kindPct = (k0: CpuByKind, k1: CpuByKind, s: number): CpuByKind =>
  ({ node: (k1.node - k0.node) / s * 100, browser: (k1.browser - k0.browser) / s * 100, renderer: (k1.renderer - k0.renderer) / s * 100, other: (k1.other - k0.other) / s * 100 })

/** CPU % of one core of each tree, over the same `windows` windows, and by process kind over all of them. */
async function idleWindows (a: number, b: number, windows: number, ms: number): Promise<{ a: number[], b: number[], aKinds: CpuByKind, bKinds: CpuByKind }> {
  const out = { a: [] as number[], b: [] as number[] }
  const ka = cpuByKind(a)
  const kb = cpuByKind(b)
  const t0 = performance.now()
  for (let i = 0; i < windows; i++) {
    const a0 = cpuSeconds(a)
    const b0 = cpuSeconds(b)
    await sleep(ms)
    out.a.push((cpuSeconds(a) - a0) / (ms / 1000) * 100)
    out.b.push((cpuSeconds(b) - b0) / (ms / 1000) * 100)
  }
  const s = (performance.now() - t0) / 1000
  return { ...out, aKinds: kindPct(ka, cpuByKind(a), s), bKinds: kindPct(kb, cpuByKind(b), s) }
}

/** The service and a bare browser, each holding the same number of light-page logins, idle side by side. */
export async function idleSeries (stage: Stage, levels: number[]): Promise<DensityIdle[]> {
  const max = Math.max(...levels)
  const svcFoundries = stage.light.slice(0, max)
  const bareFoundries = stage.light.slice(max, 2 * max)
  if (bareFoundries.length < max) throw new Error(`idle CPU needs ${2 * max} light stand-ins`)
  const svc = await forkChild<{ port: number }>('service-proc.ts', serviceEnv({ MAX_SESSIONS: String(max + 5), MAX_SESSIONS_PER_KEY: String(max + 5) }))
  const bare = await forkChild<{ pid: number }>('ref-proc.ts', { CHROMIUM_PATH: process.env.CHROMIUM_PATH ?? '', REF_MODE: 'contexts' })
  const out: DensityIdle[] = []
  try {
    const openSvc = serviceOpener(svc.ready.port)
    const openBare = bareOpener(bare.child)
    let have = 0
    const svcIds: string[] = []
    const bareIds: string[] = []
    for (const n of levels) {
      log(`density: idle: opening ${have + 1}–${n} in the service and in the bare browser`)
      const pairs = Array.from({ length: n - have }, (_, k) => have + k)
      await pool(pairs, OPEN_CONCURRENCY, async (i) => {
        const [a, b] = await Promise.all([openSvc(svcFoundries[i]!), openBare(bareFoundries[i]!)])
        svcIds.push(a.clientId)
        bareIds.push(b.clientId)
      })
      if (have === 0) {
        // Like for like: both launched through lib/browser/chromium.ts with
        // the same defaults (BENCH_CHROMIUM_DROP reaches both); the service's
        // own are the egress gate's (a proxy, no resolver of its own).
        const s = browserFlags(svc.child.pid).filter((a) => !/^--(user-data-dir|remote-debugging)/.test(a))
        const b = browserFlags(bare.child.pid).filter((a) => !/^--(user-data-dir|remote-debugging)/.test(a))
        const onlyS = s.filter((a) => !b.includes(a))
        const onlyB = b.filter((a) => !s.includes(a))
        log(`density: idle: flags only the service's browser has: ${onlyS.join(' ') || 'none'}; only the bare one: ${onlyB.join(' ') || 'none'}`)
        if (s.includes('--disable-gpu-compositing') !== b.includes('--disable-gpu-compositing')) throw new Error('density: idle: the service and the bare browser differ in --disable-gpu-compositing')
      }
      have = n
      // Past the logins' own after-work (V8's memory reducer runs ~30 s
      // after a page goes quiet): force it, then let both settle.
      const [serviceMB, bareMB] = await Promise.all([steadyPss(svc.child.pid), steadyPss(bare.child.pid)])
      await sleep(QUICK ? 3000 : 10_000)
      const load0 = loadavg()[0]!
      const w = await idleWindows(svc.child.pid, bare.child.pid, QUICK ? 3 : 6, QUICK ? 5000 : 10_000)
      const load: [number, number] = [load0, loadavg()[0]!]
      const open = new Set(stage.relay.open().map((c) => c.id))
      const alive = { service: svcIds.filter((id) => open.has(id)).length, bare: bareIds.filter((id) => open.has(id)).length }
      if (alive.service < n || alive.bare < n) log(`density: idle at ${n}: only ${alive.service} service and ${alive.bare} bare modules still connected`)
      const kinds = (k: CpuByKind): string => `node ${fmt(k.node, 2)}, browser ${fmt(k.browser, 2)}, renderers ${fmt(k.renderer, 2)}, other ${fmt(k.other, 2)}`
      log(`density: idle at ${n} (load ${fmt(load[0], 1)}→${fmt(load[1], 1)}): service ${w.a.map((x) => fmt(x, 1)).join('/')} % (${kinds(w.aKinds)}), bare ${w.b.map((x) => fmt(x, 1)).join('/')} % (${kinds(w.bKinds)})`)
      out.push({ sessions: n, serviceCpuPct: w.a, bareCpuPct: w.b, serviceKinds: w.aKinds, bareKinds: w.bKinds, serviceMB, bareMB, load, alive })
    }
  } finally {
    await Promise.all([svc.child.close(), bare.child.close()])
  }
  return out
}

const sum = (xs: number[]): number => xs.reduce((a, b) => a + b, 0)

export async function benchDensity (stage: Stage): Promise<DensityResult> {
  const n = Number(process.env.BENCH_DENSITY_SESSIONS ?? (QUICK ? 4 : 8))
  const memory: DensityMemory[] = []
  const heavy = stage.running.slice(0, n)
  const light = stage.light.slice(0, n)
  const pages = (process.env.BENCH_DENSITY_PAGES ?? 'heavy,light').split(',')
  for (const [page, fs] of ([['heavy', heavy], ['light', light]] as const).filter(([p]) => pages.includes(p))) {
    if (fs.length < n) throw new Error(`density needs ${n} ${page} stand-ins`)
    const variants = densityVariants()
    const before: DensityMemory[] = []
    for (const v of variants.filter((x) => x.first)) before.push(await memorySeries(stage, v.name, page, v.env, fs))
    memory.push(await memorySeries(stage, 'service (defaults)', page, {}, fs))
    memory.push(...before)
    for (const v of variants.filter((x) => !x.first)) memory.push(await memorySeries(stage, v.name, page, v.env, fs))
  }
  const idle = IDLE_LEVELS.length > 0 ? await idleSeries(stage, IDLE_LEVELS) : []

  const fitsOn = (base: number, per: number, peak: number): number[] =>
    MACHINES_MB.map((m) => Math.max(0, Math.floor((m - base - Math.max(peak, per)) / per)))
  const memRows: string[][] = []
  for (const m of memory) {
    const before = BEFORE.perSessionMB[m.page]
    const beforeBase = m.baseMB + BEFORE.blankTabMB
    const beforeFits = fitsOn(beforeBase, before, m.loginPeakMB)
    if (m.name === 'service (defaults)') {
      memRows.push([`${m.page}: before (per session: earlier run)`, fmt(beforeBase, 0), '', '', fmt(before, 1), '', '', fmt(m.loginPeakMB, 0),
        String(beforeFits[0]), String(beforeFits[1]), '', '', '', '', '', ''])
    }
    memRows.push([
      `${m.page}: ${m.name}`, fmt(m.baseMB, 0), fmt(m.oneMB, 0), `${fmt(m.atMB, 0)} (${m.n})`, fmt(m.perSessionMB, 1),
      ratio(m.perSessionMB, before), fmt(m.jsHeapMB, 1), fmt(m.loginPeakMB, 0), String(m.fits[0]), String(m.fits[1]),
      fmt(median(m.loginMs), 0), fmt(m.loginCpuS, 2), fmt(median(m.moduleMs), 1), fmt(p99(m.moduleMs), 1), fmt(m.moduleCpuMs, 1),
      m.page === 'heavy' ? `${ratio(m.jsHeapMB, m.perSessionMB)} of it the page's own heap` : ''
    ])
  }
  const kindRows = memory.flatMap((m) => {
    const k = perSessionByKind(m)
    if (k === undefined) return []
    return [[`${m.page}: ${m.name}`, fmt(m.perSessionMB, 1), fmt(m.jsHeapMB, 1), fmt(m.perSessionMB - m.jsHeapMB, 1),
      fmt(k.renderer, 1), fmt(k.rendererAnon, 1), fmt(k.zygote, 1), fmt(k.renderer + k.zygote - m.jsHeapMB, 1), fmt(k.browser, 1), fmt(k.other, 1), fmt(k.node, 1),
      m.kindsBase === undefined ? '' : [m.kindsBase.node, m.kindsBase.browser, m.kindsBase.zygote, m.kindsBase.other].map((x) => fmt(x, 0)).join(' / ')]]
  })
  const split = (k: CpuByKind): string => `${fmt(k.node, 2)} / ${fmt(k.browser, 2)} / ${fmt(k.renderer, 2)} / ${fmt(k.other, 2)}`
  const idleRows = idle.map((d) => [String(d.sessions), fmt(median(d.serviceCpuPct), 2), fmt(median(d.bareCpuPct), 2),
    ratio(sum(d.serviceCpuPct), sum(d.bareCpuPct)), split(d.serviceKinds), split(d.bareKinds), fmt(d.serviceMB, 0), fmt(d.bareMB, 0),
    `${fmt(d.load[0], 1)}→${fmt(d.load[1], 1)}`])
  const markdown = [
    ...(memRows.length === 0
      ? []
      : [table(`5. Density: sessions per machine, ${n} sessions opened ${OPEN_CONCURRENCY} at a time`,
          ['page: configuration', 'PSS MB idle', '1 session', 'n sessions', 'MB per additional session', 'vs before', 'page JS heap MB', 'login peak MB',
            'fit in 1 GB', 'fit in 2 GB', 'login p50 ms', 'login CPU s', 'module request p50 ms', 'p99 ms', 'CPU ms', 'floor'], memRows),
        '',
        '"page JS heap" = the live JavaScript heap of one session\'s page after a full GC (V8 usedSize): what the Foundry page itself holds, the floor of "MB per additional session".',
        '"fit in" = sessions that fit on a machine of that size beside the idle service and the peak of one more login: ⌊(size − idle − login peak) ÷ MB per session⌋ (the OS itself not counted).',
        '']),
    ...(kindRows.length === 0
      ? []
      : [table('5a. Where an additional session\'s PSS goes, MB (from the readings at 1 and n sessions, by process kind)',
          ['page: configuration', 'per session', 'page JS heap', 'above the heap', 'renderer', 'of it anonymous', 'zygote', 'renderer + zygote − heap', 'browser process', 'other Chromium', 'service Node', 'idle tree: Node / browser / zygotes / other'], kindRows),
        '',
        'With the zygote a renderer is forked from it and shares its pages: PSS charges those to both, so the zygote\'s share falls as renderers are added (a negative figure). "renderer + zygote − heap" is what a session\'s renderer holds besides its page\'s live heap.',
        '']),
    ...(idleRows.length === 0
      ? []
      : [table('5b. Idle CPU: the service against a bare browser holding the same logins (light /game, both at once, same windows)',
          ['sessions', 'service CPU % (median window)', 'bare browser CPU %', 'service ÷ bare (all windows)', 'service: node / browser / renderers / other %', 'bare: driver / browser / renderers / other %',
            'service PSS MB', 'bare PSS MB', 'load avg'], idleRows)])
  ].join('\n')
  return { memory, idle, markdown }
}

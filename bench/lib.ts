// Shared pieces of the benchmarks: statistics, tables, process trees and
// their proportional set size, child processes, Foundry stand-ins.
import { fork, type ChildProcess } from 'node:child_process'
import puppeteer, { type CDPSession } from 'puppeteer-core'
import { readFileSync } from 'node:fs'
import { cpus, totalmem, release } from 'node:os'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { processes, processTree } from '../support/proc.ts'
import { startFoundryStandin, type Standin, type StandinUser, type StandinWorld } from '../support/foundry/standin.ts'
import { startRelayStandin, type RelayStandin } from '../support/foundry/relay.ts'

export const BENCH_DIR = dirname(fileURLToPath(import.meta.url))
export const ROOT = join(BENCH_DIR, '..')
export const QUICK = process.env.BENCH_QUICK === '1'
/** Also the slow references: 50 Chromiums, 20 logins at once. */
export const FULL = process.env.BENCH_FULL === '1'

export const BENCH_KEY = 'bench-api-key-0123456789abcdef'

/** Environment of a benchmarked service: nothing but loopback, no handshake rate limit. */
export function serviceEnv (extra: Record<string, string> = {}): Record<string, string> {
  return {
    API_KEYS: BENCH_KEY,
    LOG_LEVEL: 'info',
    HANDSHAKE_RATE_MAX: '0',
    HANDSHAKE_MAX: '5000000',
    HANDSHAKE_MAX_PER_KEY: '5000000',
    CHROMIUM_PATH: process.env.CHROMIUM_PATH ?? '',
    ...extra
  }
}

// — statistics —

export function quantile (xs: number[], q: number): number {
  if (xs.length === 0) return NaN
  const s = [...xs].sort((a, b) => a - b)
  // Nearest rank: p99 of 50 samples is the largest one, never interpolated below it.
  const i = Math.min(s.length - 1, Math.max(0, Math.ceil(q * s.length) - 1))
  return s[i]!
}
export const median = (xs: number[]): number => quantile(xs, 0.5)
export const p99 = (xs: number[]): number => quantile(xs, 0.99)

export function fmt (x: number, digits = 1): string {
  if (!Number.isFinite(x)) return '—'
  if (Math.abs(x) >= 1000) return Math.round(x).toLocaleString('en-US')
  return x.toFixed(digits)
}

export function ratio (a: number, b: number): string {
  return Number.isFinite(a) && Number.isFinite(b) && b !== 0 ? `${(a / b).toFixed(2)}×` : '—'
}

/** A Markdown table (also readable in a terminal). */
export function table (title: string, head: string[], rows: string[][]): string {
  const w = head.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)))
  const line = (cells: string[]): string => '| ' + cells.map((c, i) => i === 0 ? c.padEnd(w[i]!) : c.padStart(w[i]!)).join(' | ') + ' |'
  const sep = '|' + w.map((n, i) => i === 0 ? '-'.repeat(n + 2) : '-'.repeat(n + 1) + ':').join('|') + '|'
  return [`### ${title}`, '', line(head), sep, ...rows.map(line)].join('\n')
}

export const sleep = async (ms: number): Promise<void> => await new Promise((resolve) => setTimeout(resolve, ms))

export function log (msg: string): void {
  process.stderr.write(`[bench ${new Date().toISOString().slice(11, 19)}] ${msg}\n`)
}

// — processes —

/** `pid` and every live process below it. */
export const tree = processTree

/** CPU time the hypervisor gave to others while this VM wanted it, seconds so far (/proc/stat's steal). */
function stealSeconds (): number {
  const f = readFileSync('/proc/stat', 'utf8').split('\n')[0]!.trim().split(/\s+/)
  return Number(f[8] ?? 0) / 100
}

/**
 * The host's other work while a part runs, in cores: the CPU of every user
 * process that was never below this one, sampled from /proc every
 * `intervalMs` (a process counts from its first sample on), plus the time
 * the hypervisor stole for other machines. A process once seen below this
 * run stays the run's after its parent is gone, as Chromium's helpers are
 * when their browser closes and they are left to init. Kernel threads are
 * left out: on this host they work for the run itself (loopback traffic's
 * softirqs, writeback). The load average cannot tell any of this apart: it
 * counts the run's own logins (a burst of 20 heavy logins on 2 cores reads
 * as a load of 30 for minutes after). Call the returned function at the
 * part's end.
 */
export function otherWork (intervalMs = 500): () => number {
  const ours = new Set<string>()
  const last = new Map<string, number>()
  let ticks = 0
  const t0 = Date.now()
  const steal0 = stealSeconds()
  const sample = (): void => {
    // pid and start time: a reused pid is another process.
    const procs = processes().map((p) => ({ ...p, key: `${p.pid}:${p.start}`, cpu: p.cpuTicks }))
    const mine = new Set<number>([process.pid])
    for (const p of procs) if (ours.has(p.key)) mine.add(p.pid)
    for (let grew = true; grew;) {
      grew = false
      for (const p of procs) if (!mine.has(p.pid) && mine.has(p.ppid)) { mine.add(p.pid); grew = true }
    }
    for (const p of procs) {
      if (mine.has(p.pid)) { ours.add(p.key); last.delete(p.key); continue }
      if (p.pid === 2 || p.ppid === 2) continue
      const before = last.get(p.key)
      if (before !== undefined) ticks += p.cpu - before
      last.set(p.key, p.cpu)
    }
  }
  sample()
  const timer = setInterval(sample, intervalMs)
  timer.unref()
  return () => {
    sample()
    clearInterval(timer)
    const s = (Date.now() - t0) / 1000
    return s > 0 ? (ticks / 100 + stealSeconds() - steal0) / s : 0
  }
}

/** Proportional set size of a process tree, in MB (from /proc/<pid>/smaps_rollup). */
export function pssMB (pid: number): { mb: number, procs: number } {
  let kb = 0
  let procs = 0
  for (const p of tree(pid)) {
    try {
      const m = /^Pss:\s+(\d+) kB/m.exec(readFileSync(`/proc/${p}/smaps_rollup`, 'utf8'))
      if (m !== null) { kb += Number(m[1]); procs++ }
    } catch {}
  }
  return { mb: kb / 1024, procs }
}

/** CPU seconds (user + system) used so far by a process tree. */
export function cpuSeconds (pid: number): number {
  const hz = 100
  let ticks = 0
  for (const p of tree(pid)) {
    try {
      const stat = readFileSync(`/proc/${p}/stat`, 'utf8')
      const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ')
      ticks += Number(f[11]) + Number(f[12])
    } catch {}
  }
  return ticks / hz
}

export interface CpuByKind { node: number, browser: number, renderer: number, other: number }

/**
 * CPU seconds so far of a process tree, by kind: the Node process at its
 * root (the service or the reference's driver), Chromium's browser process,
 * its renderers, and the rest (GPU, network and other utility processes, zygotes).
 */
export function cpuByKind (pid: number): CpuByKind {
  const out: CpuByKind = { node: 0, browser: 0, renderer: 0, other: 0 }
  for (const p of tree(pid)) {
    try {
      const stat = readFileSync(`/proc/${p}/stat`, 'utf8')
      const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ')
      const s = (Number(f[11]) + Number(f[12])) / 100
      if (p === pid) { out.node += s; continue }
      const type = readFileSync(`/proc/${p}/cmdline`, 'utf8').split(/[\0 ]/).find((a) => a.startsWith('--type='))?.slice(7)
      if (type === undefined) out.browser += s
      else if (type === 'renderer') out.renderer += s
      else out.other += s
    } catch {}
  }
  return out
}

/**
 * PSS of a process tree split by process kind, MB: the Node process at its
 * root, Chromium's browser process, its renderers (and of them the anonymous
 * part: heaps and allocators, not the mapped binary), its zygotes (with the
 * zygote, renderers are forked from it and share its pages, so part of a
 * renderer's cost is charged to it) and the rest (GPU, network, utility).
 */
export interface PssByKind { node: number, browser: number, renderer: number, rendererAnon: number, zygote: number, other: number }

export function pssByKind (pid: number): PssByKind {
  const out: PssByKind = { node: 0, browser: 0, renderer: 0, rendererAnon: 0, zygote: 0, other: 0 }
  for (const p of tree(pid)) {
    try {
      const rollup = readFileSync(`/proc/${p}/smaps_rollup`, 'utf8')
      const field = (name: string): number => Number(new RegExp(`^${name}:\\s+(\\d+) kB`, 'm').exec(rollup)?.[1] ?? 0) / 1024
      const pss = field('Pss')
      if (p === pid) { out.node += pss; continue }
      const type = readFileSync(`/proc/${p}/cmdline`, 'utf8').split(/[\0 ]/).find((a) => a.startsWith('--type='))?.slice(7)
      if (type === 'renderer') {
        out.renderer += pss
        out.rendererAnon += field('Pss_Anon')
      } else if (type === undefined) out.browser += pss
      else if (type === 'zygote') out.zygote += pss
      else out.other += pss
    } catch {}
  }
  return out
}

/**
 * Run `fn` on a fresh DevTools session of every page of every Chromium below
 * `pid`, through each browser's own DevTools endpoint (its DevToolsActivePort
 * file), the service's and the references' alike.
 */
async function eachPage (pid: number, fn: (s: CDPSession) => Promise<void>): Promise<number> {
  let pages = 0
  for (const p of tree(pid)) {
    let cmd: string[]
    try { cmd = readFileSync(`/proc/${p}/cmdline`, 'utf8').split('\0') } catch { continue }
    if (cmd.some((a) => a.startsWith('--type='))) continue
    const dir = cmd.find((a) => a.startsWith('--user-data-dir='))?.slice('--user-data-dir='.length)
    if (dir === undefined || !cmd.some((a) => a.startsWith('--remote-debugging-'))) continue
    let endpoint: string
    try {
      const [port, path] = readFileSync(join(dir, 'DevToolsActivePort'), 'utf8').trim().split('\n')
      endpoint = `ws://127.0.0.1:${port ?? ''}${path ?? ''}`
    } catch { continue }
    const browser = await puppeteer.connect({ browserWSEndpoint: endpoint, defaultViewport: null })
    try {
      await Promise.all(browser.targets().filter((t) => t.type() === 'page').map(async (t) => {
        const s = await t.createCDPSession()
        await fn(s).catch(() => {})
        await s.detach().catch(() => {})
        pages++
      }))
    } finally {
      await browser.disconnect()
    }
  }
  return pages
}

/**
 * A full garbage collection in every page of every Chromium below `pid`.
 * V8's memory reducer does the same on its own within about 30 s of
 * idling; forcing it measures that steady state without the wait, for the
 * service and the reference alike.
 */
export async function collectGarbage (pid: number): Promise<number> {
  return await eachPage(pid, async (s) => { await s.send('HeapProfiler.collectGarbage') })
}

/** Live JavaScript heap of each page below `pid` (V8's usedSize, after a GC), MB. */
export async function jsHeapMB (pid: number): Promise<number[]> {
  const out: number[] = []
  await eachPage(pid, async (s) => {
    await s.send('Runtime.enable')
    out.push((await s.send('Runtime.getHeapUsage')).usedSize / 2 ** 20)
  })
  return out
}

const children = new Set<ChildProcess>()

/** SIGKILL a process tree (children first seen, so none is orphaned). */
export function killTree (pid: number): void {
  for (const p of tree(pid).reverse()) {
    try { process.kill(p, 'SIGKILL') } catch {}
  }
}

/** Kill every child this run started, with its Chromium processes. */
export function killAllChildren (): void {
  for (const c of children) if (c.pid !== undefined) killTree(c.pid)
  children.clear()
  for (const pid of ownBrowsers) killTree(pid)
  ownBrowsers.clear()
}

/** Chromiums this process launches itself (the egress part's), killed with the children. */
const ownBrowsers = new Set<number>()

/** Have killAllChildren kill this browser's tree too (on a signal or a crash); returns it. */
export function killedOnExit<B extends { process: () => { pid?: number | undefined } | null }> (browser: B): B {
  const pid = browser.process()?.pid
  if (pid !== undefined) ownBrowsers.add(pid)
  return browser
}

export interface Child {
  proc: ChildProcess
  pid: number
  /** Send a request, resolve with the reply carrying the same id. */
  call: <T = unknown>(msg: Record<string, unknown>) => Promise<T>
  /** Ask it to close (ends its Chromium), then make sure the tree is gone. */
  close: () => Promise<void>
}

/** Fork a TypeScript entry point of bench/ with IPC; resolves on its first message ({ready: …}). */
export async function forkChild<R> (entry: string, env: Record<string, string>): Promise<{ child: Child, ready: R }> {
  const proc = fork(join(BENCH_DIR, entry), [], {
    // BENCH_CHILD_NODE_ARGS: more Node flags for the children (e.g. --cpu-prof).
    execArgv: [...(process.env.BENCH_CHILD_NODE_ARGS ?? '').split(/\s+/).filter((a) => a !== '')],
    env: { ...process.env, ...env },
    stdio: ['ignore', process.env.BENCH_CHILD_STDOUT === '1' ? 'inherit' : 'ignore', 'inherit', 'ipc']
  })
  children.add(proc)
  let seq = 0
  const pending = new Map<number, { resolve: (v: unknown) => void, reject: (e: Error) => void }>()
  const ready = await new Promise<R>((resolve, reject) => {
    proc.once('error', reject)
    proc.once('exit', (code) => { reject(new Error(`${entry} exited with ${code ?? 'a signal'} before it was ready`)) })
    proc.once('message', (m) => { resolve((m as { ready: R }).ready) })
  })
  proc.on('message', (m) => {
    const { id, error, ...rest } = m as { id?: number, error?: string }
    if (id === undefined) return
    const p = pending.get(id)
    if (p === undefined) return
    pending.delete(id)
    if (error !== undefined) p.reject(new Error(error))
    else p.resolve(rest)
  })
  proc.on('exit', () => {
    for (const p of pending.values()) p.reject(new Error(`${entry} exited`))
    pending.clear()
  })
  const pid = proc.pid!
  const child: Child = {
    proc,
    pid,
    call: async <T>(msg: Record<string, unknown>) => await new Promise<T>((resolve, reject) => {
      const id = ++seq
      pending.set(id, { resolve: resolve as (v: unknown) => void, reject })
      proc.send({ ...msg, id })
    }),
    async close () {
      const pids = tree(pid)
      if (proc.exitCode === null && proc.connected) {
        const exited = new Promise<void>((resolve) => proc.once('exit', () => resolve()))
        proc.send({ type: 'close' })
        await Promise.race([exited, sleep(15_000)])
      }
      for (const p of pids.reverse()) { try { process.kill(p, 'SIGKILL') } catch {} }
      children.delete(proc)
    }
  }
  return { child, ready }
}

// — Foundry stand-ins —

export const PASSWORD = 'bench-Pa55word!'
export const WORLD_ID = 'bench-world'
export const WORLD_TITLE = 'Benchmark World'

/** A 16-character Foundry user id, distinct per index. */
export function gmId (i: number): string {
  return `benchgm${String(i).padStart(9, '0')}`
}

export function gmName (i: number): string { return `Gamemaster ${i}` }

export interface Foundry { standin: Standin, user: StandinUser, index: number }

export interface Stage {
  relay: RelayStandin
  /** Foundry servers with the world running, one Gamemaster each (distinct ids for the relay). */
  running: Foundry[]
  /** The same with a light /game (no heavyGame): 20, or 100 with BENCH_FULL=1 (idle CPU at 50 sessions, twice); see startStage. */
  light: Foundry[]
  close: () => Promise<void>
}

function world (i: number): StandinWorld {
  const user: StandinUser = { id: gmId(i), name: gmName(i), role: 4, password: PASSWORD }
  return { id: WORLD_ID, title: WORLD_TITLE, system: { id: 'dnd5e', title: 'Dungeons & Dragons Fifth Edition', version: '5.0.4' }, users: [user] }
}

export async function startFoundry (relay: RelayStandin, i: number, running = true, heavyGame = true): Promise<Foundry> {
  const w = world(i)
  const standin = await startFoundryStandin({
    worlds: [w],
    activeWorld: running ? WORLD_ID : null,
    relayUrl: relay.url,
    heavyGame
  })
  return { standin, user: w.users[0]!, index: i }
}

/** A relay, `n` heavy-game and `nLight` light-game Foundry stand-ins on loopback. */
export async function startStage (n: number, nLight = FULL ? 100 : 20): Promise<Stage> {
  const relay = await startRelayStandin()
  const running: Foundry[] = []
  for (let i = 0; i < n; i++) running.push(await startFoundry(relay, i))
  // The stand-in builds its big script on first request: not a cost to measure.
  for (const f of running) await fetch(new URL('scripts/heavy.js', f.standin.url)).then(async (r) => await r.arrayBuffer())
  const light: Foundry[] = []
  for (let i = 0; i < nLight; i++) light.push(await startFoundry(relay, 500 + i, true, false))
  return {
    relay,
    running,
    light,
    async close () {
      for (const f of [...running, ...light]) await f.standin.close().catch(() => {})
      await relay.close().catch(() => {})
    }
  }
}

export function machine (): Record<string, string> {
  const cpu = cpus()
  let chromium = ''
  try { chromium = JSON.parse(readFileSync(join(ROOT, 'node_modules/@sparticuz/chromium/package.json'), 'utf8')).version } catch {}
  let puppeteer = ''
  try { puppeteer = JSON.parse(readFileSync(join(ROOT, 'node_modules/puppeteer-core/package.json'), 'utf8')).version } catch {}
  let os = release()
  try { os = /PRETTY_NAME="([^"]+)"/.exec(readFileSync('/etc/os-release', 'utf8'))?.[1] ?? os } catch {}
  return {
    cpu: `${cpu.length} × ${cpu[0]?.model.trim() ?? 'unknown'}`,
    memory: `${Math.round(totalmem() / 2 ** 30)} GB`,
    os: `${os} (kernel ${release()})`,
    node: process.version,
    'puppeteer-core': puppeteer,
    '@sparticuz/chromium': chromium
  }
}

// Issue 21's goals, judged from this run's own numbers (side-by-side ratios
// only), and this run's figures against the last committed results of the
// same kind of machine. Printed last by `npm run bench`.
//
// A goal is judged only on a valid measurement:
// - a handshake run with any non-2xx answer measured something else (a
//   rate limit, a refusal): invalid;
// - idle CPU counts only if every session of both sides is still logged in
//   with its module connected after the windows (a dead page idles cheaply);
// - a run whose load average was high (≥ the number of cores at any part's
//   start or end) is inconclusive: the host's other work is in every figure.
import { cpus } from 'node:os'
import { BEFORE, perSessionByKind, type DensityIdle, type DensityMemory } from './density.ts'
import type { HandshakeResult } from './handshake.ts'
import { fmt, table } from './lib.ts'

export interface RunResults {
  machine?: Record<string, string>
  handshake?: Pick<HandshakeResult, 'http'>
  density?: { memory: DensityMemory[], idle: DensityIdle[] }
  /** 1-minute load average at the start and the end of each part that ran. */
  loads?: Record<string, [number, number]>
  /** The host's other work during each part, cores (bench/lib.ts otherWork). */
  others?: Record<string, number>
}

/** The idle levels and handshake client counts issue 21 names. */
export const GOAL_IDLE_LEVELS = [10, 50]
export const GOAL_CLIENTS = [50, 100]
/** Memory a heavy-page session may take above the page's own live JS heap. */
export const GOAL_OVERHEAD_MB = 45

/** The density series the goals judge; others of the same run (e.g. `--no-zygote`) are shown beside it. */
const DEFAULTS = 'service (defaults)'

/**
 * What stops a heavy session's memory above its page's heap from reaching
 * the goal, from the run's own readings by process kind: the renderer's
 * own memory besides the live heap (its zygote share included), the rest of
 * Chromium, the service's Node process.
 */
export function memoryFloor (m: DensityMemory): string {
  const over = m.perSessionMB - m.jsHeapMB
  const k = perSessionByKind(m)
  if (k === undefined) return `${fmt(over - GOAL_OVERHEAD_MB)} MB over; no reading by process kind in this run to say where`
  const renderer = k.renderer + k.zygote - m.jsHeapMB
  const anon = k.rendererAnon - m.jsHeapMB
  const rest = k.browser + k.other
  const parts = `per additional session the renderer holds ${fmt(renderer)} MB besides the page's ${fmt(m.jsHeapMB)} MB heap (${fmt(anon)} MB of it anonymous: allocators, script sources, V8's free pages, none freed by the levers tried, docs/benchmarks.md table 3), Chromium's browser and other processes ${fmt(rest)} MB, the service's Node process ${fmt(k.node)} MB`
  const floor = renderer > GOAL_OVERHEAD_MB
    ? `the renderer's own memory above the heap alone is ${fmt(renderer - GOAL_OVERHEAD_MB)} MB over ${GOAL_OVERHEAD_MB} MB`
    : renderer + rest > GOAL_OVERHEAD_MB
      ? `Chromium's own part alone (the renderer's ${fmt(renderer)} MB besides the heap and the other processes' ${fmt(rest)} MB, a browser context's state) is ${fmt(renderer + rest - GOAL_OVERHEAD_MB)} MB over ${GOAL_OVERHEAD_MB} MB`
      : `no one part is over ${GOAL_OVERHEAD_MB} MB: Chromium's ${fmt(renderer + rest)} MB and the service's Node process's ${fmt(k.node)} MB together`
  return `${fmt(over - GOAL_OVERHEAD_MB)} MB over; the floor: ${floor} (${parts})`
}

const mean = (xs: number[]): number => xs.reduce((a, b) => a + b, 0) / Math.max(1, xs.length)
const verdict = (ok: boolean): string => ok ? '**met**' : '**missed**'
const NOT_RUN = (part: string): string[] => ['—', `not measured in this run (\`npm run bench -- ${part}\`)`]

/** The load average above which a run's figures are not judged (results without `others`). */
export const HIGH_LOAD = cpus().length
/** The host's other work, in cores, above which a part's figures are not judged. */
export const OTHER_WORK_MAX = 0.25

/**
 * Why a run's figures are not judged, or null. A run that measured the
 * host's other work is judged by it: the load average also counts the run's
 * own logins. Older results, by their load average.
 */
export function highLoad (r: RunResults): string | null {
  if (r.others !== undefined && Object.keys(r.others).length > 0) {
    const busy = Object.entries(r.others).filter(([, cores]) => cores >= OTHER_WORK_MAX)
    return busy.length === 0 ? null : `the host's other work ≥ ${OTHER_WORK_MAX} cores (${busy.map(([part, cores]) => `${part} ${fmt(cores, 2)}`).join(', ')})`
  }
  const peaks = Object.entries(r.loads ?? {}).filter(([, [a, b]]) => Math.max(a, b) >= HIGH_LOAD)
  return peaks.length === 0 ? null : `load average ≥ ${HIGH_LOAD} (${peaks.map(([part, [a, b]]) => `${part} ${fmt(a, 1)}→${fmt(b, 1)}`).join(', ')})`
}

/** Every figure the goals and the regression check read, by name, with which way is better. */
export interface Figure { name: string, value: number, better: 'higher' | 'lower', unit: string }

function handshakeAt (r: RunResults, clients: number): { hs: HandshakeResult['http'][number], health: HandshakeResult['http'][number] } | undefined {
  const at = (prefix: string): HandshakeResult['http'][number] | undefined => r.handshake?.http.find((h) => h.connections === clients && h.target.startsWith(prefix))
  const hs = at('POST')
  const health = at('GET')
  return hs === undefined || health === undefined ? undefined : { hs, health }
}

export function figures (r: RunResults): Figure[] {
  const out: Figure[] = []
  for (const c of [...new Set([...GOAL_CLIENTS, ...(r.handshake?.http.map((h) => h.connections) ?? [])])].sort((a, b) => a - b)) {
    const m = handshakeAt(r, c)
    if (m === undefined) continue
    out.push({ name: `handshake / \`/health\` throughput, ${c} clients`, value: m.hs.rps / m.health.rps, better: 'higher', unit: '×' })
    out.push({ name: `handshake p99 / \`/health\` p99, ${c} clients`, value: m.hs.p99 / m.health.p99, better: 'lower', unit: '×' })
  }
  for (const level of r.density?.idle ?? []) {
    out.push({ name: `idle CPU / bare browser, ${level.sessions} sessions`, value: mean(level.serviceCpuPct) / mean(level.bareCpuPct), better: 'lower', unit: '×' })
  }
  for (const m of r.density?.memory ?? []) {
    // The defaults keep the figures' names; another configuration of the same run is named.
    const of = m.name === DEFAULTS ? '' : ` (${m.name})`
    out.push({ name: `memory per additional session / before, ${m.page} page${of}`, value: m.perSessionMB / BEFORE.perSessionMB[m.page], better: 'lower', unit: '×' })
    if (m.page === 'heavy') out.push({ name: `heavy page: MB per session above its live JS heap${of}`, value: m.perSessionMB - m.jsHeapMB, better: 'lower', unit: 'MB' })
  }
  return out
}

export function goalsTable (r: RunResults): string {
  const rows: string[][] = []
  const load = highLoad(r)
  const judged = (ok: boolean, why: string): string => load !== null ? `**inconclusive**: ${load}` : ok ? verdict(true) : `${verdict(false)}: ${why}`

  for (const clients of GOAL_CLIENTS) {
    const m = handshakeAt(r, clients)
    const goal = clients === 100 ? `handshake ≥ 0.8× \`/health\`, p99 ≤ 1.2× its, ${clients} clients` : `handshake ≥ 0.8× \`/health\`, ${clients} clients`
    if (m === undefined) { rows.push([goal, ...NOT_RUN('handshake')]); continue }
    const { hs, health } = m
    const x = hs.rps / health.rps
    const p = hs.p99 / health.p99
    const shown = `${fmt(hs.rps, 0)} vs ${fmt(health.rps, 0)} req/s = ${x.toFixed(2)}×; p99 ${fmt(hs.p99, 2)} vs ${fmt(health.p99, 2)} ms = ${p.toFixed(2)}×; server CPU ${fmt(hs.cpuUs, 0)} vs ${fmt(health.cpuUs, 0)} µs a request`
    if (hs.non2xx + health.non2xx > 0) {
      rows.push([goal, shown, `**invalid**: ${hs.non2xx + health.non2xx} non-2xx answers (a limit or a refusal was measured, not the route)`])
      continue
    }
    const ok = x >= 0.8 && (clients !== 100 || p <= 1.2)
    rows.push([goal, shown, judged(ok, `the floor: a handshake does what \`/health\` does not (API-key digest and throttle, header schema, URL policy, a stored handshake, a 4× larger body): ${fmt(hs.cpuUs - health.cpuUs, 0)} µs more server CPU a request`)])
  }

  for (const level of GOAL_IDLE_LEVELS) {
    const goal = `idle CPU ≤ 1.1× a bare browser, ${level} sessions`
    const d = r.density?.idle.find((i) => i.sessions === level)
    if (d === undefined) { rows.push([goal, ...NOT_RUN(`density\` with \`BENCH_IDLE_LEVELS=${level}`)]); continue }
    const service = mean(d.serviceCpuPct)
    const bare = mean(d.bareCpuPct)
    const x = service / bare
    const shown = `${fmt(service, 2)} % vs ${fmt(bare, 2)} % of a core = ${x.toFixed(2)}× (load ${d.load.map((l) => fmt(l)).join('→')})`
    if (d.alive !== undefined && (d.alive.service < level || d.alive.bare < level)) {
      rows.push([goal, shown, `**invalid**: after the windows ${d.alive.service}/${level} service sessions and ${d.alive.bare}/${level} bare logins were active with the module connected`])
      continue
    }
    const node = d.serviceKinds.node - d.bareKinds.node
    rows.push([goal, shown, judged(x <= 1.1, `Chromium's processes cost ${fmt(d.serviceKinds.renderer + d.serviceKinds.browser + d.serviceKinds.other, 2)} vs ${fmt(d.bareKinds.renderer + d.bareKinds.browser + d.bareKinds.other, 2)} %; the service's Node process ${node >= 0 ? '+' : ''}${fmt(node, 2)} % over the bare script's`)])
  }

  const heavies = r.density?.memory.filter((m) => m.page === 'heavy') ?? []
  const heavy = heavies.find((m) => m.name === DEFAULTS) ?? heavies[0]
  const memGoal = `heavy page: memory per session above its own live JS heap ≤ ${GOAL_OVERHEAD_MB} MB`
  if (heavy === undefined) rows.push([memGoal, ...NOT_RUN('density')])
  else {
    const over = heavy.perSessionMB - heavy.jsHeapMB
    const shown = (m: DensityMemory): string => `${fmt(m.perSessionMB)} MB a session − ${fmt(m.jsHeapMB)} MB live JS heap = ${fmt(m.perSessionMB - m.jsHeapMB)} MB`
    const others = heavies.filter((m) => m !== heavy).map((m) => `; ${m.name}: ${shown(m)}`).join('')
    const ok = over <= GOAL_OVERHEAD_MB
    // PSS hardly moves with the host's load: under a high load the verdict is
    // withheld, but what the run's readings say stops the goal is still printed.
    rows.push([memGoal, `${shown(heavy)}${others}`,
      load !== null && !ok ? `${judged(ok, '')}; ${memoryFloor(heavy)}` : judged(ok, memoryFloor(heavy))])
  }

  const fits = r.density?.memory.filter((m) => m.fits.length > 0) ?? []
  rows.push(['density table (1 GB and 2 GB machines)',
    fits.length > 0 ? fits.map((m) => `${m.page} page: ${m.fits.join(' / ')} sessions`).join('; ') : '—',
    fits.length > 0 ? '**done** (table 5)' : 'not measured in this run (`npm run bench -- density`)'])

  return table(`Goals of issue 21, judged from this run${load !== null ? ` (load average high: ${load})` : ''}`, ['goal', 'this run', 'verdict'], rows)
}

/** Whether two runs' machines are of one kind: the same processors and memory. */
export function sameKind (a: Record<string, string> | undefined, b: Record<string, string> | undefined): boolean {
  return a !== undefined && b !== undefined && a.cpu === b.cpu && a.memory === b.memory
}

/**
 * This run against the last committed results (`previous`): every figure
 * both measured, marked when it got worse by more than 10 %. Only a run of
 * the same kind of machine is compared; otherwise the table says why not.
 */
export function regressionTable (r: RunResults, previous: RunResults | undefined, source: string): { markdown: string, regressions: string[] } {
  const title = `Against the last committed results (${source})`
  if (previous === undefined) return { markdown: `${title}: none to compare with.`, regressions: [] }
  if (!sameKind(r.machine, previous.machine)) {
    return { markdown: `${title}: measured on another kind of machine (${previous.machine?.cpu ?? '?'}, ${previous.machine?.memory ?? '?'}), not compared.`, regressions: [] }
  }
  const before = new Map(figures(previous).map((f) => [f.name, f]))
  const regressions: string[] = []
  const rows = figures(r).flatMap((f) => {
    const p = before.get(f.name)
    if (p === undefined || p.value === 0) return []
    const change = f.value / p.value
    const worse = f.better === 'lower' ? change > 1.1 : change < 1 / 1.1
    if (worse) regressions.push(f.name)
    const v = (x: number): string => f.unit === '×' ? `${x.toFixed(2)}×` : `${fmt(x)} ${f.unit}`
    return [[f.name, v(p.value), v(f.value), `${change >= 1 ? '+' : ''}${((change - 1) * 100).toFixed(0)} %`, worse ? '**worse by more than 10 %**' : 'ok']]
  })
  const load = highLoad(r)
  const note = load !== null ? `\n\nThe host was busy during this run (${load}): a regression here may be the host's.` : ''
  return { markdown: table(title, ['figure', 'then', 'now', 'change', ''], rows) + note, regressions }
}

// npm run bench judges issue 21's goals only on valid, quiet measurements and
// flags figures that got worse than the last committed results (bench/goals.ts).
import t from 'tap'
import { spawn } from 'node:child_process'
import { mkdtempSync, readFileSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { figures, goalsTable, HIGH_LOAD, OTHER_WORK_MAX, regressionTable, type RunResults } from '../bench/goals.ts'
import { otherWork } from '../bench/lib.ts'
import { egressVerdict } from '../bench/egress.ts'

const http = (connections: number, hsRps: number, hsP99: number, non2xx = 0): NonNullable<RunResults['handshake']>['http'] => [
  { target: 'GET /health (reference)', connections, rps: 10_000, p50: 1, p99: 10, non2xx: 0, requests: 1000, cpuUs: 50 },
  { target: 'POST /session-handshake', connections, rps: hsRps, p50: 1, p99: hsP99, non2xx, requests: 1000, cpuUs: 60 }
]
const machine = { cpu: '2 × AMD EPYC', memory: '24 GB' }
const idle = (sessions: number, service: number, alive = sessions): NonNullable<RunResults['density']>['idle'][number] => ({
  sessions, serviceCpuPct: [service], bareCpuPct: [2], serviceKinds: { node: 0.5, browser: 0.2, renderer: 1, other: 0.1 }, bareKinds: { node: 0.3, browser: 0.2, renderer: 1, other: 0.1 }, serviceMB: 300, bareMB: 290, load: [0.5, 0.6], alive: { service: alive, bare: sessions }
})
type Memory = NonNullable<RunResults['density']>['memory'][number]
// A heavy-page series: 1 and 5 sessions; per additional session the renderer grows by `renderer` MB (of it
// `anon` anonymous), the zygote by `zygote`, the browser by 6, other processes by 2, Node by 1.
const heavy = (name: string, heap: number, renderer: number, anon: number, zygote = 0, withKinds = true): Memory => {
  const kindsOne = { node: 100, browser: 80, renderer: 250, rendererAnon: 200, zygote: 30, other: 60 }
  const per = { node: 1, browser: 6, renderer, rendererAnon: anon, zygote, other: 2 }
  const kindsAt = Object.fromEntries(Object.entries(kindsOne).map(([k, v]) => [k, v + 4 * per[k as keyof typeof per]])) as typeof kindsOne
  const perSessionMB = renderer + zygote + 6 + 2 + 1
  const m: Memory = { name, page: 'heavy', baseMB: 250, oneMB: 520, atMB: 520 + 4 * perSessionMB, n: 5, perSessionMB, jsHeapMB: heap, loginPeakMB: 300, loginMs: [5000], loginCpuS: 5, moduleMs: [50], moduleCpuMs: 60, fits: [2, 6] }
  return withKinds ? { ...m, kindsOne, kindsAt } : m
}
const row = (md: string, start: string): string => md.split('\n').find((l) => l.startsWith(`| ${start}`)) ?? ''

t.test('a quiet run is judged; every named level and client count has a row', async (t) => {
  const md = goalsTable({ machine, loads: { handshake: [0.4, 0.5], density: [0.5, 0.7] }, handshake: { http: [...http(50, 9000, 11), ...http(100, 7000, 20)] }, density: { memory: [], idle: [idle(10, 2.1)] } })
  t.match(row(md, 'handshake ≥ 0.8× `/health`, 50'), /\*\*met\*\*/)
  t.match(row(md, 'handshake ≥ 0.8× `/health`, p99'), /\*\*missed\*\*/, '0.7× and a p99 twice /health\'s')
  t.match(row(md, 'idle CPU ≤ 1.1× a bare browser, 10'), /\*\*met\*\*/)
  t.match(row(md, 'idle CPU ≤ 1.1× a bare browser, 50'), /not measured/)
  t.match(row(md, 'heavy page'), /not measured/)
})

t.test('non-2xx answers, dead pages and a loaded host are not judged', async (t) => {
  const invalid = goalsTable({ machine, loads: { handshake: [0.4, 0.5] }, handshake: { http: http(50, 9000, 11, 3) }, density: { memory: [], idle: [idle(10, 1, 7)] } })
  t.match(row(invalid, 'handshake ≥ 0.8× `/health`, 50'), /\*\*invalid\*\*: 3 non-2xx/)
  t.match(row(invalid, 'idle CPU ≤ 1.1× a bare browser, 10'), /\*\*invalid\*\*: after the windows 7\/10/)
  const loaded = goalsTable({ machine, loads: { handshake: [HIGH_LOAD + 1, 0.5] }, handshake: { http: http(50, 9000, 11) } })
  t.match(row(loaded, 'handshake ≥ 0.8× `/health`, 50'), /\*\*inconclusive\*\*/)
  // With the host's other work measured, the load average (which counts the
  // run's own logins) no longer decides: a busy run of its own is judged...
  const ownLoad = goalsTable({ machine, loads: { handshake: [HIGH_LOAD + 10, HIGH_LOAD + 20] }, others: { handshake: 0.05 }, handshake: { http: http(50, 9000, 11) } })
  t.notMatch(row(ownLoad, 'handshake ≥ 0.8× `/health`, 50'), /inconclusive/)
  // ...and other work on the host is not, whatever the load average.
  const busy = goalsTable({ machine, loads: { handshake: [0.3, 0.4] }, others: { handshake: OTHER_WORK_MAX + 0.1 }, handshake: { http: http(50, 9000, 11) } })
  t.match(row(busy, 'handshake ≥ 0.8× `/health`, 50'), /\*\*inconclusive\*\*: the host's other work ≥ 0\.25 cores \(handshake 0\.35\)/)
})

t.test('a figure more than 10 % worse than the committed one is flagged, on the same kind of machine only', async (t) => {
  const then: RunResults = { machine, handshake: { http: http(50, 8000, 10) }, density: { memory: [], idle: [idle(10, 2)] } }
  const now: RunResults = { machine, handshake: { http: http(50, 7000, 10) }, density: { memory: [], idle: [idle(10, 2.1)] } }
  const r = regressionTable(now, then, 'HEAD')
  t.same(r.regressions, ['handshake / `/health` throughput, 50 clients'], '0.8× → 0.7× is flagged; idle 1.00× → 1.05× is not')
  t.match(r.markdown, /\*\*worse by more than 10 %\*\*/)
  const other = regressionTable(now, { ...then, machine: { cpu: '8 × Intel', memory: '16 GB' } }, 'HEAD')
  t.same(other.regressions, [])
  t.match(other.markdown, /another kind of machine/)
})

t.test('the egress bench judges its side-by-side ratios, and not under high load', async (t) => {
  const quiet = [0.3, 0.4, 0.5, 0.4, 0.3]
  t.equal(egressVerdict([0.97, 1.02, 1.01, 0.99], quiet, 2).verdict, 'no measurable cost', 'the middle half spans 1.00×')
  t.equal(egressVerdict([1.08, 1.12, 1.1, 1.2], quiet, 2).verdict, 'gated slower')
  t.equal(egressVerdict([0.9, 0.92, 0.88, 0.95], quiet, 2).verdict, 'gated faster')
  const high = egressVerdict([0.97, 1.02, 1.01, 0.99], [0.5, 1.2, 2.4, 1.9, 1.1], 2)
  t.equal(high.verdict, 'inconclusive', 'a load peak at the number of cores, mid-run')
  t.match(high.why, /reached 2\.4/)
  t.equal(egressVerdict([], quiet, 2).verdict, 'inconclusive', 'no round')
})

t.test('the heavy page\'s memory above its heap is judged from the run\'s readings, and a miss prints the floor they show', async (t) => {
  const quiet = { density: [0.5, 0.7] as [number, number] }
  // 166 MB heap, renderer +220 (200 anonymous), zygote −4: 216 − 166 − 4 = 50 MB of the renderer's own above the heap.
  const missed = row(goalsTable({ machine, loads: quiet, density: { memory: [heavy('service (defaults)', 166, 220, 200, -4)], idle: [] } }), 'heavy page')
  t.match(missed, /225\.0 MB a session − 166\.0 MB live JS heap = 59\.0 MB/)
  t.match(missed, /\*\*missed\*\*: 14\.0 MB over; the floor: the renderer's own memory above the heap alone is 5\.0 MB over 45 MB/)
  t.match(missed, /renderer holds 50\.0 MB besides the page's 166\.0 MB heap \(34\.0 MB of it anonymous/)
  t.match(missed, /browser and other processes 8\.0 MB, the service's Node process 1\.0 MB/)

  // The renderer's own part under the goal, the browser's per-context part pushing Chromium over.
  const chromium = row(goalsTable({ machine, loads: quiet, density: { memory: [heavy('service (defaults)', 166, 206, 190)], idle: [] } }), 'heavy page')
  t.match(chromium, /\*\*missed\*\*: 4\.0 MB over; the floor: Chromium's own part alone \(the renderer's 40\.0 MB besides the heap and the other processes' 8\.0 MB, a browser context's state\) is 3\.0 MB over 45 MB/)
  // Chromium under the goal, the service's Node process pushing the whole over: no one part is the floor.
  const spread = row(goalsTable({ machine, loads: quiet, density: { memory: [heavy('service (defaults)', 166, 203, 190)], idle: [] } }), 'heavy page')
  t.match(spread, /\*\*missed\*\*: 1\.0 MB over; the floor: no one part is over 45 MB: Chromium's 45\.0 MB and the service's Node process's 1\.0 MB together/)

  const met = row(goalsTable({ machine, loads: quiet, density: { memory: [heavy('service (defaults)', 166, 190, 180)], idle: [] } }), 'heavy page')
  t.match(met, /= 33\.0 MB \|\s+\*\*met\*\*/)

  const old = row(goalsTable({ machine, loads: quiet, density: { memory: [heavy('service (defaults)', 166, 220, 200, 0, false)], idle: [] } }), 'heavy page')
  t.match(old, /\*\*missed\*\*: 18\.0 MB over; no reading by process kind/, 'results from before the split still get a verdict')
})

t.test('under a high load the memory verdict is withheld, the floor still printed; another configuration is shown beside the defaults', async (t) => {
  const memory = [heavy('service, `--no-zygote`', 166, 240, 200), heavy('service (defaults)', 166, 220, 200, -4)]
  const md = goalsTable({ machine, loads: { density: [HIGH_LOAD + 3, HIGH_LOAD + 1] }, density: { memory, idle: [] } })
  const r = row(md, 'heavy page')
  t.match(r, /^\| heavy page.*225\.0 MB a session − 166\.0 MB live JS heap = 59\.0 MB; service, `--no-zygote`: 249\.0 MB a session − 166\.0 MB live JS heap = 83\.0 MB/, 'the defaults are judged')
  t.match(r, /\*\*inconclusive\*\*: load average ≥ \d+ .*; 14\.0 MB over; the floor: the renderer's own memory/)
  const names = figures({ density: { memory, idle: [] } }).map((f) => f.name)
  t.ok(names.includes('heavy page: MB per session above its live JS heap'), 'the defaults keep the committed figure\'s name')
  t.ok(names.includes('heavy page: MB per session above its live JS heap (service, `--no-zygote`)'))
})

/** CPU seconds the whole host has been busy so far (/proc/stat: all but idle and iowait). */
function hostBusySeconds (): number {
  const f = readFileSync('/proc/stat', 'utf8').split('\n')[0]!.trim().split(/\s+/).slice(1).map(Number)
  return ((f[0] ?? 0) + (f[1] ?? 0) + (f[2] ?? 0) + (f[5] ?? 0) + (f[6] ?? 0) + (f[7] ?? 0)) / 100
}

const cpuSeconds = (): number => { const u = process.cpuUsage(); return (u.user + u.system) / 1e6 }

// A process that burns `seconds` of its own CPU (however long that takes on
// a busy host: the suite runs 4 files on 2 cores), then writes the CPU it
// used to BURN_OUT.
const burn = (seconds: number): string => `const c = () => { const u = process.cpuUsage(); return (u.user + u.system) / 1e6 }; while (c() < ${seconds}); require('fs').writeFileSync(process.env.BURN_OUT, String(c()))`

/** Waits until a burner has written its CPU seconds to `file`, and returns them. */
async function burnt (file: string): Promise<number> {
  for (const end = Date.now() + 60_000; Date.now() < end;) {
    try { return Number(readFileSync(file, 'utf8')) } catch {}
    await new Promise((resolve) => setTimeout(resolve, 50))
  }
  throw new Error(`no burner wrote ${file}`)
}

// Each check compares the sampler with the host's whole CPU over the same
// window, minus (or plus) the CPU the process in question was measured to
// use: other test files running beside this one are other work, and count
// on both sides. 0.15 cores is the sampler's slack (100 Hz ticks, /proc read
// a few ms apart from /proc/stat, a process's first 100 ms before it is seen).
const SLACK = 0.15

t.test('the host\'s other work: a process outside this tree counts, this tree does not, nor its children once orphaned', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'fs-otherwork-'))
  t.teardown(() => rmSync(dir, { recursive: true, force: true }))
  const env = (name: string): NodeJS.ProcessEnv => ({ ...process.env, BURN_OUT: join(dir, name) })

  // This process's own CPU: ~0.8 s of it.
  const host0 = hostBusySeconds()
  const mine = otherWork(100)
  const t0 = Date.now()
  const own0 = cpuSeconds()
  while (cpuSeconds() - own0 < 0.8);
  const ownSeconds = cpuSeconds() - own0
  const window0 = (Date.now() - t0) / 1000
  const hostCores = (hostBusySeconds() - host0) / window0
  const ownCores = ownSeconds / window0
  const counted = mine()
  t.ok(counted <= hostCores - ownCores + SLACK, `this process's own CPU is not other work (${counted.toFixed(2)} counted, host ${hostCores.toFixed(2)}, this process ${ownCores.toFixed(2)} cores)`)

  // A child of this process that goes on burning after its parent (an
  // intermediate shell) is gone, left to init: still this run's.
  const orphan = otherWork(100)
  const o0 = Date.now()
  const host1 = hostBusySeconds()
  spawn('sh', ['-c', `"${process.execPath}" -e "${burn(1)}" & sleep 0.5`], { stdio: 'ignore', env: env('orphan') })
  const orphanSeconds = await burnt(join(dir, 'orphan'))
  const window1 = (Date.now() - o0) / 1000
  const hostOrphan = (hostBusySeconds() - host1) / window1
  const orphanCounted = orphan()
  t.ok(orphanCounted <= hostOrphan - orphanSeconds / window1 + SLACK, `an orphaned child of this run is not other work (${orphanCounted.toFixed(2)} counted, host ${hostOrphan.toFixed(2)}, the orphan ${(orphanSeconds / window1).toFixed(2)} cores)`)

  // A process that was never below this one (setsid -f: its parent exits at once).
  const other = otherWork(100)
  const started = Date.now()
  spawn('setsid', ['-f', process.execPath, '-e', burn(1)], { stdio: 'ignore', env: env('other') }).unref()
  const otherSeconds = await burnt(join(dir, 'other'))
  const window2 = (Date.now() - started) / 1000
  const cores = other()
  t.ok(cores >= otherSeconds / window2 - SLACK, `another process's CPU is other work (${cores.toFixed(2)} counted, the process ${(otherSeconds / window2).toFixed(2)} cores)`)
})

// npm run bench — every benchmark, subject and reference in the same run, on
// loopback, against the Foundry stand-in (heavy /game). Prints four tables,
// writes bench/results/latest.{md,json} and the charts in docs/.
//   npm run bench                      all (a few minutes)
//   npm run bench -- handshake login   some of: handshake login egress memory burst fleet
//   npm run bench -- tuning            one tuning setting at a time (not in the default run)
//   npm run bench -- outage            50 sessions waiting for a Foundry that is down vs active (not in the default run;
//                                      BENCH_OUTAGE_SESSIONS=10 for a small run, BENCH_OUTAGE_CAP_MS for the backoff cap)
//   npm run bench -- chaos             an hour of mixed faults on a fleet, the yardstick (not in the default run;
//                                      BENCH_CHAOS_MINUTES, BENCH_CHAOS_OUTAGE_MS, BENCH_CHAOS_SEED: bench/chaos.ts)
//   BENCH_QUICK=1 npm run bench        fewer samples and levels (1 and 10 sessions)
//   BENCH_FULL=1 npm run bench         also the reference at 50 Chromiums and 20 logins at once
//   CHROMIUM_PATH=… npm run bench      another Chromium binary
//   BENCH_IDLE_LEVELS=10,50 BENCH_DENSITY_PAGES= npm run bench -- density   idle CPU only, at 10 and 50 sessions
import { execFileSync } from 'node:child_process'
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs'
import { loadavg } from 'node:os'
import { join } from 'node:path'
import { benchBurst } from './burst.ts'
import { benchDensity, IDLE_LEVELS } from './density.ts'
import { barChart, lineChart } from './chart.ts'
import { benchHandshake } from './handshake.ts'
import { benchFleet, benchFleetMoves } from './fleet.ts'
import { benchLogin } from './login.ts'
import { benchEgress } from './egress.ts'
import { benchMemory, benchTuning } from './memory.ts'
import { benchOutage, OUTAGE_SESSIONS } from './outage.ts'
import { benchChaos } from './chaos.ts'
import { goalsTable, OTHER_WORK_MAX, regressionTable, type RunResults } from './goals.ts'
import { BENCH_DIR, FULL, killAllChildren, log, machine, median, otherWork, QUICK, ROOT, startStage } from './lib.ts'

const ALL = ['handshake', 'login', 'egress', 'memory', 'burst', 'density', 'fleet'] as const
const EXTRA = ['tuning', 'outage', 'chaos'] as const
type Name = typeof ALL[number] | typeof EXTRA[number]
const asked = process.argv.slice(2).filter((a) => !a.startsWith('-'))
for (const a of asked) if (![...ALL, ...EXTRA].includes(a as Name)) { process.stderr.write(`unknown benchmark "${a}" (${[...ALL, ...EXTRA].join(', ')})\n`); process.exit(2) }
const run = new Set<Name>(asked.length === 0 ? [...ALL] : asked as Name[])

// Every Chromium this run starts is below a child process or closed in a
// finally; on a signal or a crash, kill the children's trees.
const bail = (code: number) => () => { killAllChildren(); process.exit(code) }
process.on('SIGINT', bail(130))
process.on('SIGTERM', bail(143))
process.on('uncaughtException', (err) => { process.stderr.write(`${err.stack ?? String(err)}\n`); bail(1)() })

const started = Date.now()
const m = machine()
log(`machine: ${Object.entries(m).map(([k, v]) => `${k} ${v}`).join('; ')}`)
// Stand-ins for what is asked: handshake, egress and density alone need only their
// own (one heavy world, four for egress; density's heavy page, and twice the largest idle
// level of light ones).
const small = [...run].every((n) => n === 'density' || n === 'handshake' || n === 'egress' || n === 'outage' || n === 'chaos')
const densityPages = run.has('density') ? (process.env.BENCH_DENSITY_PAGES ?? 'heavy,light').split(',') : []
const densityN = Number(process.env.BENCH_DENSITY_SESSIONS ?? (QUICK ? 4 : 8))
const nHeavy = small ? Math.max(run.has('handshake') ? 1 : 0, run.has('egress') ? 4 : 0, densityPages.includes('heavy') ? densityN : 0) : QUICK ? 20 : 50
const nLight = Math.max(run.has('density') ? 2 * Math.max(0, ...IDLE_LEVELS) : 0, run.has('outage') ? OUTAGE_SESSIONS : 0,
  small && !densityPages.includes('light') ? 0 : FULL ? 100 : 20)
const stage = await startStage(nHeavy, nLight)
const sections: string[] = []
const loads: Record<string, [number, number]> = {}
const others: Record<string, number> = {}
const json: Record<string, unknown> = { date: new Date().toISOString(), quick: QUICK, machine: m, loads, others }
const print = (md: string): void => { process.stdout.write(`\n${md}\n`); sections.push(md) }
// Each part's table carries the host's 1-minute load average at its start
// and end, and the host's other work during it (its CPU minus this run's
// own): a figure measured beside other work says so.
let part = ''
let other: () => number = () => 0
const begin = (name: string): void => { other(); part = name; loads[name] = [loadavg()[0]!, 0]; other = otherWork() }
const printPart = (md: string): void => {
  loads[part]![1] = loadavg()[0]!
  others[part] = other()
  const [a, b] = loads[part]!
  const busy = others[part]! >= OTHER_WORK_MAX
  print(`${md}\n\nLoad average ${a.toFixed(1)} → ${b.toFixed(1)} (this run's own work included); the host's other work ${others[part]!.toFixed(2)} cores${busy ? ` (≥ ${OTHER_WORK_MAX}: it is in these figures)` : ''}.`)
}
// The last committed results, to compare with (before this run overwrites them).
const latest = join(BENCH_DIR, 'results', 'latest.json')
let previous: RunResults | undefined
let previousSource = 'bench/results/latest.json at HEAD'
try {
  previous = JSON.parse(execFileSync('git', ['show', 'HEAD:bench/results/latest.json'], { cwd: ROOT, encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] })) as RunResults
} catch {
  if (existsSync(latest)) { previous = JSON.parse(readFileSync(latest, 'utf8')) as RunResults; previousSource = 'bench/results/latest.json' }
}
try {
  if (run.has('handshake')) {
    begin('handshake')
    const r = await benchHandshake(stage)
    json.handshake = { http: r.http, decrypt: r.decrypt }
    printPart(r.markdown)
  }
  if (run.has('login')) {
    begin('login')
    const r = await benchLogin(stage)
    json.login = { running: r.running, launch: r.launch }
    printPart(r.markdown)
    const d = r.running
    writeFileSync(join(ROOT, 'docs', 'benchmarks-login.svg'), barChart('Login, world running: median ms (heavy /game)', 'ms from request to response', [
      { label: 'bare script plain page', value: median(d['bare-untuned']), group: 1 },
      { label: 'service tuning off', value: median(d['service-untuned']), group: 0 },
      { label: 'bare script tuned page', value: median(d.bare), group: 1 },
      { label: 'service defaults', value: median(d.service), group: 0 }
    ]))
  }
  if (run.has('egress')) {
    begin('egress')
    const r = await benchEgress(stage)
    json.egress = { ms: r.ms, ratios: r.ratios, loads: r.loads, verdict: r.verdict }
    // Its table prints the load beside the ratio (sampled every round); recorded here for the goals' high-load check.
    loads.egress = [r.loads[0]!, r.loads[r.loads.length - 1]!]
    others.egress = other()
    print(r.markdown)
  }
  if (run.has('memory')) {
    begin('memory')
    const r = await benchMemory(stage)
    json.memory = r.series
    printPart(r.markdown)
    writeFileSync(join(ROOT, 'docs', 'benchmarks-memory.svg'), lineChart('PSS of the whole process tree (heavy /game)', 'live sessions', 'MB', r.series.filter((s) => !s.name.startsWith('light')).map((s) => ({
      name: s.name, points: s.points.map((p) => [p.sessions, p.mb] as [number, number])
    }))))
  }
  if (run.has('tuning')) {
    begin('tuning')
    const r = await benchTuning(stage)
    json.tuning = r.rows
    printPart(r.markdown)
  }
  if (run.has('fleet')) {
    begin('fleet')
    const r = await benchFleet(stage)
    json.fleet = r.rows
    printPart(r.markdown)
    const moves = await benchFleetMoves(stage)
    json.fleetMoves = moves.rows
    printPart(moves.markdown)
  }
  if (run.has('burst')) {
    begin('burst')
    const r = await benchBurst(stage)
    json.burst = r.runs
    printPart(r.markdown)
  }
  if (run.has('density')) {
    begin('density')
    const r = await benchDensity(stage)
    json.density = { memory: r.memory, idle: r.idle }
    printPart(r.markdown)
  }
  if (run.has('outage')) {
    begin('outage')
    const r = await benchOutage(stage)
    json.outage = { rows: r.rows, recoverMs: r.recoverMs, capMs: r.capMs }
    printPart(r.markdown)
  }
  if (run.has('chaos')) {
    begin('chaos')
    const r = await benchChaos()
    json.chaos = { minutes: r.minutes, seed: r.seed, worlds: r.worlds, faults: r.faults, lost: r.lost, connectedPct: r.connectedPct, met: r.met }
    printPart(r.markdown)
  }
  print(goalsTable(json as RunResults))
  const regressions = regressionTable(json as RunResults, previous, previousSource)
  json.regressions = regressions.regressions
  print(regressions.markdown)
} finally {
  await stage.close()
  killAllChildren()
}
const seconds = Math.round((Date.now() - started) / 1000)
const header = [`# Benchmark run ${new Date().toISOString()}${QUICK ? ' (BENCH_QUICK)' : ''}${FULL ? ' (BENCH_FULL)' : ''}, ${seconds} s`, '',
  ...Object.entries(m).map(([k, v]) => `- ${k}: ${v}`)].join('\n')
mkdirSync(join(BENCH_DIR, 'results'), { recursive: true })
writeFileSync(join(BENCH_DIR, 'results', 'latest.md'), [header, ...sections].join('\n\n') + '\n')
writeFileSync(join(BENCH_DIR, 'results', 'latest.json'), JSON.stringify({ ...json, seconds }, null, 2) + '\n')
log(`done in ${seconds} s; tables in bench/results/latest.md`)
process.exit(0)

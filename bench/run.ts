// npm run bench — every benchmark, subject and reference in the same run, on
// loopback, against the Foundry stand-in (heavy /game). Prints four tables,
// writes bench/results/latest.{md,json} and the charts in docs/.
//   npm run bench                      all (a few minutes)
//   npm run bench -- handshake login   some of: handshake login memory burst fleet
//   npm run bench -- tuning            one tuning setting at a time (not in the default run)
//   npm run bench -- outage            50 sessions waiting for a Foundry that is down vs active (not in the default run;
//                                      BENCH_OUTAGE_SESSIONS=10 for a small run, BENCH_OUTAGE_CAP_MS for the backoff cap)
//   BENCH_QUICK=1 npm run bench        fewer samples and levels (1 and 10 sessions)
//   BENCH_FULL=1 npm run bench         also the reference at 50 Chromiums and 20 logins at once
//   CHROMIUM_PATH=… npm run bench      another Chromium binary
//   BENCH_IDLE_LEVELS=10,50 BENCH_DENSITY_PAGES= npm run bench -- density   idle CPU only, at 10 and 50 sessions
import { mkdirSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { benchBurst } from './burst.js'
import { benchDensity, IDLE_LEVELS } from './density.js'
import { barChart, lineChart } from './chart.js'
import { benchHandshake } from './handshake.js'
import { benchFleet, benchFleetMoves } from './fleet.js'
import { benchLogin } from './login.js'
import { benchMemory, benchTuning } from './memory.js'
import { benchOutage, OUTAGE_SESSIONS } from './outage.js'
import { goalsTable, type RunResults } from './goals.js'
import { BENCH_DIR, FULL, killAllChildren, log, machine, median, QUICK, ROOT, startStage } from './lib.js'

const ALL = ['handshake', 'login', 'memory', 'burst', 'density', 'fleet'] as const
const EXTRA = ['tuning', 'outage'] as const
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
// Stand-ins for what is asked: handshake and density alone need only their
// own (one heavy world; density's heavy page, and twice the largest idle
// level of light ones).
const small = [...run].every((n) => n === 'density' || n === 'handshake' || n === 'outage')
const densityPages = run.has('density') ? (process.env.BENCH_DENSITY_PAGES ?? 'heavy,light').split(',') : []
const densityN = Number(process.env.BENCH_DENSITY_SESSIONS ?? (QUICK ? 4 : 8))
const nHeavy = small ? Math.max(run.has('handshake') ? 1 : 0, densityPages.includes('heavy') ? densityN : 0) : QUICK ? 20 : 50
const nLight = Math.max(run.has('density') ? 2 * Math.max(0, ...IDLE_LEVELS) : 0, run.has('outage') ? OUTAGE_SESSIONS : 0,
  small && !densityPages.includes('light') ? 0 : FULL ? 100 : 20)
const stage = await startStage(nHeavy, nLight)
const sections: string[] = []
const json: Record<string, unknown> = { date: new Date().toISOString(), quick: QUICK, machine: m }
const print = (md: string): void => { process.stdout.write(`\n${md}\n`); sections.push(md) }
try {
  if (run.has('handshake')) {
    const r = await benchHandshake(stage)
    json.handshake = { http: r.http, decrypt: r.decrypt }
    print(r.markdown)
  }
  if (run.has('login')) {
    const r = await benchLogin(stage)
    json.login = { running: r.running, launch: r.launch }
    print(r.markdown)
    const d = r.running
    writeFileSync(join(ROOT, 'docs', 'benchmarks-login.svg'), barChart('Login, world running: median ms (heavy /game)', 'ms from request to response', [
      { label: 'bare script plain page', value: median(d['bare-untuned']), group: 1 },
      { label: 'service tuning off', value: median(d['service-untuned']), group: 0 },
      { label: 'bare script tuned page', value: median(d.bare), group: 1 },
      { label: 'service defaults', value: median(d.service), group: 0 }
    ]))
  }
  if (run.has('memory')) {
    const r = await benchMemory(stage)
    json.memory = r.series
    print(r.markdown)
    writeFileSync(join(ROOT, 'docs', 'benchmarks-memory.svg'), lineChart('PSS of the whole process tree (heavy /game)', 'live sessions', 'MB', r.series.filter((s) => !s.name.startsWith('light')).map((s) => ({
      name: s.name, points: s.points.map((p) => [p.sessions, p.mb] as [number, number])
    }))))
  }
  if (run.has('tuning')) {
    const r = await benchTuning(stage)
    json.tuning = r.rows
    print(r.markdown)
  }
  if (run.has('fleet')) {
    const r = await benchFleet(stage)
    json.fleet = r.rows
    print(r.markdown)
    const moves = await benchFleetMoves(stage)
    json.fleetMoves = moves.rows
    print(moves.markdown)
  }
  if (run.has('burst')) {
    const r = await benchBurst(stage)
    json.burst = r.runs
    print(r.markdown)
  }
  if (run.has('density')) {
    const r = await benchDensity(stage)
    json.density = { memory: r.memory, idle: r.idle }
    print(r.markdown)
  }
  if (run.has('outage')) {
    const r = await benchOutage(stage)
    json.outage = { rows: r.rows, recoverMs: r.recoverMs, capMs: r.capMs }
    print(r.markdown)
  }
  print(goalsTable(json as RunResults))
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

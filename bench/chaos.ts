// 8. Chaos: the project's yardstick. A fleet of three machines (node
// dist/server.js, started as the fleet tests start them) behind the
// fly-replay proxy stand-in, each reaching a real Redis through a TCP gate of
// its own; W worlds, each a Foundry stand-in with its REST API module and a
// relay stand-in; one session per world. Then, for BENCH_CHAOS_MINUTES
// (default 60), faults one at a time in a seeded random order, each followed
// by a pause (BENCH_CHAOS_PAUSE_MS, 3 min: about two of each kind in the
// hour): Foundry restarted (down for seconds), Foundry stopped for
// minutes (BENCH_CHAOS_OUTAGE_MS), the relay restarted, a deploy (a new
// machine, then SIGTERM to an old one), a crash (SIGKILL of a machine and its
// Chromium, then the same machine started again, as Fly restarts it), a
// partition (a machine's Redis held for twice its lease: alive, cut off) and
// Chromium killed under a machine that runs sessions.
//
// Measured every 250 ms for each world, from outside: whether its Foundry is
// up (the bench's own schedule) and whether its module's relay connection is
// open (the relay stand-in). The yardstick: the module connected at least
// 99 % of the time its Foundry is up; never two logins of one world
// (test/fly/fleet.ts watchTwice: two live logins at Foundry, two open
// connections of one client id, a 4004 at the relay); nothing lost: at the
// end, after a quiet minute, every session is listed active, once, and its
// world has it logged in once with the module connected.
//
//   npm run bench -- chaos                               an hour
//   BENCH_CHAOS_MINUTES=10 BENCH_CHAOS_OUTAGE_MS=60000 npm run bench -- chaos
import { execFileSync } from 'node:child_process'
import { randomBytes } from 'node:crypto'
import { GM, foundry } from '../test/e2e/fixtures.ts'
import { startFleet, watchTwice, type Fleet } from '../test/fly/fleet.ts'
import { startGate, type Gate } from '../test/fly/gate.ts'
import type { MachineProc } from '../test/fly/machines.ts'
import { commandLine, processTree } from '../support/proc.ts'
import type { Standin } from '../support/foundry/standin.ts'
import type { RelayStandin } from '../support/foundry/relay.ts'
import { fmt, log, ROOT, sleep, table } from './lib.ts'

const MINUTES = Number(process.env.BENCH_CHAOS_MINUTES ?? 60)
const WORLDS = Number(process.env.BENCH_CHAOS_WORLDS ?? 3)
const OUTAGE_MS = Number(process.env.BENCH_CHAOS_OUTAGE_MS ?? 120_000)
const PAUSE_MS = Number(process.env.BENCH_CHAOS_PAUSE_MS ?? 180_000)
const SETTLE_MS = Number(process.env.BENCH_CHAOS_SETTLE_MS ?? 60_000)
const SEED = Number(process.env.BENCH_CHAOS_SEED ?? Date.now() % 2 ** 31)
const HEARTBEAT_MS = 2000
const LEASE_MS = 3 * HEARTBEAT_MS
const SAMPLE_MS = 250

export const FAULTS = ['foundry-restart', 'foundry-outage', 'relay-restart', 'deploy', 'crash', 'partition', 'chromium-kill'] as const
type FaultKind = typeof FAULTS[number]

interface World {
  index: number
  standin: Standin
  relay: RelayStandin
  twice: ReturnType<typeof watchTwice>
  sessionId: string
  foundryUp: boolean
  upMs: number
  connectedMs: number
  /** The current stretch without a module connection while Foundry is up: since when, and the fault then. */
  gapFrom: number | null
  gapFault: string
  gaps: Array<{ ms: number, fault: string }>
}

export interface ChaosResult {
  minutes: number
  seed: number
  worlds: Array<{ index: number, upS: number, connectedPct: number, longestGapS: number, longestGapFault: string, twice: string[] }>
  faults: Array<{ at: number, kind: FaultKind, detail: string }>
  lost: string[]
  connectedPct: number
  met: { connected: boolean, neverTwice: boolean, nothingLost: boolean }
  markdown: string
}

/** mulberry32: the same seed, the same schedule. */
function random (seed: number): () => number {
  let a = seed >>> 0
  return () => {
    a = (a + 0x6D2B79F5) >>> 0
    let x = a
    x = Math.imul(x ^ (x >>> 15), x | 1)
    x ^= x + Math.imul(x ^ (x >>> 7), x | 61)
    return ((x ^ (x >>> 14)) >>> 0) / 4294967296
  }
}

export async function benchChaos (): Promise<ChaosResult> {
  // The machines run dist/: built as the tests build it (skipped when up to date).
  execFileSync(process.execPath, ['test/prepare.ts'], { cwd: ROOT, stdio: 'inherit' })
  const rand = random(SEED)
  const pick = <T>(xs: T[]): T => xs[Math.floor(rand() * xs.length)]!
  const between = (lo: number, hi: number): number => Math.round(lo + rand() * (hi - lo))
  const teardowns: Array<() => unknown> = []
  const tap = { teardown: (fn: () => unknown) => { teardowns.push(fn) } }
  const faults: ChaosResult['faults'] = []
  const started = Date.now()
  let current = 'none'
  try {
    const f: Fleet = await startFleet(tap, { SESSION_SEAL_KEY: randomBytes(32).toString('base64'), FLEET_HEARTBEAT_MS: String(HEARTBEAT_MS) }, [])
    const gates = new Map<string, Gate>()
    let next = 1
    const launch = async (id = `m${next++}`): Promise<MachineProc> => {
      const gate = gates.get(id) ?? await startGate(f.redis.port, tap)
      gates.set(id, gate)
      return await f.add(id, { REDIS_URL: gate.url })
    }
    for (let i = 0; i < 3; i++) await launch()

    const worlds: World[] = []
    for (let i = 0; i < WORLDS; i++) {
      const { standin, relay } = i === 0 ? { standin: f.standin, relay: f.relay } : await foundry(tap)
      const res = await f.start({ foundry: standin })
      if (res.status !== 200) throw new Error(`chaos: world ${i}: start-session ${res.status} ${JSON.stringify(res.body)}`)
      const twice = watchTwice({ standin, relay }, GM.id)
      teardowns.push(twice.stop)
      worlds.push({ index: i, standin, relay, twice, sessionId: res.body.sessionId as string, foundryUp: true, upMs: 0, connectedMs: 0, gapFrom: null, gapFault: '', gaps: [] })
    }
    log(`chaos: ${worlds.length} sessions on ${f.running().map((m) => m.id).join(', ')}; seed ${SEED}, ${MINUTES} min`)

    let last = Date.now()
    const sample = (): void => {
      const now = Date.now()
      const dt = now - last
      last = now
      for (const w of worlds) {
        if (!w.foundryUp) { closeGap(w, now); continue }
        w.upMs += dt
        const connected = w.relay.open().some((c) => c.protocol === 'v2' || c.authed)
        if (connected) { w.connectedMs += dt; closeGap(w, now) } else if (w.gapFrom === null) { w.gapFrom = now; w.gapFault = current }
      }
    }
    const closeGap = (w: World, now: number): void => {
      if (w.gapFrom === null) return
      w.gaps.push({ ms: now - w.gapFrom, fault: w.gapFault })
      w.gapFrom = null
    }
    const sampler = setInterval(sample, SAMPLE_MS)
    teardowns.push(() => { clearInterval(sampler) })

    const machineWithSessions = async (): Promise<MachineProc | undefined> => {
      const l = await f.list(f.proxy.url)
      const ids = new Set(l.activeSessions.map((s) => s.instanceId))
      const hosts = f.running().filter((m) => ids.has(m.id))
      return hosts.length === 0 ? undefined : pick(hosts)
    }
    const run: Record<FaultKind, () => Promise<string>> = {
      async 'foundry-restart' () {
        const w = pick(worlds)
        const downMs = between(2000, 15_000)
        w.foundryUp = false
        await w.standin.restart({ downMs })
        w.foundryUp = true
        return `world ${w.index}, down ${fmt(downMs / 1000)} s`
      },
      async 'foundry-outage' () {
        const w = pick(worlds)
        w.foundryUp = false
        await w.standin.down('refuse')
        await sleep(OUTAGE_MS)
        await w.standin.up()
        w.foundryUp = true
        return `world ${w.index}, down ${fmt(OUTAGE_MS / 1000)} s`
      },
      async 'relay-restart' () {
        const w = pick(worlds)
        const downMs = between(2000, 15_000)
        await w.relay.down()
        await sleep(downMs)
        await w.relay.up()
        return `world ${w.index}'s relay, down ${fmt(downMs / 1000)} s`
      },
      async deploy () {
        const old = pick(f.running())
        const fresh = await launch()
        f.drop(old)
        old.kill('SIGTERM')
        await Promise.race([old.exited, sleep(60_000)])
        if (old.child.exitCode === null && old.child.signalCode === null) await f.kill(old)
        return `${fresh.id} in, ${old.id} out`
      },
      async crash () {
        const victim = pick(f.running())
        await f.kill(victim)
        await sleep(5000)
        await launch(victim.id)
        return `${victim.id} killed, started again 5 s later`
      },
      async partition () {
        const m = pick(f.running())
        const gate = gates.get(m.id)!
        gate.hold()
        await sleep(2 * LEASE_MS + 1000)
        gate.release()
        return `${m.id} cut off from Redis for ${fmt((2 * LEASE_MS + 1000) / 1000)} s`
      },
      async 'chromium-kill' () {
        const m = await machineWithSessions()
        if (m === undefined) return 'no machine ran a session'
        const browser = processTree(m.child.pid!).find((pid) => /chrom|headless/.test(commandLine(pid)) && !commandLine(pid).includes('--type='))
        if (browser === undefined) return `${m.id}: no Chromium found`
        process.kill(browser, 'SIGKILL')
        return `${m.id}'s Chromium (pid ${browser})`
      }
    }

    const until = started + MINUTES * 60_000
    let order: FaultKind[] = []
    while (Date.now() < until) {
      if (order.length === 0) order = [...FAULTS].sort(() => rand() - 0.5)
      const kind = order.shift()!
      current = kind
      const at = Date.now()
      const detail = await run[kind]()
      faults.push({ at: Math.round((at - started) / 1000), kind, detail })
      log(`chaos: ${fmt((at - started) / 60_000)} min: ${kind}: ${detail}`)
      current = `after ${kind}`
      await sleep(Math.min(PAUSE_MS, Math.max(0, until - Date.now())))
    }
    log(`chaos: faults over; ${SETTLE_MS / 1000} s to settle`)
    await sleep(SETTLE_MS)
    sample()
    for (const w of worlds) closeGap(w, Date.now())

    // Nothing lost: each session listed active once across the fleet, its world logged in once, its module connected.
    const lost: string[] = []
    const listed = await f.list(f.proxy.url)
    for (const w of worlds) {
      const mine = listed.activeSessions.filter((s) => s.sessionId === w.sessionId)
      if (mine.length !== 1 || mine[0]!.status !== 'active') lost.push(`world ${w.index}: session ${w.sessionId} listed ${mine.length} times as active (${mine.map((s) => s.status).join(', ') || 'not at all'})`)
      const logins = w.standin.liveLogins(GM.id)
      if (logins !== 1) lost.push(`world ${w.index}: ${logins} live logins at Foundry`)
      if (w.relay.open().length !== 1) lost.push(`world ${w.index}: ${w.relay.open().length} open module connections`)
    }

    const rows = worlds.map((w) => {
      const longest = w.gaps.reduce((a, b) => (b.ms > a.ms ? b : a), { ms: 0, fault: '' })
      return { index: w.index, upS: w.upMs / 1000, connectedPct: 100 * w.connectedMs / Math.max(1, w.upMs), longestGapS: longest.ms / 1000, longestGapFault: longest.fault, twice: [...w.twice.seen] }
    })
    const upMs = worlds.reduce((a, w) => a + w.upMs, 0)
    const connectedPct = 100 * worlds.reduce((a, w) => a + w.connectedMs, 0) / Math.max(1, upMs)
    const met = { connected: connectedPct >= 99, neverTwice: rows.every((r) => r.twice.length === 0), nothingLost: lost.length === 0 }
    const verdict = (ok: boolean): string => ok ? '**met**' : '**missed**'
    // Each gap is put on the fault it began in (or the pause after it).
    const allGaps = worlds.flatMap((w) => w.gaps)
    const counts = FAULTS.map((k) => {
      const mine = allGaps.filter((g) => g.fault === k || g.fault === `after ${k}`)
      return [k, String(faults.filter((x) => x.kind === k).length), `${fmt(mine.reduce((a, g) => a + g.ms, 0) / 1000)} s`, `${fmt(Math.max(0, ...mine.map((g) => g.ms)) / 1000)} s`]
    })
    const markdown = [
      table(`Chaos: ${MINUTES} min of faults on a fleet of 3 machines, ${WORLDS} worlds, seed ${SEED} (BENCH_CHAOS_SEED replays the order)`,
        ['world', 'Foundry up', 'module connected while up', 'longest gap', 'during', 'two logins'],
        rows.map((r) => [String(r.index), `${fmt(r.upS, 0)} s`, `${fmt(r.connectedPct, 2)} %`, `${fmt(r.longestGapS)} s`, r.longestGapFault || '—', r.twice.length === 0 ? 'never' : r.twice.join('; ')])),
      '',
      table('Faults, and the module\'s time disconnected while Foundry was up that began in each (or in the pause after it), all worlds', ['fault', 'times', 'disconnected', 'longest'], counts),
      '',
      `- Module connected ≥ 99 % of the time its Foundry was up: ${fmt(connectedPct, 2)} % — ${verdict(met.connected)}`,
      `- Never two logins of one world: ${verdict(met.neverTwice)}`,
      `- Nothing lost: ${lost.length === 0 ? 'every session active once, logged in once, its module connected' : lost.join('; ')} — ${verdict(met.nothingLost)}`
    ].join('\n')
    return { minutes: MINUTES, seed: SEED, worlds: rows, faults, lost, connectedPct, met, markdown }
  } finally {
    for (const fn of teardowns.reverse()) { try { await fn() } catch {} }
  }
}

// 2c. The egress gate's cost on a login: the same bare puppeteer login
// (bench/bare-login.ts, tuned page) on the same heavy-game stand-ins, in two
// Chromiums side by side: one plain, one launched as the service launches
// it (egressArgs) with the login's browser context on a port of its own on
// an egress gate under the default policy (every request, socket.io and the
// module's relay WebSocket through it). Interleaved round by round, order
// rotated. The service itself always runs the gate (it has no switch to go
// without), so this isolates what the gate adds.
//
// The figure is the side-by-side ratio: gated ÷ plain within each round
// (the two logins ran back to back, so the host's load of the moment weighs
// on both), its median over the rounds and the middle half of them. The
// host's 1-minute load average is sampled after every round and printed
// beside it; a run whose load reached the number of cores is inconclusive
// (goals.ts's HIGH_LOAD): other work is in every figure.
import { loadavg } from 'node:os'
import type { Browser } from 'puppeteer-core'
import { EGRESS_BYPASS, egressArgs, launchChromium, resolveChromium } from '../lib/browser/chromium.ts'
import { createEgressGate, type EgressGate } from '../lib/browser/egress.ts'
import { createUrlPolicy } from '../lib/access/url-policy.ts'
import { DEFAULT_PAGE_SETUP, preparePage } from '../lib/browser/page-setup.ts'
import { bareLogin } from './bare-login.ts'
import { HIGH_LOAD } from './goals.ts'
import { fmt, killedOnExit, log, median, p99, QUICK, ratio, table, type Foundry, type Stage } from './lib.ts'

type Variant = 'plain' | 'gated'

export interface EgressResult {
  ms: Record<Variant, number[]>
  /** gated ÷ plain of each round, in round order. */
  ratios: number[]
  /** 1-minute load average at the start and after each round. */
  loads: number[]
  /** The side-by-side ratio's verdict: 'no measurable cost', 'gated slower', 'gated faster', or 'inconclusive' (high load). */
  verdict: 'no measurable cost' | 'gated slower' | 'gated faster' | 'inconclusive'
  markdown: string
}

/** The q-quantile (0–1) of xs, interpolated between neighbours. */
function quantile (xs: number[], q: number): number {
  if (xs.length === 0) return NaN
  const s = [...xs].sort((a, b) => a - b)
  const i = (s.length - 1) * q
  const lo = Math.floor(i)
  return s[lo]! + (s[Math.ceil(i)]! - s[lo]!) * (i - lo)
}

/**
 * Judge the paired ratios: inconclusive when the load average reached
 * HIGH_LOAD; otherwise no measurable cost when the middle half of the
 * rounds' ratios spans 1.00×, else slower or faster.
 */
export function egressVerdict (ratios: number[], loads: number[], highLoad = HIGH_LOAD): { verdict: EgressResult['verdict'], why: string } {
  const peak = Math.max(...loads)
  if (ratios.length === 0) return { verdict: 'inconclusive', why: 'no round measured' }
  if (peak >= highLoad) return { verdict: 'inconclusive', why: `load average reached ${fmt(peak, 1)} (≥ ${highLoad}, the number of cores): the host's other work is in these figures` }
  const q1 = quantile(ratios, 0.25)
  const q3 = quantile(ratios, 0.75)
  if (q1 <= 1 && q3 >= 1) return { verdict: 'no measurable cost', why: `the middle half of the rounds' ratios (${q1.toFixed(2)}–${q3.toFixed(2)}×) spans 1.00×` }
  return q1 > 1
    ? { verdict: 'gated slower', why: `gated slower in the middle half of the rounds (${q1.toFixed(2)}–${q3.toFixed(2)}×)` }
    : { verdict: 'gated faster', why: `gated faster in the middle half of the rounds (${q1.toFixed(2)}–${q3.toFixed(2)}×)` }
}

async function login (browser: Browser, f: Foundry, gate: EgressGate | null): Promise<number> {
  const session = gate !== null ? await gate.open(`bench-${f.index}`) : null
  const context = await browser.createBrowserContext(session !== null ? { proxyServer: session.proxyServer, proxyBypassList: EGRESS_BYPASS } : {})
  try {
    const page = await context.newPage()
    await preparePage(page, DEFAULT_PAGE_SETUP)
    const t = performance.now()
    const r = await bareLogin(page, { url: f.standin.url, username: f.user.name, password: f.user.password, stableMs: 250 })
    return r.connectedAt - t
  } finally {
    await context.close().catch(() => {})
    await session?.close()
  }
}

export async function benchEgress (stage: Stage): Promise<EgressResult> {
  const rounds = QUICK ? 4 : 10
  const quiet = { info () {}, warn () {}, debug () {} }
  const gate = await createEgressGate({ decide: createUrlPolicy({ mode: 'default' }).resolveChecked, log: quiet })
  const resolved = await resolveChromium({ ...(process.env.CHROMIUM_PATH !== undefined ? { executablePath: process.env.CHROMIUM_PATH } : {}) })
  const plain = killedOnExit(await launchChromium(resolved))
  const gated = killedOnExit(await launchChromium({ ...resolved, args: [...resolved.args, ...egressArgs(gate.browserProxy)] }))
  const ms: Record<Variant, number[]> = { plain: [], gated: [] }
  const loads = [loadavg()[0]!]
  try {
    let next = 0
    const foundry = (): Foundry => stage.running[next++ % stage.running.length]!
    log('egress: warm-up')
    await login(plain, foundry(), null)
    await login(gated, foundry(), gate)
    for (let r = 0; r < rounds; r++) {
      const order: Variant[] = r % 2 === 0 ? ['plain', 'gated'] : ['gated', 'plain']
      for (const v of order) ms[v].push(await login(v === 'plain' ? plain : gated, foundry(), v === 'gated' ? gate : null))
      loads.push(loadavg()[0]!)
      log(`egress: round ${r + 1}/${rounds}: gated ÷ plain ${ratio(ms.gated[r]!, ms.plain[r]!)}, load ${fmt(loads[loads.length - 1]!, 1)}`)
    }
  } finally {
    await plain.close().catch(() => {})
    await gated.close().catch(() => {})
    await gate.close()
  }
  const ratios = ms.gated.map((g, i) => g / ms.plain[i]!)
  const { verdict, why } = egressVerdict(ratios, loads)
  const row = (what: string, xs: number[]): string[] => [what, String(xs.length), fmt(median(xs), 0), fmt(p99(xs), 0)]
  const slower = ratios.filter((x) => x > 1).length
  const markdown = [
    table('2c. Login latency with and without the egress gate (bare script, tuned page, world running)', ['variant', 'n', 'median ms', 'p99 ms'], [
      row('Chromium straight to the network', ms.plain),
      row('Chromium through the egress gate (as the service runs it)', ms.gated)
    ]),
    table('2c. Side by side: gated ÷ plain within each round (interleaved, order alternating)', ['rounds', 'median ratio', 'middle half', 'gated slower in', 'load average (start → end, peak)', 'verdict'], [[
      String(ratios.length),
      `${fmt(median(ratios), 2)}×`,
      `${fmt(quantile(ratios, 0.25), 2)}–${fmt(quantile(ratios, 0.75), 2)}×`,
      `${slower} of ${ratios.length}`,
      `${fmt(loads[0]!, 1)} → ${fmt(loads[loads.length - 1]!, 1)}, peak ${fmt(Math.max(...loads), 1)} (${HIGH_LOAD} cores)`,
      `**${verdict}**: ${why}`
    ]]),
    `Per round (ms, plain / gated / ratio / load after): ${ratios.map((x, i) => `${fmt(ms.plain[i]!, 0)} / ${fmt(ms.gated[i]!, 0)} / ${x.toFixed(2)} / ${fmt(loads[i + 1]!, 1)}`).join('; ')}.`
  ].join('\n\n')
  return { ms, ratios, loads, verdict, markdown }
}

// 2c. The egress gate's cost on a login: the same bare puppeteer login
// (bench/bare-login.ts, tuned page) on the same heavy-game stand-ins, in two
// Chromiums side by side: one plain, one launched as the service launches
// it (egressArgs) with the login's browser context on a port of its own on
// an egress gate under the default policy (every request, socket.io and the
// module's relay WebSocket through it). Interleaved round by round, order
// rotated. The service itself always runs the gate (it has no switch to go
// without), so this isolates what the gate adds.
import type { Browser } from 'puppeteer-core'
import { EGRESS_BYPASS, egressArgs, launchChromium, resolveChromium } from '../lib/browser/chromium.js'
import { createEgressGate, type EgressGate } from '../lib/browser/egress.js'
import { createUrlPolicy } from '../lib/access/url-policy.js'
import { DEFAULT_PAGE_SETUP, preparePage } from '../lib/browser/page-setup.js'
import { bareLogin } from './bare-login.js'
import { fmt, log, median, p99, QUICK, ratio, table, type Foundry, type Stage } from './lib.js'

type Variant = 'plain' | 'gated'

export interface EgressResult {
  ms: Record<Variant, number[]>
  markdown: string
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
  const plain = await launchChromium(resolved)
  const gated = await launchChromium({ ...resolved, args: [...resolved.args, ...egressArgs(gate.browserProxy)] })
  const ms: Record<Variant, number[]> = { plain: [], gated: [] }
  try {
    let next = 0
    const foundry = (): Foundry => stage.running[next++ % stage.running.length]!
    log('egress: warm-up')
    await login(plain, foundry(), null)
    await login(gated, foundry(), gate)
    for (let r = 0; r < rounds; r++) {
      const order: Variant[] = r % 2 === 0 ? ['plain', 'gated'] : ['gated', 'plain']
      for (const v of order) ms[v].push(await login(v === 'plain' ? plain : gated, foundry(), v === 'gated' ? gate : null))
      log(`egress: round ${r + 1}/${rounds}`)
    }
  } finally {
    await plain.close().catch(() => {})
    await gated.close().catch(() => {})
    await gate.close()
  }
  const row = (what: string, xs: number[]): string[] => [what, String(xs.length), fmt(median(xs), 0), fmt(p99(xs), 0), ratio(median(xs), median(ms.plain))]
  const markdown = table('2c. Login latency with and without the egress gate (bare script, tuned page, world running)', ['variant', 'n', 'median ms', 'p99 ms', 'ratio to plain'], [
    row('Chromium straight to the network', ms.plain),
    row('Chromium through the egress gate (as the service runs it)', ms.gated)
  ])
  return { ms, markdown }
}

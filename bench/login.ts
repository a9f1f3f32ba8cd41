// 2. Login latency: POST /start-session from request to response against a
// bare puppeteer script doing the same login (bench/bare-login.ts) on the
// same heavy-game stand-in, in the same run, interleaved round by round.
// Each variant runs with the page tuning on and off, so the ratio compares
// like with like and the tuning's own effect shows.
import type { Browser } from 'puppeteer-core'
import { launchChromium, resolveChromium } from '../lib/browser/chromium.ts'
import { DEFAULT_PAGE_SETUP, preparePage } from '../lib/browser/page-setup.ts'
import { bareLogin } from './bare-login.ts'
import { endSession, prepareStart } from './client.ts'
import { fmt, forkChild, type Foundry, killedOnExit, log, median, p99, QUICK, ratio, serviceEnv, type Stage, startFoundry, table, WORLD_ID, WORLD_TITLE } from './lib.ts'

type Variant = 'service' | 'service-untuned' | 'bare' | 'bare-untuned' | 'bare-checked'

export interface LoginResult {
  running: Record<Variant, number[]>
  launch: Record<Variant, number[]>
  markdown: string
}

/** Login time of the bare script, and with the service's 250 ms module-stability check (MODULE_STABLE_MS). */
async function bare (browser: Browser, f: Foundry, tuned: boolean, worldId?: string): Promise<{ ms: number, checkedMs: number }> {
  const context = await browser.createBrowserContext()
  try {
    const page = await context.newPage()
    if (tuned) await preparePage(page, DEFAULT_PAGE_SETUP)
    const t = performance.now()
    const r = await bareLogin(page, { url: f.standin.url, username: f.user.name, password: f.user.password, stableMs: 250, ...(worldId !== undefined ? { worldId } : {}) })
    return { ms: r.connectedAt - t, checkedMs: performance.now() - t }
  } finally {
    await context.close().catch(() => {})
  }
}

async function service (port: number, f: Foundry, tuned: boolean, worldName?: string): Promise<number> {
  const start = await prepareStart(port, f, {
    ...(tuned ? {} : { noCanvas: false, blockResources: [] }),
    ...(worldName !== undefined ? { worldName } : {})
  })
  const r = await start()
  if (r.status !== 200 || r.sessionId === undefined) throw new Error(`start-session ${r.status} ${r.code ?? ''}`)
  await endSession(port, r.sessionId)
  return r.ms
}

export async function benchLogin (stage: Stage): Promise<LoginResult> {
  const rounds = QUICK ? 2 : 4
  const launchRounds = QUICK ? 1 : 2
  const variants = ['service', 'bare', 'service-untuned', 'bare-untuned'] as const
  const running = { service: [], 'service-untuned': [], bare: [], 'bare-untuned': [], 'bare-checked': [] } as Record<Variant, number[]>
  const launch = { service: [], 'service-untuned': [], bare: [], 'bare-untuned': [], 'bare-checked': [] } as Record<Variant, number[]>
  const record = (d: Record<Variant, number[]>, v: typeof variants[number], r: number | { ms: number, checkedMs: number }): void => {
    if (typeof r === 'number') { d[v].push(r); return }
    d[v].push(r.ms)
    if (v === 'bare') d['bare-checked'].push(r.checkedMs)
  }

  const { child, ready } = await forkChild<{ port: number }>('service-proc.ts', serviceEnv())
  const browser = killedOnExit(await launchChromium(await resolveChromium({ ...(process.env.CHROMIUM_PATH !== undefined ? { executablePath: process.env.CHROMIUM_PATH } : {}) })))
  try {
    // One unrecorded login each: first-use costs (JIT, Chromium caches).
    let next = 0
    const foundry = (): Foundry => stage.running[next++ % stage.running.length]!
    log('login: warm-up')
    await service(ready.port, foundry(), true)
    await bare(browser, foundry(), true)

    for (let r = 0; r < rounds; r++) {
      // Rotate the order so that no variant always runs first in a round.
      for (let k = 0; k < variants.length; k++) {
        const v = variants[(r + k) % variants.length]!
        const f = foundry()
        record(running, v, v.startsWith('service') ? await service(ready.port, f, v === 'service') : await bare(browser, f, v === 'bare'))
      }
      log(`login (world running): round ${r + 1}/${rounds}`)
    }

    // World launch: a fresh Foundry on /setup for every login.
    for (let r = 0; r < launchRounds; r++) {
      for (let k = 0; k < variants.length; k++) {
        const v = variants[(r + k) % variants.length]!
        const f = await startFoundry(stage.relay, 1000 + r * variants.length + k, false)
        try {
          await fetch(new URL('scripts/heavy.js', f.standin.url)).then(async (res) => await res.arrayBuffer())
          record(launch, v, v.startsWith('service') ? await service(ready.port, f, v === 'service', WORLD_TITLE) : await bare(browser, f, v === 'bare', WORLD_ID))
        } finally {
          await f.standin.close().catch(() => {})
        }
      }
      log(`login (world launch): round ${r + 1}/${launchRounds}`)
    }
  } finally {
    await browser.close().catch(() => {})
    await child.close()
  }

  const row = (what: string, xs: number[], ref: number[]): string[] =>
    [what, String(xs.length), fmt(median(xs), 0), fmt(p99(xs), 0), ratio(median(xs), median(ref))]
  const rows = (d: Record<Variant, number[]>): string[][] => [
    row('bare puppeteer script, tuned page (limit)', d.bare, d.bare),
    row('service start-session, defaults (tuned page)', d.service, d.bare),
    row('bare script, tuned page, + the service\'s 250 ms module check', d['bare-checked'], d.bare),
    row('service start-session, defaults, vs bare + the same check', d.service, d['bare-checked']),
    row('bare puppeteer script, plain page (limit)', d['bare-untuned'], d['bare-untuned']),
    row('service start-session, tuning off', d['service-untuned'], d['bare-untuned']),
    row('gain of the tuning: service defaults vs plain bare script', d.service, d['bare-untuned'])
  ]
  const head = ['variant', 'n', 'median ms', 'p99 ms', 'ratio to its limit']
  const markdown = [
    table('2. Login latency, world already running (heavy /game)', head, rows(running)),
    '',
    table('2b. Login latency with a world launch (heavy /game)', head, rows(launch))
  ].join('\n')
  return { running, launch, markdown }
}

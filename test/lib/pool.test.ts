// The browser pool against real Chromium: what happens when a context is
// closed while a page is being made in it (a session ended just as its
// login opened its page).
import t from 'tap'
import { setTimeout as sleep } from 'node:timers/promises'
import { createBrowserPool } from '../../lib/browser/pool.ts'
import type { Logger } from '../../lib/logger.ts'

const quiet: Logger = { debug () {}, info () {}, warn () {}, error () {} }

t.test('a context closed while its page is being made: the page settles at once, nothing waits on', async (t) => {
  const pool = createBrowserPool({ maxConcurrentLogins: 1, log: quiet, executablePath: process.env.CHROMIUM_PATH ?? '' })
  t.teardown(async () => { await pool.close() })
  await pool.start()
  // puppeteer's newPage creates the target, then waits (30 s) for it to
  // attach; a context disposed in between leaves that wait hanging. Closing
  // at a range of moments after newPage hits that window in some rounds.
  const outcomes: string[] = []
  for (let delayMs = 0; delayMs < 20; delayMs++) {
    const ctx = await pool.newContext('closing')
    const page = ctx.newPage()
    page.catch(() => {})
    await sleep(delayMs)
    await ctx.close()
    const hanging = sleep(5000, 'still waiting after 5 s', { ref: false })
    outcomes.push(await Promise.race([page.then(() => 'page', (err: Error) => `rejected: ${err.message}`), hanging]))
  }
  t.same(outcomes.filter((o) => o.startsWith('still waiting')), [], 'every newPage settled, whenever its context closed')
  t.equal(pool.health().contexts, 0, 'no context left')
  t.equal(pool.pages(), 0, 'no page left in Chromium')
})

// The session manager and its executor with a browser pool of our own
// making: what they do about a browser that does not answer, without one.
import t from 'tap'
import type { BrowserContext, Page } from 'puppeteer-core'
import type { BrowserPool } from '../../lib/browser/pool.ts'
import { SessionCancelled } from '../../lib/errors.ts'
import type { Logger } from '../../lib/logger.ts'
import { unlessAborted } from '../../lib/session/executor.ts'
import { createSessionManager } from '../../lib/session/index.ts'
import type { SessionOptions } from '../../lib/session/types.ts'

const quiet: Logger = { info () {}, warn () {}, error () {}, debug () {} }

/** A pool whose contexts make pages that never come (a context closed while its target is being created). */
function stuckPool () {
  const contexts: Array<{ closed: boolean, pagesAsked: number }> = []
  let slots = 0
  const pool: BrowserPool = {
    start: async () => {},
    newContext: async () => {
      const state = { closed: false, pagesAsked: 0 }
      contexts.push(state)
      return {
        newPage: async () => { state.pagesAsked++; return await new Promise<Page>(() => {}) },
        close: async () => { state.closed = true }
      } as unknown as BrowserContext
    },
    egressOf: () => undefined,
    tryAcquireLogin: () => { slots++; return () => { slots-- } },
    onBrowserLost: () => {},
    health: () => ({ ok: true, chromium: 'running', version: null, contexts: contexts.filter((c) => !c.closed).length, loginsRunning: slots, maxConcurrentLogins: 4, lastError: null }),
    pid: () => null,
    pages: () => 0,
    close: async () => {}
  }
  return { pool, contexts, slots: () => slots }
}

const options: SessionOptions = {
  foundryUrl: 'http://127.0.0.1:9/',
  username: 'Gamemaster',
  worldName: '',
  adminUsername: '',
  requireModule: true,
  loginIfActive: false,
  relaunchWorld: false,
  screenshotOnFailure: false,
  page: {}
}
const timeouts = { navigation: 15_000, joinForm: 10_000, worldLaunch: 20_000, gameReady: 15_000, moduleConnect: 10_000 }

t.test('a session ended while its page is being made: the start answers SESSION_CANCELLED at once, not when puppeteer gives up', async (t) => {
  const { pool, contexts, slots } = stuckPool()
  const manager = createSessionManager({ pool, log: quiet, maxSessions: 10, maxSessionsPerOwner: 10, timeouts })
  t.teardown(async () => { await manager.endAll() })
  const start = manager.start({ ownerId: 'key', options, secrets: { password: 'pw' } })
  const outcome = start.then(() => 'started', (err: Error) => err)
  // The login is waiting for its page.
  while (contexts[0]?.pagesAsked !== 1) await new Promise((resolve) => setImmediate(resolve))
  const [pending] = await manager.list('key')
  t.equal(pending?.status, 'starting')

  await manager.end('key', pending!.id)
  // Not a race against a clock: whatever the start comes to must already
  // have happened a few turns of the event loop after the end returned.
  const settled = await Promise.race([outcome, new Promise((resolve) => setTimeout(() => resolve('still waiting'), 50))])
  t.type(settled, SessionCancelled, 'the start was answered SESSION_CANCELLED')
  t.match(settled, { code: 'SESSION_CANCELLED' })
  t.ok(contexts[0]!.closed, 'its browser context was closed')
  t.equal(slots(), 0, 'its login slot was given back')
  t.match(await manager.list('key'), [{ id: pending!.id, status: 'ended', statusReason: /cancelled/ }])
})

t.test('unlessAborted', async (t) => {
  const never = new Promise<string>(() => {})
  const ac = new AbortController()
  const raced = unlessAborted(never, ac.signal)
  ac.abort(new SessionCancelled())
  await t.rejects(raced, SessionCancelled, 'rejects with the reason when the signal aborts')
  t.equal(await unlessAborted(Promise.resolve('done'), new AbortController().signal), 'done', 'the work\'s value otherwise')
  await t.rejects(unlessAborted(Promise.reject(new Error('failed')), new AbortController().signal), { message: 'failed' }, 'and its failure')
  const already = new AbortController()
  already.abort(new SessionCancelled())
  await t.rejects(unlessAborted(Promise.reject(new Error('dropped')), already.signal), SessionCancelled, 'an aborted signal wins, and the work\'s failure is no unhandled rejection')
})

// The notifier's decisions, event by event (the session events as the
// executor emits them: module first, then status), with short thresholds:
// what is told, once, and what is not. The messages it hands to delivery
// are recorded (delivery itself is tested against a receiver elsewhere).
import t from 'tap'
import { createNotifier, isDiscordWebhook } from '../../lib/webhooks/notifier.ts'
import type { Delivery, Message, Target } from '../../lib/webhooks/delivery.ts'
import type { Session, SessionEvent, SessionStatus } from '../../lib/session/types.ts'

const quiet = { info () {}, warn () {}, error () {}, debug () {} }
const sleep = async (ms: number) => await new Promise((resolve) => setTimeout(resolve, ms))

function setup (opts: { reconnectingAfterMs?: number, moduleOfflineAfterMs?: number, url?: string } = {}) {
  const sent: Array<{ target: Target, message: Message }> = []
  const delivery: Delivery = { send: (target, message) => { sent.push({ target, message }) }, pending: () => 0, close: async () => {} }
  const n = createNotifier({
    log: quiet,
    delivery,
    instance: null,
    instanceId: 'm1',
    reconnectingAfterMs: opts.reconnectingAfterMs ?? 100,
    moduleOfflineAfterMs: opts.moduleOfflineAfterMs ?? 100
  })
  const session: Session = {
    id: 's1',
    ownerId: 'a'.repeat(64),
    status: 'starting',
    statusReason: 'login started',
    statusChangedAt: Date.now(),
    startedAt: Date.now(),
    activeSince: null,
    endedAt: null,
    lastActivity: Date.now(),
    relogins: 0,
    attempts: 0,
    cause: null,
    nextAttemptAt: null,
    loggedOut: false,
    module: null,
    stage: null,
    foundryUrl: 'http://127.0.0.1:30000/',
    username: 'Gamemaster',
    worldName: 'World',
    clientId: null,
    info: null
  }
  n.tracker.track(session, { options: {} as never, secrets: { password: 'p', webhookUrl: opts.url ?? 'https://hooks.example/x', webhookSecret: 'whsec_' + Buffer.alloc(32, 1).toString('base64') } })
  const base = { sessionId: 's1', ownerId: session.ownerId }
  /**
   * One change as the executor makes it: the record first (status and
   * module), then the module event, then the status event, each with the
   * record as it is after the change.
   */
  const change = (c: { status?: SessionStatus, reason?: string, code?: string, module?: boolean, moduleReason?: string }): void => {
    const from = session.status
    if (c.status !== undefined) Object.assign(session, { status: c.status, statusReason: c.reason ?? '', statusChangedAt: Date.now() })
    if (c.module !== undefined) {
      session.module = { connected: c.module, since: Date.now(), reason: c.moduleReason ?? '', revivable: false, lastSeenAt: Date.now(), revivedAt: null }
      n.listener({ type: 'module', ...base, at: Date.now(), connected: c.module, clientId: 'c', reason: c.moduleReason ?? '' }, structuredClone(session))
    }
    if (c.status !== undefined) {
      const e: SessionEvent = { type: 'status', ...base, at: Date.now(), status: c.status, previous: from, reason: c.reason ?? '', ...(c.code !== undefined ? { code: c.code } : {}) }
      n.listener(e, structuredClone(session))
    }
  }
  const status = (to: SessionStatus, _from: SessionStatus, reason: string, code?: string): void => { change({ status: to, reason, ...(code !== undefined ? { code } : {}) }) }
  const types = (): string[] => sent.map((s) => s.message.type)
  return { n, sent, status, change, types, session }
}

t.test('a short reconnect is not news; a long one is, and so is its end', async (t) => {
  const s = setup({ reconnectingAfterMs: 150 })
  s.change({ status: 'active', reason: 'logged in', module: true })
  s.change({ status: 'reconnecting', reason: 'Foundry restarted', module: false })
  await sleep(20)
  s.change({ status: 'active', reason: 'logged back in', module: true })
  await sleep(250)
  t.same(s.types(), [], 'back within the threshold: nothing')
  s.change({ status: 'reconnecting', reason: 'Foundry restarted', module: false })
  s.status('reconnecting', 'reconnecting', 'attempt 1 failed') // a reason-only change does not restart the clock
  await sleep(250)
  t.same(s.types(), ['session.reconnecting'])
  s.change({ status: 'active', reason: 'logged back in', module: true })
  t.same(s.types(), ['session.reconnecting', 'session.recovered'])
  t.match(JSON.parse(s.sent[1]!.message.body), { type: 'session.recovered', data: { after: 'reconnecting', status: 'active' } })
  t.equal(new Set(s.sent.map((x) => x.message.id)).size, 2, 'each its own id')
})

t.test('module offline: told after the threshold while active, recovered once', async (t) => {
  const s = setup({ moduleOfflineAfterMs: 100, reconnectingAfterMs: 10_000 })
  s.change({ status: 'active', reason: 'logged in', module: false, moduleReason: 'not required' })
  await sleep(200)
  t.same(s.types(), [], 'never connected yet: its absence is not news')
  s.change({ module: true })
  s.change({ module: false, moduleReason: 'relay unreachable (1006)' })
  await sleep(200)
  t.same(s.types(), ['module.offline'])
  // The session then loses its login and comes back (quickly), module connected: one recovery.
  s.change({ status: 'reconnecting', reason: 'Foundry restarted', module: false })
  s.change({ status: 'active', reason: 'logged back in', module: true })
  t.same(s.types(), ['module.offline', 'session.recovered'])
  t.match(JSON.parse(s.sent[1]!.message.body), { data: { after: 'module-offline' } })

  // Offline again, then a reconnect long enough to be told of: one recovery, from reconnecting.
  const l = setup({ moduleOfflineAfterMs: 50, reconnectingAfterMs: 50 })
  l.change({ status: 'active', reason: 'logged in', module: true })
  l.change({ module: false, moduleReason: 'relay unreachable (1006)' })
  await sleep(120)
  l.change({ status: 'reconnecting', reason: 'Foundry restarted', module: false })
  await sleep(120)
  l.change({ status: 'active', reason: 'logged back in', module: true })
  t.same(l.types(), ['module.offline', 'session.reconnecting', 'session.recovered'])
  t.match(JSON.parse(l.sent[2]!.message.body), { data: { after: 'reconnecting', module: { connected: true } } })
})

t.test('failed with its code, then nothing more; a released session tells nothing', async (t) => {
  const s = setup({ reconnectingAfterMs: 50 })
  s.status('failed', 'starting', 'Foundry rejected the password', 'FOUNDRY_LOGIN_REJECTED')
  t.match(JSON.parse(s.sent[0]!.message.body), { type: 'session.failed', data: { code: 'FOUNDRY_LOGIN_REJECTED', status: 'failed' } })
  t.equal(s.n.size(), 0, 'forgotten')
  s.status('ended', 'failed', 'late')
  t.same(s.types(), ['session.failed'])

  const r = setup({ reconnectingAfterMs: 50 })
  r.change({ status: 'active', reason: 'logged in', module: true })
  r.n.tracker.release('s1')
  r.status('reconnecting', 'active', 'handed over')
  await sleep(150)
  r.status('ended', 'reconnecting', 'whatever')
  t.same(r.types(), [], 'released: the machine it moved to tells')
})

t.test('Discord: by the path, on any host; its body {content, embeds}', async (t) => {
  t.ok(isDiscordWebhook('https://discord.com/api/webhooks/123/abc_DEF-1'))
  t.ok(isDiscordWebhook('https://discordapp.com/api/v10/webhooks/123/abc'))
  t.ok(isDiscordWebhook('http://127.0.0.1:9/api/webhooks/1/t'))
  t.notOk(isDiscordWebhook('https://discord.com/api/other/123/abc'))
  t.notOk(isDiscordWebhook('https://example.com/hooks/123/abc'))
  const s = setup({ url: 'https://discord.com/api/webhooks/123/tok' })
  s.session.worldName = '@everyone'
  s.status('ended', 'active', 'ended by the client')
  const body = JSON.parse(s.sent[0]!.message.body)
  t.match(body, { content: /Foundry session ended/, embeds: [{ title: 'Foundry session ended', description: 'ended by the client' }], allowed_mentions: { parse: [] } })
})

t.test('decided: a failure another part of the fleet wrote here is told once, to its own webhook (when known) and the operator\'s', async (t) => {
  const sent: Array<{ target: Target, message: Message }> = []
  const n = createNotifier({
    log: quiet,
    delivery: { send: (target, message) => { sent.push({ target, message }) }, pending: () => 0, close: async () => {} },
    instance: { kind: 'instance', url: 'https://ops.example/hook', secret: null },
    instanceId: 'm2',
    reconnectingAfterMs: 100,
    moduleOfflineAfterMs: 100
  })
  const { session } = setup()
  const failed: Session = { ...session, id: 's9', status: 'failed', statusReason: 'its machine m1 stopped, and no machine of the fleet could take it over: start it again', statusChangedAt: 5000, endedAt: 5000 }
  n.decided(failed, { webhookUrl: 'https://hooks.example/s9', webhookSecret: 'whsec_x' })
  t.same(sent.map((s) => [s.target.kind, s.target.url, s.message.type]), [['session', 'https://hooks.example/s9', 'session.failed'], ['instance', 'https://ops.example/hook', 'session.failed']])
  t.match(JSON.parse(sent[0]!.message.body), { type: 'session.failed', data: { sessionId: 's9', instanceId: 'm2', status: 'failed', reason: /its machine m1 stopped/ } })
  t.equal(sent[0]!.message.id, sent[1]!.message.id, 'one webhook-id for the one event')
  t.match(sent[0]!.target, { secret: 'whsec_x' }, 'signed with the session\'s secret')

  sent.length = 0
  n.decided(failed, null)
  t.same(sent.map((s) => s.target.kind), ['instance'], 'its credentials did not open here: the operator\'s only')
  sent.length = 0
  n.decided({ ...failed, status: 'reconnecting' }, null)
  n.tracker.track(session, { options: {} as never, secrets: { password: 'p' } })
  n.decided({ ...session, status: 'failed' }, null)
  t.same(sent, [], 'nothing for a live session, nor for one this machine runs (its own events tell it)')
})

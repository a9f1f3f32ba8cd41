// Session events and audit lines through real Chromium against the Foundry
// stand-in: the typed event stream (stage, status), who may follow which
// session, and one audit line per session started / ended / failed.
import t from 'tap'
import { hashKey } from '../../lib/access/api-keys.ts'
import type { SessionEvent } from '../../lib/session/index.ts'
import { API_KEY, OTHER_KEY, build } from '../helper.ts'
import { GM, WORLD, endSession, eventually, foundry, listSessions, startSession } from './fixtures.ts'

const OWNER = hashKey(API_KEY)
const OTHER_OWNER = hashKey(OTHER_KEY)

interface AuditLine { audit: string, sessionId: string, key: string, foundry: string, world: string, user: string, reason?: string, level: number }

function auditLines (logs: string): AuditLine[] {
  return logs.split('\n').filter((l) => l.includes('"audit"')).map((l) => JSON.parse(l) as AuditLine)
}

t.test('events: the login\'s stages, then its statuses, in order; followed only by its own key', async (t) => {
  const { app, logs } = await build(t)
  const { standin } = await foundry(t)
  const all: SessionEvent[] = []
  const off = app.sessions.onEvent((e) => { all.push(e) })
  t.teardown(off)

  const res = await startSession(app, { foundryUrl: standin.url, username: GM.name, password: GM.password, world: WORLD.title })
  t.equal(res.statusCode, 200, res.body)
  const { sessionId } = res.json()
  const mine = all.filter((e) => e.sessionId === sessionId)
  t.ok(mine.every((e) => e.ownerId === OWNER && typeof e.at === 'number'), 'every event names its session and owner')
  const stages = mine.filter((e) => e.type === 'stage').map((e) => e.type === 'stage' ? e.stage : '')
  t.same(stages, ['reach', 'join', 'game-load', 'module-connection'], 'the stages the login went through')
  t.match(mine.at(-1), { type: 'status', status: 'active', previous: 'starting', reason: /module is connected/ })

  await t.rejects(app.sessions.subscribe(OTHER_OWNER, sessionId, () => {}), { code: 'SESSION_NOT_FOUND' }, 'not another key\'s session')
  await t.rejects(app.sessions.subscribe(OWNER, '00000000-0000-4000-8000-000000000000', () => {}), { code: 'SESSION_NOT_FOUND' }, 'not an unknown id')

  const followed: SessionEvent[] = []
  const unsubscribe = await app.sessions.subscribe(OWNER, sessionId, (e) => { followed.push(e) })
  const end = await endSession(app, sessionId)
  t.equal(end.statusCode, 200)
  t.ok(await eventually(() => followed.length > 0), 'the subscriber heard the end')
  t.match(followed, [{ type: 'status', sessionId, status: 'ended', previous: 'active', reason: 'ended by the client' }])
  unsubscribe()

  // No record the service keeps or lists carries the password.
  t.notOk(JSON.stringify(await app.sessions.list(OWNER)).includes(GM.password), 'no password in the session records')
  t.notOk(JSON.stringify(all).includes(GM.password), 'no password in any event')
  t.notOk(logs().includes(GM.password))
})

t.test('audit lines: exactly one per session started, ended and failed, with the key\'s digest and no secret', async (t) => {
  const { app, logs } = await build(t)
  const { standin } = await foundry(t)
  const origin = new URL(standin.url).origin

  const ok = await startSession(app, { foundryUrl: standin.url, username: GM.name, password: GM.password })
  t.equal(ok.statusCode, 200, ok.body)
  const okId = ok.json().sessionId
  // The same world and user again is the same session: no second "started".
  t.match((await startSession(app, { foundryUrl: standin.url, username: GM.name, password: GM.password })).json(), { existingSession: true })
  await endSession(app, okId)

  const bad = await startSession(app, { foundryUrl: standin.url, username: GM.name, password: 'not-the-password-123', apiKey: OTHER_KEY })
  t.equal(bad.statusCode, 422, bad.body)

  const lines = auditLines(logs())
  const of = (id: string): AuditLine[] => lines.filter((l) => l.sessionId === id)
  t.same(of(okId).map((l) => l.audit), ['session.started', 'session.ended'], 'started once, ended once')
  t.match(of(okId), [
    { level: 30, key: OWNER.slice(0, 12), foundry: origin, world: WORLD.title, user: GM.name },
    { level: 30, key: OWNER.slice(0, 12), foundry: origin, world: WORLD.title, user: GM.name, reason: 'ended by the client' }
  ])
  const failed = lines.filter((l) => l.audit === 'session.failed')
  t.equal(failed.length, 1, 'one failed line')
  t.match(failed[0], { level: 30, key: OTHER_OWNER.slice(0, 12), foundry: origin, user: GM.name, reason: /JOIN\.ErrorInvalidPassword|password/i })
  t.equal(of(failed[0].sessionId).length, 1, 'a failed start has no started line')
  t.equal(lines.length, 3, 'nothing else')
  const all = logs()
  for (const secret of [API_KEY, OTHER_KEY, GM.password, 'not-the-password-123', OWNER, OTHER_OWNER]) {
    t.notOk(all.includes(secret), 'neither a key, its whole digest, nor a password is logged')
  }
})

t.test('audit lines: a login cancelled while starting is one "ended" line', async (t) => {
  const { app, logs } = await build(t)
  const { standin } = await foundry(t, { gameReadyDelayMs: 60_000 })
  const pending = startSession(app, { foundryUrl: standin.url, username: GM.name, password: GM.password })
  let id = ''
  t.ok(await eventually(async () => {
    id = String((await listSessions(app)).pendingSessions[0]?.id ?? '')
    return id !== ''
  }), 'listed as pending')
  await endSession(app, id)
  t.equal((await pending).statusCode, 409)
  t.match(auditLines(logs()).filter((l) => l.sessionId === id), [{ audit: 'session.ended', reason: 'cancelled by the client while starting' }])
  t.equal(auditLines(logs()).filter((l) => l.sessionId === id).length, 1)
})

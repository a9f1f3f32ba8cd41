// One machine, a seal key and a state file (issue 17 §3): the service as
// users run it (`node dist/server.js`), stopped with SIGTERM and killed with
// SIGKILL (its Chromium tree with it), started again → the same sessions
// active, the module connected again; the state file never holds a secret in
// plaintext. A file sealed with another key, and a truncated one: the service
// starts, and says what it could not bring back.
import t from 'tap'
import { randomBytes } from 'node:crypto'
import { mkdtempSync, readFileSync, rmSync, writeFileSync, existsSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { hashKey } from '../../lib/access/api-keys.ts'
import { createSealer } from '../../lib/fleet/seal.ts'
import { initialState } from '../../lib/session/machine.ts'
import { createStateFile, STATE_FILE_NAME } from '../../lib/session/state-file.ts'
import { startOptions, type Session } from '../../lib/session/types.ts'
import { chromiumProfile, processTree } from '../../support/proc.ts'
import { build } from '../helper.ts'
import { GM, WORLD, alive, eventually, foundry } from './fixtures.ts'
import { startService, startSessionHttp, type ServiceProcess } from './service-process.ts'

const KEY = 'restart-test-key-0123456789'
const SEAL_KEY = randomBytes(32).toString('base64')
const ADMIN_PASSWORD = 'admin-secret-For-Restart-9'
const TOKEN = 'restart-connection-token-' + 'q'.repeat(24)

function stateDir (t: { teardown: (fn: () => unknown) => void }): string {
  const dir = mkdtempSync(join(tmpdir(), 'fs-state-'))
  t.teardown(() => { rmSync(dir, { recursive: true, force: true }) })
  return dir
}

function readState (dir: string): { text: string, sessions: Array<{ record: Session, sealed: string }> } {
  try {
    const text = readFileSync(join(dir, STATE_FILE_NAME), 'utf8')
    return { text, sessions: (JSON.parse(text) as { sessions: Array<{ record: Session, sealed: string }> }).sessions }
  } catch {
    return { text: '', sessions: [] }
  }
}

async function listed (base: string, id: string): Promise<Record<string, any> | undefined> {
  const res = await fetch(`${base}/session`, { headers: { 'x-api-key': KEY } })
  const list = await res.json() as Record<string, Array<Record<string, any>>>
  return [...list.activeSessions, ...list.pendingSessions, ...list.endedSessions].find((s) => s.id === id)
}

t.test('SIGTERM, then SIGKILL: started again, the same sessions are active again', async (t) => {
  const dir = stateDir(t)
  const { standin, relay } = await foundry(t, { moduleVersion: 3, adminPassword: ADMIN_PASSWORD }, { validTokens: [TOKEN] })
  const env = {
    API_KEYS: KEY,
    CHROMIUM_PATH: process.env.CHROMIUM_PATH ?? '',
    SESSION_SEAL_KEY: SEAL_KEY,
    STATE_DIR: dir,
    RELOGIN_BASE_MS: '300',
    RELOGIN_MAX_DELAY_MS: '2000'
  }
  const services: ServiceProcess[] = []
  const start = async (): Promise<{ svc: ServiceProcess, base: string }> => {
    const svc = startService(env)
    services.push(svc)
    return { svc, base: await svc.listening() }
  }
  t.teardown(async () => {
    for (const s of services) {
      const tree = s.child.pid !== undefined ? processTree(s.child.pid) : []
      await s.stop()
      for (const pid of tree) { try { process.kill(pid, 'SIGKILL') } catch {} }
    }
  })
  const secrets = [GM.password, ADMIN_PASSWORD, TOKEN, KEY, SEAL_KEY]
  const noSecretIn = (text: string, what: string): void => {
    t.same(secrets.filter((s) => text.includes(s)).map((s) => `${s.slice(0, 6)}…`), [], `no secret in plaintext in ${what}`)
  }

  let { svc, base } = await start()
  const res = await startSessionHttp({ base, apiKey: KEY, foundryUrl: standin.url, username: GM.name, password: GM.password, world: WORLD.title, connectionToken: TOKEN, adminPassword: ADMIN_PASSWORD })
  t.equal(res.status, 200, res.text)
  const { sessionId, clientId } = res.json
  t.ok(await eventually(() => readState(dir).sessions.some((s) => s.record.id === sessionId && s.record.status === 'active'), 10_000), 'the running session is in the state file')
  noSecretIn(readState(dir).text, 'the state file')

  // SIGTERM: the service ends cleanly, Chromium with it; the session stays in the file.
  const tree = processTree(svc.child.pid!)
  t.ok(tree.length > 1, 'Chromium runs below the service')
  t.equal(await svc.stop(), 0, 'SIGTERM: a clean exit')
  t.ok(await eventually(() => tree.every((p) => !alive(p)), 10_000), 'every process it started ended with it')
  t.match(readState(dir).sessions.find((s) => s.record.id === sessionId)?.record, { status: 'reconnecting', statusReason: /restarting/ }, 'left in the file, saying why')
  t.equal(relay.open().filter((c) => c.id === clientId).length, 0, 'its page closed (the relay freed the module id)')

  let at = Date.now();
  ({ svc, base } = await start())
  t.ok(await eventually(async () => (await listed(base, sessionId))?.status === 'active', 40_000), 'active again after the SIGTERM restart')
  t.match(await listed(base, sessionId), { sessionId, clientId, status: 'active', statusReason: /logged back in after: the service restarted/ })
  t.ok(await eventually(() => relay.open().some((c) => c.id === clientId && c.openedAt >= at), 10_000), 'the module connected again')

  // SIGKILL of the service and its whole tree (a crash, an OOM kill).
  t.ok(await eventually(() => readState(dir).sessions.some((s) => s.record.id === sessionId && s.record.status === 'active'), 10_000), 'the file says active again')
  const tree2 = processTree(svc.child.pid!)
  // Its Chromium's profile directory, which nobody removes at a SIGKILL.
  const profile = tree2.map(chromiumProfile).find((d) => d !== undefined)
  svc.child.kill('SIGKILL')
  for (const pid of tree2) { try { process.kill(pid, 'SIGKILL') } catch {} }
  t.ok(await eventually(() => tree2.every((p) => !alive(p)), 10_000), 'killed, Chromium too')
  // Left behind now; any Chromium launched next on the machine removes it
  // (another test file's may, before the restarted service's does).
  t.ok(profile !== undefined, `the killed service's Chromium profile: ${profile}`)
  t.ok(await eventually(() => !relay.open().some((c) => c.id === clientId), 10_000), 'the relay saw the module go')
  at = Date.now();
  ({ svc, base } = await start())
  t.ok(await eventually(async () => (await listed(base, sessionId))?.status === 'active', 40_000), 'active again after the SIGKILL restart')
  t.match(await listed(base, sessionId), { sessionId, clientId, status: 'active', relogins: 2 })
  t.notOk(existsSync(profile!), 'removed by the next launch (at the latest the restarted service\'s)')
  t.ok(await eventually(() => relay.open().some((c) => c.id === clientId && c.openedAt >= at), 10_000), 'the module connected again')

  noSecretIn(readState(dir).text, 'the state file after the restarts')
  for (const s of services) noSecretIn(s.out() + s.err(), 'the service log')

  // Ended by its client: it leaves the file.
  const end = await fetch(`${base}/end-session?sessionId=${sessionId}`, { method: 'DELETE', headers: { 'x-api-key': KEY } })
  t.equal(end.status, 200)
  t.ok(await eventually(() => !readState(dir).sessions.some((s) => s.record.id === sessionId), 10_000), 'an ended session leaves the state file')
})

/** A state file as the service writes it, holding one running session, sealed with `key`. */
async function writeStateFile (dir: string, key: string, foundryUrl: string): Promise<Session> {
  const record: Session = {
    id: '0a1b2c3d-1111-4222-8333-444455556666',
    ownerId: hashKey(KEY),
    ...initialState(Date.now() - 60_000),
    status: 'active',
    stage: null,
    foundryUrl,
    username: GM.name,
    worldName: WORLD.title,
    clientId: `foundry-${GM.id}`,
    info: null
  }
  const file = await createStateFile({ dir, sealer: createSealer(key), log: { info () {}, warn () {}, error () {}, debug () {} } as never })
  file.keep(record.id, { options: startOptions({ foundryUrl, username: GM.name, worldName: WORLD.title }, {}), secrets: { password: GM.password } })
  file.update(record)
  await file.flush()
  return record
}

t.test('a state file sealed with another key: the session is failed with a clear reason, the service runs', async (t) => {
  const dir = stateDir(t)
  const { standin } = await foundry(t)
  const record = await writeStateFile(dir, randomBytes(32).toString('base64'), standin.url)
  t.notOk(readFileSync(join(dir, STATE_FILE_NAME), 'utf8').includes(GM.password), 'the file holds no password in plaintext')
  const { app, logs } = await build(t, { API_KEYS: KEY, SESSION_SEAL_KEY: SEAL_KEY, STATE_DIR: dir })
  const answer = await app.inject({ method: 'GET', url: '/session', headers: { 'x-api-key': KEY } })
  t.equal(answer.statusCode, 200, answer.body)
  const list = answer.json()
  t.match(list.endedSessions, [{ id: record.id, status: 'failed', statusReason: /sealed credentials .* do not open with this SESSION_SEAL_KEY/ }])
  t.same(list.activeSessions, [])
  t.equal(standin.joins.length, 0, 'no login was tried')
  t.match(logs(), /did SESSION_SEAL_KEY change/)
  t.equal((await app.inject({ method: 'GET', url: '/health' })).statusCode, 200, 'the service runs')
  t.same(readState(dir).sessions, [], 'the file no longer holds it')
})

t.test('a truncated state file: the service starts, and says what it dropped', async (t) => {
  const dir = stateDir(t)
  const { standin } = await foundry(t)
  const record = await writeStateFile(dir, SEAL_KEY, standin.url)
  const path = join(dir, STATE_FILE_NAME)
  const whole = readFileSync(path, 'utf8')
  writeFileSync(path, whole.slice(0, Math.floor(whole.length * 0.6)))
  const { app, logs } = await build(t, { API_KEYS: KEY, SESSION_SEAL_KEY: SEAL_KEY, STATE_DIR: dir })
  t.equal((await app.inject({ method: 'GET', url: '/health' })).statusCode, 200, 'the service runs')
  t.match(logs(), new RegExp(`state file .* could not be read .*sessions dropped: ${record.id}`))
  t.ok(existsSync(`${path}.corrupt`), 'the file was set aside')
  t.equal(standin.joins.length, 0)

  t.test('garbage: the same, no session made out', async (t) => {
    const dir = stateDir(t)
    writeFileSync(join(dir, STATE_FILE_NAME), '\u0000\u0001not json at all')
    const { logs } = await build(t, { API_KEYS: KEY, SESSION_SEAL_KEY: SEAL_KEY, STATE_DIR: dir })
    t.match(logs(), /could not be read .*no session could be made out in it/)
  })
})

t.test('a seal key without REDIS_URL needs STATE_DIR', async (t) => {
  await t.rejects(async () => { await build(t, { SESSION_SEAL_KEY: SEAL_KEY }) }, /SESSION_SEAL_KEY without REDIS_URL needs STATE_DIR/)
})

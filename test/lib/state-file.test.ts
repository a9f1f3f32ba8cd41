// The state file without a service: what it keeps (running sessions with
// sealed credentials, never a secret in plaintext), how it is written (mode
// 0600, no temporary file left), and what it gives back at start.
import t from 'tap'
import { randomBytes } from 'node:crypto'
import { mkdtempSync, readdirSync, readFileSync, rmSync, statSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { createSealer } from '../../lib/fleet/seal.ts'
import { initialState } from '../../lib/session/machine.ts'
import { createStateFile, STATE_FILE_NAME } from '../../lib/session/state-file.ts'
import { startOptions, type Credentials, type Session } from '../../lib/session/types.ts'

const quiet = { info () {}, warn () {}, error () {}, debug () {} } as never
const KEY = randomBytes(32).toString('base64')
const SECRETS = { password: 'pw-Plain-Secret-1', adminPassword: 'admin-Plain-Secret-2', connectionToken: 'token-Plain-Secret-3' }

function record (id: string, status: Session['status']): Session {
  return { id, ownerId: 'o'.repeat(64), ...initialState(1000), status, stage: null, foundryUrl: 'http://127.0.0.1:1/', username: 'Gamemaster', worldName: 'w', clientId: 'foundry-x', info: null }
}
const credentials: Credentials = { options: startOptions({ foundryUrl: 'http://127.0.0.1:1/', username: 'Gamemaster', worldName: 'w' }, { relaunchWorld: true }), secrets: SECRETS }

t.test('keeps running sessions only, sealed; written atomically', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'fs-state-unit-'))
  t.teardown(() => { rmSync(dir, { recursive: true, force: true }) })
  const file = await createStateFile({ dir, sealer: createSealer(KEY), log: quiet })
  const ids = ['00000000-0000-4000-8000-00000000000a', '00000000-0000-4000-8000-00000000000b', '00000000-0000-4000-8000-00000000000c']
  for (const id of ids) file.keep(id, credentials)
  file.update(record(ids[0]!, 'starting'))
  file.update(record(ids[1]!, 'active'))
  file.update(record(ids[2]!, 'reconnecting'))
  await file.flush()
  const text = readFileSync(join(dir, STATE_FILE_NAME), 'utf8')
  t.same((JSON.parse(text) as { sessions: Array<{ record: Session }> }).sessions.map((s) => s.record.id), [ids[1], ids[2]], 'running ones, not one still starting')
  for (const secret of Object.values(SECRETS)) t.notOk(text.includes(secret), 'no secret in plaintext')
  t.equal(statSync(join(dir, STATE_FILE_NAME)).mode & 0o777, 0o600, 'readable by the service only')
  t.same(readdirSync(dir), [STATE_FILE_NAME], 'no temporary file left')

  file.update(record(ids[1]!, 'ended'))
  await file.flush()
  const again = await createStateFile({ dir, sealer: createSealer(KEY), log: quiet })
  const back = await again.load()
  t.same(back.sessions.map((s) => s.record.id), [ids[2]], 'an ended session left the file')
  t.same(back.sessions[0]?.credentials, credentials, 'the credentials open again, options included')
  t.same(back.failed, [])

  const other = await createStateFile({ dir, sealer: createSealer(randomBytes(32).toString('base64')), log: quiet })
  const refused = await other.load()
  t.same(refused.sessions, [])
  t.match(refused.failed, [{ record: { id: ids[2] }, reason: /do not open with this SESSION_SEAL_KEY/ }], 'another key: failed, saying why')
})

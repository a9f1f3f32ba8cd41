// Tenant isolation: a key never sees, ends or learns of another key's
// sessions or handshakes, and its attempts change nothing for the owner.
import t from 'tap'
import { API_KEY, OTHER_KEY, build, encryptNode, expectError, handshake } from '../helper.ts'
import { GM, endSession, eventually, foundry, listSessions } from '../e2e/fixtures.ts'

t.test('handshakes and sessions are per key', async (t) => {
  const { app } = await build(t)
  const { standin } = await foundry(t, { gameReadyDelayMs: 60_000 })
  const start = async (body: unknown, key: string) => await app.inject({ method: 'POST', url: '/start-session', headers: { 'x-api-key': key, 'content-type': 'application/json' }, payload: body as object })

  // Another key's handshake token is "not found", and stays usable for its owner.
  const h = await handshake(app, { 'x-foundry-url': standin.url, 'x-username': GM.name })
  const enc = encryptNode(h.publicKey, { password: GM.password, nonce: h.nonce })
  const stolen = await start({ handshakeToken: h.token, encryptedPassword: enc }, OTHER_KEY)
  expectError(t, stolen, 401, 'HANDSHAKE_NOT_FOUND')
  const unknown = await start({ handshakeToken: 'f'.repeat(64), encryptedPassword: enc }, OTHER_KEY)
  t.same(stolen.json(), unknown.json(), 'indistinguishable from an unknown token')
  t.equal(app.keystore.size(), 1, 'the handshake is still there')

  // The owner's login (pending: the game never gets ready) is invisible to the other key.
  const pending = start({ handshakeToken: h.token, encryptedPassword: enc }, API_KEY)
  let id = ''
  t.ok(await eventually(async () => {
    id = String((await listSessions(app)).pendingSessions[0]?.id ?? '')
    return id !== ''
  }), 'the owner sees its pending session')
  const theirs = await listSessions(app, OTHER_KEY)
  t.same([theirs.activeSessions.length, theirs.pendingSessions.length, (theirs as { endedSessions?: unknown[] }).endedSessions?.length ?? 0], [0, 0, 0], 'the other key sees nothing')
  const notFound = await endSession(app, id, OTHER_KEY)
  expectError(t, notFound, 404, 'SESSION_NOT_FOUND')
  t.same(notFound.json(), (await endSession(app, '00000000-0000-4000-8000-000000000000', OTHER_KEY)).json(), 'indistinguishable from an unknown id')
  t.equal((await listSessions(app)).pendingSessions.length, 1, 'still starting for its owner')

  t.equal((await endSession(app, id)).statusCode, 200, 'the owner can end it')
  expectError(t, await pending, 409, 'SESSION_CANCELLED')

  // A failure screenshot that belongs to the owner: the other key gets the
  // same 404 as for an id that never existed; the owner still gets the PNG.
  const h2 = await handshake(app, { 'x-foundry-url': standin.url, 'x-username': GM.name })
  const failed = await start({ handshakeToken: h2.token, encryptedPassword: encryptNode(h2.publicKey, { password: 'wrong-password', nonce: h2.nonce }), screenshotOnFailure: true }, API_KEY)
  expectError(t, failed, 422, 'FOUNDRY_LOGIN_REJECTED')
  const url = String(failed.json().screenshot)
  t.match(url, /^\/failure-screenshot\/[0-9a-f]{32}$/)
  const theirShot = await app.inject({ method: 'GET', url, headers: { 'x-api-key': OTHER_KEY } })
  expectError(t, theirShot, 404, 'SCREENSHOT_NOT_FOUND')
  const noShot = await app.inject({ method: 'GET', url: `/failure-screenshot/${'a'.repeat(32)}`, headers: { 'x-api-key': OTHER_KEY } })
  t.same(theirShot.json(), noShot.json(), 'indistinguishable from an unknown screenshot')
  const ownShot = await app.inject({ method: 'GET', url, headers: { 'x-api-key': API_KEY } })
  t.equal(ownShot.statusCode, 200, 'the owner gets it')
  t.equal(ownShot.headers['content-type'], 'image/png')
  t.same([...ownShot.rawPayload.subarray(0, 8)], [0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a], 'a PNG')
})

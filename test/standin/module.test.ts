// The fake REST API module in real Chromium: v2 primary-GM rule and query
// auth; v3 seeded token, auth message, close codes.
import t from 'tap'
import { defaultClientId, startFoundryStandin, type StandinOptions } from '../../support/foundry/standin.ts'
import { startRelayStandin } from '../../support/foundry/relay.ts'
import { ASSISTANT, GM, GM2, PLAYER, fileBrowser, freshPage, loginWithForm, makeWorld, until, waitReady } from '../../support/foundry/browser.ts'

const TOKEN_KEY = 'foundry-rest-api.connectionToken'

t.test('REST API module', async (t) => {
  const browser = await fileBrowser(t)
  t.jobs = 4

  async function setup (t: { teardown: (fn: () => unknown) => void }, opts: Partial<StandinOptions> = {}) {
    const relay = await startRelayStandin()
    t.teardown(() => relay.close())
    const s = await startFoundryStandin({ worlds: [makeWorld('world-one')], activeWorld: 'world-one', relayUrl: relay.url, gameReadyDelayMs: 200, ...opts })
    t.teardown(() => s.close())
    return { relay, s }
  }

  async function login (t: { teardown: (fn: () => unknown) => void }, url: string, userId: string, password: string, localStorage?: Record<string, string>) {
    const { page } = await freshPage(t, browser, { noCanvas: true, ...(localStorage !== undefined ? { localStorage } : {}) })
    await page.goto(url)
    await loginWithForm(page, userId, password)
    await waitReady(page)
    return page
  }

  t.test('v2: only the primary GM connects, with foundry-<userId> and the world apiKey', async (t) => {
    const { relay, s } = await setup(t, { activeUserIds: [GM.id] })
    // GM2 (ccc…) is not primary while GM (aaa…) is active elsewhere. Each
    // page's module decides 1 s after its game is ready: once the last page
    // logged in (GM2) has decided, the earlier ones have too.
    await login(t, s.url, PLAYER.id, '')
    await login(t, s.url, ASSISTANT.id, 'a')
    const gm2 = await login(t, s.url, GM2.id, '')
    await gm2.waitForFunction(() => (window as any).game.modules.get('foundry-rest-api').socketManager?.isPrimaryGM === false, { timeout: 5000 })
    t.same(relay.connections, [], 'no connection: GM2 is not the primary GM; player and assistant never connect')

    // The primary GM logs out elsewhere: GM2 re-checks on userConnected and takes over.
    s.setUserActive(GM.id, false)
    const c = await relay.waitFor((c) => c.id === `foundry-${GM2.id}` && c.pings > 0, 20_000)
    t.same(c.query, {
      id: `foundry-${GM2.id}`,
      token: 'world-one',
      worldId: 'world-one',
      worldTitle: 'Title of world-one',
      foundryVersion: '13.351',
      systemId: 'dnd5e',
      systemTitle: 'Dungeons & Dragons Fifth Edition',
      systemVersion: '5.0.4',
      customName: ''
    }, 'v2 query')
    t.same(c.messages[0], { type: 'ping' })

    // A lower-id GM becomes active again: GM2 steps down with 1000.
    s.setUserActive(GM.id, true)
    await relay.waitFor((x) => x === c && x.closeCode === 1000, 20_000)
    t.equal(c.closedBy, 'client')
    t.equal(relay.open().length, 0)
    t.ok(gm2)
  })

  t.test('v2: lowest id connects; module off → nothing; relay drop → reconnect', async (t) => {
    const { relay, s } = await setup(t, { moduleApiKey: 'custom-key' })
    await login(t, s.url, GM.id, GM.password)
    const c = await relay.waitFor((c) => c.id === `foundry-${GM.id}` && c.authed, 20_000)
    t.equal(c.query.token, 'custom-key')
    relay.kick(c, 1011, 'server error')
    const again = await relay.waitFor((x) => x !== c && x.id === `foundry-${GM.id}` && x.closedAt === undefined, 20_000)
    t.ok(again.openedAt - (c.closedAt ?? 0) >= 1500, 'reconnects with backoff (2 s for the first retry)')

    const off = await setup(t, { worlds: [makeWorld('world-one', [GM], { moduleActive: false })] })
    const offPage = await login(t, off.s.url, GM.id, GM.password)
    // game.ready: the boot is over, and a disabled module's script was never
    // loaded, so nothing on this page can connect later.
    t.same(await offPage.evaluate(() => {
      const m = (window as any).game.modules.get('foundry-rest-api')
      return { active: m.active, api: m.api === undefined ? 'none' : 'set' }
    }), { active: false, api: 'none' }, 'the module\'s script never ran')
    t.same(off.relay.connections, [], 'module disabled in the world: no connection')
  })

  t.test('v3: seeded token → /relay, auth message, ping, player-list', async (t) => {
    const { relay, s } = await setup(t, { moduleVersion: 3 })
    relay.validTokens.add('tok-123')
    const clientId = defaultClientId('world-one')
    t.match(clientId, /^fvtt_[0-9a-f]{16}$/)

    // No token: no connection.
    await login(t, s.url, GM2.id, '')
    // Token seeded as JSON before navigation.
    const page = await login(t, s.url, GM.id, GM.password, { [TOKEN_KEY]: JSON.stringify('tok-123') })
    const c = await relay.waitFor((c) => c.protocol === 'v3' && c.authed && c.pings > 0, 20_000)
    t.equal(c.path, '/relay')
    t.equal(c.id, clientId)
    t.notOk('token' in c.query, 'no token in the query')
    t.match(c.query, { worldId: 'world-one', foundryVersion: '13.351', systemId: 'dnd5e' })
    t.same(c.messages[0], { type: 'auth', token: 'tok-123' })
    await relay.waitFor((x) => x === c && x.messages.some((m: any) => m?.type === 'player-list'), 20_000)
    const list = c.messages.find((m: any) => m?.type === 'player-list') as { users: Array<{ id: string, active: boolean }> }
    t.ok(list.users.some((u) => u.id === GM.id && u.active), 'player-list with active users')
    t.equal(relay.connections.length, 1, 'the GM without a token never connected')

    // Requests from the relay: search walks the documents; anything else is not implemented.
    const ask = async (msg: Record<string, unknown>) => {
      relay.send(c, msg)
      await relay.waitFor((x) => x === c && x.messages.some((m: any) => m?.requestId === msg.requestId), 20_000)
      return c.messages.find((m: any) => m?.requestId === msg.requestId)
    }
    const found = await ask({ type: 'search', requestId: 'r1', query: GM.name.toUpperCase() })
    t.match(found, { type: 'search-result', requestId: 'r1', results: [{ id: GM.id, name: GM.name }] })
    t.ok((found as { walked: number }).walked >= 2, 'every user walked')
    t.match(await ask({ type: 'roll', requestId: 'r2' }), { type: 'roll-result', requestId: 'r2', error: /Not implemented/ })

    // 4004 → retry later (30 s): no immediate reconnect. 1008 → token cleared, stop.
    relay.kick(c, 1008, 'bad token')
    await until(async () => await page.evaluate((k) => window.localStorage.getItem(k), TOKEN_KEY) === '""', 20_000, 'token cleared')
    t.ok(await page.$('#foundry-rest-api-pairing'), 'pairing dialog shown')
    t.same(await page.evaluate(() => {
      const r = (window as any).game.modules.get('foundry-rest-api').relay
      return { stopped: r.stopped, socket: r.socket, timer: r.timer }
    }), { stopped: true, socket: null, timer: null }, 'the connection stopped for good: no socket, no retry scheduled')
    t.equal(relay.connections.length, 1, 'no reconnect after 1008')
  })

  t.test('v3: unknown token → 1008; relayUrl ending in /relay; wrong token format', async (t) => {
    const { relay, s } = await setup(t, { moduleVersion: 3, worlds: [makeWorld('world-one', [GM, GM2], { moduleClientId: 'fvtt_00000000000000aa' })] })
    const page = await login(t, s.url, GM.id, GM.password, { [TOKEN_KEY]: JSON.stringify('not-valid') })
    const c = await relay.waitFor((c) => c.closeCode !== undefined, 20_000)
    t.equal(c.id, 'fvtt_00000000000000aa')
    t.equal(c.closeCode, 1008)
    await until(async () => await page.evaluate((k) => window.localStorage.getItem(k), TOKEN_KEY) === '""', 20_000, 'token cleared')

    const r2 = await startRelayStandin()
    t.teardown(() => r2.close())
    r2.validTokens.add('tok')
    const s2 = await startFoundryStandin({ worlds: [makeWorld('world-one')], activeWorld: 'world-one', relayUrl: r2.url + 'relay/', moduleVersion: 3, gameReadyDelayMs: 100 })
    t.teardown(() => s2.close())
    await login(t, s2.url, GM.id, GM.password, { [TOKEN_KEY]: 'tok' })
    await login(t, s2.url, GM2.id, '', { [TOKEN_KEY]: JSON.stringify('tok') })
    const ok = await r2.waitFor((c) => c.authed, 20_000)
    t.equal(ok.path, '/relay', 'relayUrl …/relay/ → /relay')
    // GM's module decided before GM2's (its game was ready first).
    t.same(r2.connections.map((c) => c.id), [ok.id], 'a token that is not JSON-encoded is not a token: only GM2 connected')
  })
})

// The REST API module's relay connection, seen from the page's WebSockets
// (lib/browser/websockets.ts; close codes from ./page/document.js): wait until the
// relay accepts it (2.x: the upgrade stays open; 3.x: auth-success), or name
// the refusal by its close code (4004 taken, 1008/4001/4002 token refused).
import { ModuleConnectionTaken, ModuleNotConnected, ModuleTokenRefused } from '../errors.ts'
import { WsWaitTimeout, type WsConnection } from '../browser/websockets.ts'
import type { Driver } from './driver.ts'
import { otherPrimaryGm } from './game.ts'
import type { ModuleInfo, WorldInfo } from './types.ts'

const REFUSALS = new Set([4004, 1008, 4001, 4002])

export async function moduleConnection (d: Driver, info: WorldInfo): Promise<ModuleInfo> {
  d.enter('module-connection')
  const ws = d.ws!
  const socketPath = d.socketPath()
  const isModule = (c: WsConnection): boolean => {
    if (c.url.pathname === socketPath) return false // Foundry's own socket
    const id = c.url.searchParams.get('id')
    if (id === null || id === '') return false
    const worldId = c.url.searchParams.get('worldId')
    return worldId === null || worldId === info.worldId
  }
  const isV3 = (c: WsConnection): boolean => c.url.pathname.endsWith('/relay')
  // 3.x authenticates with its first message: wait for auth-success. 2.x is
  // in once the upgrade is accepted. A refusal's close code ends the wait.
  const settled = (c: WsConnection): boolean => isModule(c) && (
    (isV3(c) ? c.authSucceeded : c.status === 101 && c.closeCode === undefined) ||
    (c.closeCode !== undefined && REFUSALS.has(c.closeCode)))
  let conn: WsConnection
  try {
    conn = await ws.waitFor(settled, d.opts.timeouts.moduleConnect, d.opts.signal)
  } catch (err) {
    if (!(err instanceof WsWaitTimeout)) throw err
    throw d.fail(ModuleNotConnected, `${await whyNoModule(d, info, isModule)} Waited ${Math.round(d.opts.timeouts.moduleConnect / 1000)} s`)
  }
  if (!isV3(conn) && conn.closeCode === undefined) {
    // An accepted 2.x upgrade: a refusal would close it at once.
    const stableMs = d.opts.timeouts.moduleStable ?? 250
    const accepted = conn
    conn = await ws.waitFor((c) => c.requestId === accepted.requestId && c.closeCode !== undefined, stableMs, d.opts.signal)
      .catch((err: unknown) => { if (err instanceof WsWaitTimeout) return accepted; throw err })
    if (conn.closed && conn.closeCode === undefined) conn.closeCode = 1006
  }
  if (conn.closeCode === 4004) {
    throw d.fail(ModuleConnectionTaken, 'The relay refused the module\'s connection (close 4004): another browser of this world already holds it. Close the other browser\'s session (or end the other headless session), then start again')
  }
  if (conn.closeCode !== undefined && REFUSALS.has(conn.closeCode)) {
    throw d.fail(ModuleTokenRefused, `The relay refused the module's connection token (close ${conn.closeCode}): pair the world with the relay again and send the new token as encryptedConnectionToken`)
  }
  if (conn.closeCode !== undefined) {
    throw d.fail(ModuleNotConnected, `The relay closed the module's connection at once (close ${conn.closeCode}): check the relay URL in the module's settings and that the relay is running`)
  }
  return { clientId: conn.url.searchParams.get('id') ?? '', customName: conn.url.searchParams.get('customName') ?? '' }
}

/** Explain a module that never connected, from what the page shows. */
async function whyNoModule (d: Driver, info: WorldInfo, isModule: (c: WsConnection) => boolean): Promise<string> {
  if (d.ws!.connections().some(isModule)) {
    return 'The module opened a relay connection but the relay did not accept it: check the module\'s relay URL and, for module 3.x, the connection token.'
  }
  if (await otherPrimaryGm(d, info.userId)) {
    return 'Another Gamemaster is logged into this world and holds the module\'s relay connection (module 2.x connects only for the primary GM, the active GM with the lowest user id). Log the other GM out, or log in as that GM.'
  }
  const hasToken = d.params.connectionToken !== undefined && d.params.connectionToken !== ''
  return 'The REST API module never opened a relay connection. Usual causes: the module is not active in this world; its relay URL is not set' +
    (hasToken ? '' : '; module 3.x needs a connection token (send encryptedConnectionToken)') +
    '; or another Gamemaster holds the connection.'
}

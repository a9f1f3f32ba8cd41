// Foundry's /game page (page script ./page/game.js): wait for game.ready (the
// static skeleton is no signal), read who is logged in where, and check it is
// the world asked for and, when the module is required, a Gamemaster.
import { NotGamemaster, WorldMismatch } from '../errors.ts'
import type { Driver } from './driver.ts'
import { matchWorld } from './names.ts'
import type { WorldInfo } from './types.ts'

export async function game (d: Driver): Promise<WorldInfo> {
  d.enter('game-load')
  await d.waitFor('game', 'ready', { timeout: d.opts.timeouts.gameReady, what: 'game.ready', stayOn: '/game' })
  const info = await d.call('game', 'info')
  const { worldName } = d.params
  if (worldName !== undefined && worldName !== '' &&
      matchWorld([{ id: info.worldId, title: info.worldTitle }], worldName) === undefined) {
    throw d.fail(WorldMismatch, `Foundry loaded world "${info.worldTitle}", not "${worldName}"`)
  }
  if (d.params.requireModule !== false && info.role !== 4) {
    const what = info.role === 3 ? 'an Assistant GM' : 'not a Gamemaster'
    throw d.fail(NotGamemaster, `User "${info.userName}" is ${what} (role ${info.role}); the REST API module connects to its relay only for a Gamemaster (role 4). Log in as a Gamemaster, or send "requireModule": false to keep the world logged in without the module`)
  }
  return info
}

/** Module 2.x connects only for the primary GM: does another active GM come before `userId`? */
export async function otherPrimaryGm (d: Driver, userId: string): Promise<boolean> {
  return await d.call('game', 'otherPrimaryGm', userId).catch(() => false)
}

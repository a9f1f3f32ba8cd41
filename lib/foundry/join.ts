// Foundry's /join page (page script ./page/join.js): check the running world,
// wait for the script-rendered form, find the user, and log in with the JSON
// POST /join that Foundry's own page sends; then follow its redirect to /game.
import {
  FoundryError, JoinFormUnknown, LoginLost, LoginRejected, UserAlreadyActive, UserBanned, UserNotFound, WorldMismatch,
  WorldNotRunning
} from '../errors.ts'
import type { Driver } from './driver.ts'
import { foundryMessage, matchUser, matchWorld } from './names.ts'

/**
 * The rendered join form (./page/join.js `probe`): a user list (v11 to
 * v14.365, POST key `userid`), a user name field (v14.366/367+, key
 * `userId`), a form with no control we know, or no world running.
 */
export type JoinForm = { kind: 'select' } | { kind: 'text' } | { kind: 'unknown' } | { kind: 'inactive' }

export interface JoinUser { id: string, name: string, role: number, active: boolean }

/** Where the login goes next: the setup page (no world after all) or /game. */
export type JoinOutcome = 'setup' | 'game'

export async function join (d: Driver): Promise<JoinOutcome> {
  d.enter('join')
  const { username, password, worldName } = d.params
  if (worldName !== undefined && worldName !== '') {
    const running = await d.call('join', 'worldTitle')
    const status = await d.status()
    if (status !== null && status.active === false) {
      // /join without a world ("no active game session"): go through setup.
      await d.goto(d.base.href)
      return 'setup'
    }
    if (matchWorld([{ id: status?.world ?? '', title: running }], worldName) === undefined) {
      throw d.fail(WorldMismatch, `Another world is running on this Foundry server: "${running !== '' ? running : status?.world ?? 'unknown'}", not "${worldName}". Ask for that world, or return Foundry to setup yourself (this service never shuts a running world down)`)
    }
  }
  // Built by script after Foundry's socket answers getJoinData.
  const form = await d.waitFor('join', 'probe', { timeout: d.opts.timeouts.joinForm, what: 'the join form' })
  if (form.kind === 'inactive') {
    throw d.fail(WorldNotRunning, 'Foundry\'s join page says no world is running: name the world in x-world-name to launch it')
  }
  if (form.kind === 'unknown') {
    const version = (await d.status())?.version ?? 'this version'
    throw d.fail(JoinFormUnknown, `Foundry ${version}'s join page has a login form this service does not recognise (neither a user list nor a user name field): please report it with your Foundry version`)
  }
  const user = matchUser(await d.call('join', 'users'), username)
  if (user === undefined) {
    throw d.fail(UserNotFound, `User "${username}" does not exist in this world: use the user name exactly as Foundry's join page shows it`)
  }
  if (user.active && d.params.loginIfActive !== true) {
    throw d.fail(UserAlreadyActive, `User "${user.name}" is already logged in elsewhere (Foundry's join page shows it as active). Log that browser out, or start the session with "loginIfActive": true to log in anyway (Foundry allows it)`)
  }
  const res = await postJoin(d, form.kind, user, password)
  if (res.status === 401) throw rejected(d, user, foundryMessage(res.text))
  let redirect: string | undefined
  try {
    const body = JSON.parse(res.text) as { status?: string, redirect?: string }
    if (res.status === 200 && body.status === 'success') redirect = body.redirect ?? 'game'
  } catch {}
  if (redirect === undefined) {
    throw d.fail(FoundryError, `Foundry answered the login with HTTP ${res.status} ${foundryMessage(res.text)}`)
  }
  d.enter('game-load')
  // Foundry's page would set location.href 500 ms after its toast; go at once.
  await d.goto(gameUrl(d, redirect))
  if (d.route() !== '/game') {
    throw d.fail(LoginLost, `Foundry accepted the login but sent the browser to ${d.pagePath() ?? 'another site'} instead of the game`)
  }
  return 'game'
}

/**
 * POST /join as the page variant's own client does: the user list posts
 * `userid`; the user name page (14.366/367+) posts `username` and `userId`.
 * Sources disagree on the build that switched keys, and a server ignores the
 * key it does not read, answering "user does not exist" (foundry.md §2, §6b).
 * Then once more with both keys, which harnesses driving real 14.x report
 * works on every build: whichever key the server reads is there.
 */
async function postJoin (d: Driver, kind: 'select' | 'text', user: JoinUser, password: string): Promise<{ status: number, text: string }> {
  const named = kind === 'text' ? { username: user.name } : {}
  const first = kind === 'text' ? { userId: user.id } : { userid: user.id }
  const res = await d.postJson('join', { ...named, ...first, password, action: 'join' })
  if (res.status !== 401 || foundryMessage(res.text) !== 'JOIN.ErrorUserDoesNotExist') return res
  return await d.postJson('join', { ...named, userid: user.id, userId: user.id, password, action: 'join' })
}

function rejected (d: Driver, user: JoinUser, reason: string): Error {
  switch (reason) {
    case 'JOIN.ErrorInvalidPassword':
      return d.fail(LoginRejected, `Foundry rejected the password for user "${user.name}" (${reason}): check the password and start again`)
    case 'JOIN.ErrorBanned':
      return d.fail(UserBanned, `User "${user.name}" is banned in this world (${reason}): give the user a role in Foundry first`)
    case 'JOIN.ErrorUserDoesNotExist':
      return d.fail(UserNotFound, `Foundry says user "${user.name}" does not exist (${reason})`)
    default:
      return d.fail(LoginRejected, `Foundry rejected the login of "${user.name}" (${reason})`)
  }
}

/**
 * The game page the join answer points to. Behind a route prefix Foundry may
 * answer with the prefix (`/foundry/game`), without it (`/game`), or
 * relative (`game`): an answer outside the prefix is taken as a route
 * inside it, as the browser could not reach the game elsewhere.
 */
function gameUrl (d: Driver, redirect: string): string {
  let target: URL
  try { target = new URL(redirect, d.page.url()) } catch { return d.url('game') }
  if (d.routeOf(target.href) !== null) return target.href
  if (target.origin === d.base.origin) return d.url(target.pathname + target.search)
  return target.href
}

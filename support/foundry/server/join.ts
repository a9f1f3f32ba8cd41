// The join page: GET /join (the shell that client/join.js renders late from
// getJoinData, or the no-active-world page), POST /join (log in as a user,
// with Foundry's bare i18n error keys, or the admin's return to setup) and
// the second-login rule.
import type { Socket as IOSocket } from 'socket.io'
import type { StandinJoin, StandinWorld } from '../standin.ts'
import { type Reply, esc, ioScript, page } from './html.ts'
import { doShutdown } from './setup.ts'
import { type Ctx, type Session, emitActivity, gated, logout, usersPayload, world } from './state.ts'

function joinShell (ctx: Ctx, w: StandinWorld): string {
  return page(ctx, `${w.title} • Foundry Virtual Tabletop`, 'auth join theme-dark', `<header id="main-header">
  <h1>${esc(w.title)}</h1>
</header>
<main id="join-main">
  <template id="join-game"></template>
</main>
<noscript><p>Foundry Virtual Tabletop requires JavaScript. Enable JavaScript in your browser to join this game session.</p></noscript>
<aside id="tooltip" role="tooltip"></aside>
<nav id="context-menu" hidden></nav>
<footer id="join-footer">
  <p class="version">Foundry Virtual Tabletop &middot; Version ${esc(ctx.version)} &middot; Generation ${ctx.generation}, Build ${ctx.build}</p>
  <p class="links"><a href="https://foundryvtt.com" rel="noopener" target="_blank">foundryvtt.com</a> &middot; <a href="https://foundryvtt.com/kb/" rel="noopener" target="_blank">Knowledge Base</a> &middot; <a href="https://foundryvtt.com/article/eula/" rel="noopener" target="_blank">EULA</a></p>
</footer>`, [ioScript, '/scripts/join.js'])
}

function joinInactivePage (ctx: Ctx): string {
  return page(ctx, 'Foundry Virtual Tabletop', 'auth join theme-dark', `<header id="main-header"><h1>Foundry Virtual Tabletop</h1></header>
<main id="join-main"><section id="join-inactive"><p>There is no active game session. The game master must launch a World before players can join.</p></section></main>`)
}

export function getJoin (ctx: Ctx, sess: Session | null, reply: Reply): void {
  const w = world(ctx)
  if (w === null) { reply.html(200, joinInactivePage(ctx)); return }
  if (gated(ctx)) { reply.redirect('/players'); return }
  // Visiting /join logs the browser's session out of the world.
  if (sess !== null) logout(ctx, sess)
  reply.html(200, joinShell(ctx, w))
}

export function postJoin (ctx: Ctx, sess: Session | null, type: string, body: Record<string, unknown> | null, reply: Reply): void {
  const { opts, route } = ctx
  const { text, json } = reply
  if (type !== 'application/json' || body === null) { text(400, 'Bad Request'); return }
  if (sess === null) { text(403, 'JOIN.ErrorInvalidSession'); return }
  const w = world(ctx)
  if (w === null) { text(400, 'JOIN.ErrorNoActiveWorld'); return }
  if (gated(ctx)) { text(403, 'JOIN.ErrorUserConfigPending'); return }
  // Foundry's own page always sends the action ("join" or "shutdown"):
  // a post without one is not what a real client sends.
  const action = body.action
  if (action === 'shutdown') {
    if (opts.adminPassword === undefined || opts.adminPassword === '' || body.adminPassword !== opts.adminPassword) {
      text(403, 'ERROR.InvalidAdminKey')
      return
    }
    json(200, { status: 'success', message: 'GAME.ShutdownSuccess', redirect: route('/setup') })
    sess.admin = true
    doShutdown(ctx)
    return
  }
  if (action !== 'join') { text(400, 'Bad Request'); return }
  // The posting session is logged out first, whatever the outcome.
  logout(ctx, sess)
  const record = (userId: string, ok: boolean, reason?: string): void => {
    const j: StandinJoin = { userId, ok, sessionCookie: sess.id }
    if (reason !== undefined) j.reason = reason
    ctx.joins.push(j)
  }
  const rawId = body[ctx.userKey]
  const userId = typeof rawId === 'string' ? rawId : ''
  // For the record only: what the client meant, under either key.
  const attempted = userId !== '' ? userId : String(body.userid ?? body.userId ?? '')
  const user = w.users.find((u) => u.id === userId)
  const fail = (key: string): void => { record(attempted, false, key); text(401, key) }
  if (user === undefined) { fail('JOIN.ErrorUserDoesNotExist'); return }
  if (user.role === 0) { fail('JOIN.ErrorBanned'); return }
  const password = body.password === undefined ? '' : body.password
  if (typeof password !== 'string' || password !== user.password) { fail('JOIN.ErrorInvalidPassword'); return }
  if (opts.secondLoginReplaces === true) {
    for (const other of ctx.sessions.values()) {
      if (other === sess || other.userId !== user.id) continue
      other.userId = null
      other.justJoined = false
      for (const socket of ctx.io?.of('/').sockets.values() ?? []) {
        if (socket.handshake.query.session === other.id) socket.emit('session', { sessionId: other.id, userId: null })
      }
    }
  }
  sess.userId = user.id
  sess.justJoined = true
  record(user.id, true)
  emitActivity(ctx)
  const redirectTo = opts.joinRedirect === 'unprefixed' ? '/game' : opts.joinRedirect === 'relative' ? 'game' : route('/game')
  json(200, { status: 'success', message: 'JOIN.LoginSuccess', redirect: redirectTo })
}

/** The join page's data request ({} while no world runs). */
export function onJoinSocket (ctx: Ctx, socket: IOSocket): void {
  socket.on('getJoinData', (ack: unknown) => {
    if (typeof ack !== 'function') return
    const w = world(ctx)
    if (w === null) { ack({}); return }
    ack({ world: { id: w.id, title: w.title, system: w.system.id }, version: ctx.version, release: ctx.release, users: usersPayload(ctx), options: { routePrefix: ctx.prefix === '' ? null : ctx.prefix.slice(1) } })
  })
}

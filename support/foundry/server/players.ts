// v14's /players user-management gate (playersGate): a world's first launch
// shows "Save and Continue" to an administrator before /join works.
import type { StandinWorld } from '../standin.ts'
import { type Reply, esc, ioScript, page } from './html.ts'
import { type Ctx, type Session, gated, needsAdminAuth, world } from './state.ts'

function playersPage (ctx: Ctx, w: StandinWorld): string {
  const rows = w.users.map((u) => `<li class="user" data-user-id="${esc(u.id)}"><span class="name">${esc(u.name)}</span> <span class="role">${u.role}</span></li>`).join('')
  return page(ctx, `${w.title} • Foundry Virtual Tabletop`, 'auth players theme-dark', `<header id="main-header"><h1>${esc(w.title)}</h1></header>
<form id="players-config"><h2>Configure Players</h2><ul class="users">${rows}</ul>
  <button type="submit" name="save" data-action="save"><i class="fas fa-save"></i> Save and Continue</button></form>`, [ioScript, '/scripts/players.js'])
}

export function getPlayers (ctx: Ctx, sess: Session | null, reply: Reply): void {
  const w = world(ctx)
  if (w !== null && gated(ctx)) {
    if (needsAdminAuth(ctx, sess)) { reply.redirect('/auth'); return }
    reply.html(200, playersPage(ctx, w))
  } else reply.redirect(w !== null ? '/join' : '/')
}

export function postPlayers (ctx: Ctx, sess: Session | null, type: string, body: Record<string, unknown> | null, reply: Reply): void {
  const { json } = reply
  if (type !== 'application/json' || body === null) { reply.text(400, 'Bad Request'); return }
  if (sess === null) { json(403, { error: 'ERROR.InvalidSession' }); return }
  if (!gated(ctx)) { json(400, { error: 'No user configuration pending' }); return }
  if (needsAdminAuth(ctx, sess)) { json(403, { error: 'ERROR.InvalidAdminKey' }); return }
  if (body.action !== 'save') { json(400, { error: 'Unknown action' }); return }
  ctx.playersDone.add(ctx.activeWorld!)
  json(200, { status: 'success', redirect: ctx.route('/join') })
}

// Administrator access and the licence: GET/POST /auth (the admin password
// form, v14's administrator user name, the flashed ERROR.InvalidAdminKey) and
// /license (the EULA page every route goes to while it is unsigned).
import { type Reply, esc, page } from './html.ts'
import { type Ctx, type Session, gated, needsAdminAuth, world } from './state.ts'

export function eulaSigned (ctx: Ctx): boolean {
  return ctx.opts.eulaSigned !== false
}

function licensePage (ctx: Ctx): string {
  return page(ctx, 'License • Foundry Virtual Tabletop', 'auth license theme-dark', `<section id="license">
  <h2>Software License Agreement</h2>
  <form id="license-key-form"><input type="text" name="licenseKey" placeholder="Enter your license key"><button type="submit" name="submit" disabled>Submit</button></form>
  <form id="eula"><label><input type="checkbox" id="eula-agree" name="agree"> I agree to the End User License Agreement</label><button type="submit" id="sign" name="sign" disabled>Agree</button></form>
</section>`)
}

function authPage (ctx: Ctx, flash: string | null): string {
  const id = ctx.generation >= 14 ? 'auth-password' : 'admin-password'
  const user = ctx.generation >= 14 && ctx.opts.adminUsername !== undefined
    ? '\n  <input type="text" name="adminUsername" id="auth-username" placeholder="Administrator User" autocomplete="username">'
    : ''
  return page(ctx, 'Administrator Access • Foundry Virtual Tabletop', 'auth setup-auth theme-dark', `<form id="setup-authentication" method="post" action="${ctx.route('/auth')}">
  <h2>Administrator Access</h2>${user}
  <input type="password" name="adminPassword" id="${id}" placeholder="Administrator Password" autocomplete="current-password">
  <input type="hidden" name="action" value="adminAuth">
  <button type="submit"><i class="fas fa-key"></i> Log In</button>
</form>
${flash !== null ? `<div id="auth-error" class="notification error">${esc(flash)}</div>` : ''}`)
}

export function getLicense (ctx: Ctx, reply: Reply): void {
  if (eulaSigned(ctx)) reply.redirect('/')
  else reply.html(200, licensePage(ctx))
}

export function getAuth (ctx: Ctx, sess: Session | null, reply: Reply): void {
  const w = world(ctx)
  if (w !== null && !(gated(ctx) && needsAdminAuth(ctx, sess))) { reply.redirect('/join'); return }
  if (!needsAdminAuth(ctx, sess)) { reply.redirect(w !== null ? '/players' : '/setup'); return }
  const flash = sess?.flash ?? null
  if (sess !== null) sess.flash = null
  reply.html(200, authPage(ctx, flash))
}

export function postAuth (ctx: Ctx, sess: Session | null, type: string, body: Record<string, unknown> | null, reply: Reply): void {
  if (type !== 'application/x-www-form-urlencoded' || body === null) { reply.text(400, 'Bad Request'); return }
  if (sess === null) { reply.text(403, 'Forbidden'); return }
  if (!needsAdminAuth(ctx, sess)) { reply.redirect('/setup'); return }
  if (body.action !== 'adminAuth') { reply.text(400, 'Bad Request'); return }
  const { opts } = ctx
  const userOk = ctx.generation < 14 || opts.adminUsername === undefined || opts.adminUsernameRequired === false ||
    body.adminUsername === opts.adminUsername
  if (body.adminPassword === opts.adminPassword && userOk) { sess.admin = true; reply.redirect(world(ctx) !== null ? '/players' : '/setup'); return }
  sess.flash = 'ERROR.InvalidAdminKey'
  reply.redirect('/auth')
}

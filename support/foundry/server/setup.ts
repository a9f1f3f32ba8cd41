// The setup screen and what an administrator does from it: GET /setup (the
// world list, rendered by client/setup.js from getSetupData), POST /setup
// (adminAuth on 13+, telemetry, launchWorld, a GM's shutdown), the launch
// with its progress events (migration, launch failure), shutting a world down
// and POST /quit.
import type { Socket as IOSocket } from 'socket.io'
import { type Reply, ioScript, page } from './html.ts'
import { type Ctx, type Session, emitActivity, hasAdminPassword, needsAdminAuth, world } from './state.ts'

function setupPage (ctx: Ctx): string {
  return page(ctx, 'Foundry Virtual Tabletop', `setup theme-dark${ctx.generation <= 13 ? ' hover-controls' : ''}`, `<header id="setup-menu"><h1>Foundry Virtual Tabletop</h1></header>
<section id="setup-packages"></section>`, [ioScript, '/scripts/setup.js'])
}

export function getSetup (ctx: Ctx, sess: Session | null, reply: Reply): void {
  if (world(ctx) !== null) { reply.redirect('/join'); return }
  if (needsAdminAuth(ctx, sess)) { reply.redirect('/auth'); return }
  reply.html(200, setupPage(ctx))
}

export async function postSetup (ctx: Ctx, sess: Session | null, type: string, body: Record<string, unknown> | null, reply: Reply): Promise<void> {
  const { json } = reply
  if (type !== 'application/json' || body === null) { reply.text(400, 'Bad Request'); return }
  if (sess === null) { json(403, { error: 'ERROR.InvalidSession' }); return }
  const hasAdminPw = hasAdminPassword(ctx)
  if (body.action === 'adminAuth' && ctx.generation >= 13) {
    if (!hasAdminPw || body.adminPassword === ctx.opts.adminPassword) { sess.admin = true; json(200, { status: 'success' }); return }
    json(403, { error: 'ERROR.InvalidAdminKey' })
    return
  }
  // A GM leaving the running world.
  if (body.shutdown === true) {
    const w = world(ctx)
    const user = w?.users.find((u) => u.id === sess.userId)
    if (w === null || ((user === undefined || user.role < 3) && !sess.admin)) { json(403, { error: 'ERROR.InvalidAdminKey' }); return }
    doShutdown(ctx)
    reply.redirect('/setup')
    return
  }
  if (hasAdminPw && !sess.admin) { json(403, { error: 'ERROR.InvalidAdminKey' }); return }
  switch (body.action) {
    case 'telemetry':
      ctx.telemetryAnswered = true
      json(200, {})
      return
    case 'launchWorld': {
      const id = typeof body.world === 'string' ? body.world : ''
      const w = ctx.worlds.get(id)
      if (ctx.activeWorld !== null) { json(409, { error: 'SETUP.WorldAlreadyActive' }); return }
      if (ctx.launching !== null) { json(409, { error: 'SETUP.WorldLaunchInProgress' }); return }
      if (w === undefined) { json(404, { error: 'PACKAGE.WorldNotFound' }); return }
      if (w.locked === true) { json(403, { error: 'PACKAGE.LaunchLocked' }); return }
      json(200, {})
      void launch(ctx, id)
      return
    }
    default:
      json(400, { error: 'Unknown setup action' })
  }
}

export function postQuit (ctx: Ctx, sess: Session | null, reply: Reply): void {
  if (sess === null || needsAdminAuth(ctx, sess)) { reply.text(403, 'Forbidden'); return }
  // Real Foundry stops the process. The stand-in stops answering.
  ctx.quit = true
  reply.text(200, '')
  setTimeout(() => { void ctx.stopTransport() }, 10)
}

/** Launch a world (one launch at a time); resolves when it is active or has failed. */
export function launch (ctx: Ctx, id: string): Promise<void> {
  if (ctx.launchPromise !== null) return ctx.launchPromise
  ctx.launching = id
  const steps = ['connectWorld', 'migrateWorld', 'connectPackage', 'migratePackage', 'complete'] as const
  ctx.launchPromise = (async () => {
    const w = ctx.worlds.get(id)
    for (let i = 0; i < steps.length; i++) {
      const step = steps[i]
      if (step === 'migrateWorld' && w?.launchFailure !== undefined) {
        // The launch fails after it started (the POST already answered {}).
        ctx.launching = null
        ctx.io?.emit('progress', { action: 'launchWorld', id, step: 'error', pct: 0, message: 'SETUP.WorldLaunchFailure', error: w.launchFailure })
        return
      }
      // Real Foundry migrates an old world on any launch: only the setup
      // page's dialog asks first (a direct POST never does).
      if (step === 'migrateWorld' && w?.needsMigration === true) { w.needsMigration = false; ctx.migratedWorlds.push(id) }
      if (step === 'complete') {
        ctx.activeWorld = id
        ctx.launching = null
        ctx.lastActive = new Set()
        emitActivity(ctx)
      }
      ctx.io?.emit('progress', { action: 'launchWorld', id, step, pct: Math.round((i + 1) / steps.length * 100) })
      if (step !== 'complete') await new Promise((resolve) => setTimeout(resolve, ctx.launchDelayMs / (steps.length - 1)))
    }
  })().finally(() => { ctx.launchPromise = null })
  return ctx.launchPromise
}

/** Emit 'shutdown' to clients, world inactive, sessions logged out. */
export function doShutdown (ctx: Ctx): void {
  ctx.io?.emit('shutdown')
  ctx.activeWorld = null
  for (const s of ctx.sessions.values()) { s.userId = null; s.justJoined = false }
  ctx.lastActive = new Set()
}

/** The setup page's data request (null while a world runs or without admin auth). */
export function onSetupSocket (ctx: Ctx, socket: IOSocket, sess: Session | null): void {
  socket.on('getSetupData', (ack: unknown) => {
    if (typeof ack !== 'function') return
    if (world(ctx) !== null || (hasAdminPassword(ctx) && !(sess?.admin ?? false))) { ack(null); return }
    const { opts, generation } = ctx
    ack({
      version: ctx.version,
      release: ctx.release,
      telemetryPrompt: opts.telemetryPrompt === true && generation >= 12 && !ctx.telemetryAnswered,
      tourPrompt: opts.tourPrompt === true && generation >= 12,
      worlds: [...ctx.worlds.values()].map((w) => ({ id: w.id, title: w.title, system: w.system, locked: w.locked === true, needsMigration: w.needsMigration === true }))
    })
  })
}

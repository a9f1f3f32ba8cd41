// The game: GET /game (the page client/game.js boots), the world data a
// logged-in session gets over socket.io, and the socket.io connection itself
// (the 'session' event, socket counts that make a user active, canvas
// reports), which also wires the join and setup pages' data requests.
import type { Socket as IOSocket } from 'socket.io'
import type { StandinWorld } from '../standin.ts'
import { heavyConfig } from './heavy.ts'
import { type Reply, SKELETON, ioScript, page, pageScript } from './html.ts'
import { onJoinSocket } from './join.ts'
import { moduleEntry, moduleSettings } from './module.ts'
import { onSetupSocket } from './setup.ts'
import { type Ctx, type Session, emitActivity, gated, usersPayload, world } from './state.ts'

function gamePage (ctx: Ctx, w: StandinWorld): string {
  return page(ctx, `${w.title} • Foundry Virtual Tabletop`, `vtt game system-${w.system.id}`,
    ctx.generation >= 13 ? SKELETON : '', [ioScript, '/scripts/game.js', ...(ctx.opts.egressProbe !== undefined ? ['/scripts/egress-probe.js'] : [])])
}

export function gameScript (ctx: Ctx): string {
  return pageScript(ctx, 'game', heavyConfig(ctx))
}

export function getGame (ctx: Ctx, sess: Session | null, reply: Reply): void {
  const w = world(ctx)
  if (w !== null && gated(ctx)) { reply.redirect('/players'); return }
  if (w === null || sess === null || sess.userId === null) { reply.redirect('/join'); return }
  reply.html(200, gamePage(ctx, w))
}

function worldData (ctx: Ctx, s: Session, w: StandinWorld): unknown {
  const settings = moduleSettings(ctx, w)
  return {
    sessionId: s.id,
    userId: s.userId,
    world: { id: w.id, title: w.title },
    system: { ...w.system },
    version: ctx.version,
    release: ctx.release,
    users: usersPayload(ctx),
    modules: [moduleEntry(ctx, w)],
    settings
  }
}

export function onConnection (ctx: Ctx, socket: IOSocket): void {
  const q = socket.handshake.query.session
  const sid = typeof q === 'string' ? q : ''
  const sess = ctx.sessions.get(sid) ?? null
  if (sess !== null) {
    sess.sockets++
    if (sess.userId !== null) sess.justJoined = false
    emitActivity(ctx)
  }
  socket.emit('session', { sessionId: sess?.id ?? null, userId: sess?.userId ?? null })
  socket.on('disconnect', () => {
    if (sess !== null && ctx.sessions.get(sess.id) === sess) {
      sess.sockets--
      emitActivity(ctx)
    }
  })
  socket.on('canvasState', (st: unknown) => {
    const ready = (st as { ready?: unknown } | null)?.ready === true
    const renderer = (st as { renderer?: unknown } | null)?.renderer
    ctx.canvasReports.push({ userId: sess?.userId ?? null, ready, renderer: typeof renderer === 'string' ? renderer : null })
  })
  onJoinSocket(ctx, socket)
  socket.on('world', (ack: unknown) => {
    if (typeof ack !== 'function') return
    const w = world(ctx)
    if (w === null || sess === null || sess.userId === null || ctx.sessions.get(sess.id) !== sess) { ack(null); return }
    ack(worldData(ctx, sess, w))
    ctx.worldData.push(sess.userId)
  })
  onSetupSocket(ctx, socket, sess)
}

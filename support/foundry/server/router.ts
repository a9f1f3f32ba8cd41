// The HTTP router: records each request, strips the route prefix, serves the
// static scripts and assets, finds or sets the `session` cookie, sends
// everything to /license while the EULA is unsigned, then hands each route to
// the page module that owns it (auth, setup, join, players, game).
import type http from 'node:http'
import type { StandinRequest } from '../standin.ts'
import { eulaSigned, getAuth, getLicense, postAuth } from './auth.ts'
import { gameScript, getGame } from './game.ts'
import { heavyAudio, heavyImage, heavyScript } from './heavy.ts'
import { type Reply, CSS, clientFiles, pageScript } from './html.ts'
import { egressProbePage, egressProbeScript, egressServiceWorker } from './egress-probe.ts'
import { getJoin, postJoin } from './join.ts'
import { modulePath, moduleScript } from './module.ts'
import { getPlayers, postPlayers } from './players.ts'
import { getSetup, postQuit, postSetup } from './setup.ts'
import { type Ctx, computeActive, gated, needsAdminAuth, newSession, world } from './state.ts'

function parseCookies (header: string | undefined): Record<string, string> {
  const out: Record<string, string> = {}
  for (const part of (header ?? '').split(';')) {
    const i = part.indexOf('=')
    if (i < 0) continue
    const k = part.slice(0, i).trim()
    if (k !== '' && !(k in out)) out[k] = decodeURIComponent(part.slice(i + 1).trim())
  }
  return out
}

async function readBody (req: http.IncomingMessage): Promise<string> {
  const chunks: Buffer[] = []
  let n = 0
  for await (const c of req) {
    n += (c as Buffer).length
    if (n > 1024 * 1024) throw new Error('body too large')
    chunks.push(c as Buffer)
  }
  return Buffer.concat(chunks).toString('utf8')
}

const pageRoutes = new Set(['/', '/license', '/auth', '/setup', '/join', '/game', '/players'])

export async function handle (ctx: Ctx, req: http.IncomingMessage, res: http.ServerResponse): Promise<void> {
  const { prefix, route } = ctx
  const url = new URL(req.url ?? '/', 'http://standin')
  const method = req.method ?? 'GET'
  const contentType = req.headers['content-type']
  const entry: StandinRequest = { method, path: url.pathname + url.search, status: 0 }
  if (contentType !== undefined) entry.contentType = contentType
  ctx.requests.push(entry)
  res.on('finish', () => { entry.status = res.statusCode })

  const text = (status: number, body: string, type = 'text/plain; charset=utf-8'): void => {
    res.writeHead(status, { 'Content-Type': type, 'Content-Length': Buffer.byteLength(body) }).end(body)
  }
  const reply: Reply = {
    text,
    json: (status, body) => text(status, JSON.stringify(body), 'application/json; charset=utf-8'),
    html: (status, body) => text(status, body, 'text/html; charset=utf-8'),
    redirect: (p) => { res.writeHead(302, { Location: route(p), 'Content-Length': 0 }).end() }
  }
  const { json, redirect } = reply

  // Route prefix.
  let path = url.pathname
  if (prefix !== '') {
    if (path === prefix) { res.writeHead(302, { Location: prefix + '/' }).end(); return }
    if (!path.startsWith(prefix + '/')) { text(404, 'Not Found'); return }
    path = path.slice(prefix.length)
  }

  // Static assets: no cookie, no state.
  if (method === 'GET' || method === 'HEAD') {
    const js = (body: string): void => text(200, body, 'application/javascript; charset=utf-8')
    switch (path) {
      case '/scripts/socket.io.min.js': js(clientFiles().ioClient); return
      case '/scripts/join.js': js(pageScript(ctx, 'join')); return
      case '/scripts/setup.js': js(pageScript(ctx, 'setup')); return
      case '/scripts/game.js': js(gameScript(ctx)); return
      case '/scripts/players.js': js(pageScript(ctx, 'players')); return
      case modulePath: js(moduleScript(ctx)); return
      case '/css/style.css': text(200, CSS, 'text/css; charset=utf-8'); return
    }
    // The egress probe (test-only, not Foundry's): a hostile page's ways out.
    if (path === '/scripts/egress-probe.js') { js(egressProbeScript(ctx, url.searchParams)); return }
    if (path === '/egress-sw.js') { js(egressServiceWorker(url.searchParams)); return }
    if (path === '/egress-probe') { reply.html(200, egressProbePage(ctx, url.searchParams)); return }
    if (ctx.heavy !== null) {
      if (path === '/scripts/heavy.js') { js(heavyScript(ctx)); return }
      const m = /^\/assets\/heavy-(\d+)\.bmp$/.exec(path)
      if (m !== null) { res.writeHead(200, { 'Content-Type': 'image/bmp' }).end(heavyImage(Number(m[1]))); return }
      if (path === '/assets/heavy.wav') { res.writeHead(200, { 'Content-Type': 'audio/wav' }).end(heavyAudio()); return }
    }
  }

  // Sessions: a cookie is set on the first page response lacking a known one.
  const cookieId = parseCookies(req.headers.cookie).session
  let sess = cookieId !== undefined ? ctx.sessions.get(cookieId) ?? null : null
  if (sess === null && method === 'GET' && pageRoutes.has(path)) {
    sess = newSession(ctx)
    res.setHeader('Set-Cookie', `session=${sess.id}; Path=${prefix === '' ? '/' : prefix + '/'}; SameSite=Strict`)
  }

  if (!eulaSigned(ctx) && path !== '/license' && !path.startsWith('/scripts/') && path !== '/css/style.css') {
    redirect('/license')
    return
  }
  const w = world(ctx)

  if (method === 'GET' || method === 'HEAD') {
    switch (path) {
      case '/':
        if (w !== null && gated(ctx)) redirect('/players')
        else if (w !== null) redirect(sess?.userId != null ? '/game' : '/join')
        else redirect(needsAdminAuth(ctx, sess) ? '/auth' : '/setup')
        return
      case '/license': getLicense(ctx, reply); return
      case '/auth': getAuth(ctx, sess, reply); return
      case '/setup': getSetup(ctx, sess, reply); return
      case '/join': getJoin(ctx, sess, reply); return
      case '/game': getGame(ctx, sess, reply); return
      case '/players': getPlayers(ctx, sess, reply); return
      case '/api/status':
        if (w === null) json(200, { active: false, version: ctx.version })
        else json(200, { active: true, version: ctx.version, world: w.id, system: w.system.id, systemVersion: w.system.version, users: computeActive(ctx).size, uptime: Date.now() - ctx.startedAt })
        return
      default:
        text(404, 'Not Found')
        return
    }
  }

  if (method !== 'POST') { text(405, 'Method Not Allowed'); return }

  let raw: string
  try { raw = await readBody(req) } catch { text(413, 'Payload Too Large'); return }
  const type = (contentType ?? '').split(';')[0]?.trim().toLowerCase() ?? ''
  let body: Record<string, unknown> | null = null
  if (type === 'application/json') {
    try {
      const parsed: unknown = JSON.parse(raw)
      body = parsed !== null && typeof parsed === 'object' && !Array.isArray(parsed) ? parsed as Record<string, unknown> : null
    } catch { body = null }
    entry.body = body ?? raw
  } else if (type === 'application/x-www-form-urlencoded') {
    body = Object.fromEntries(new URLSearchParams(raw))
    entry.body = body
  } else {
    entry.body = raw
  }

  switch (path) {
    case '/join': postJoin(ctx, sess, type, body, reply); return
    case '/auth': postAuth(ctx, sess, type, body, reply); return
    case '/setup': await postSetup(ctx, sess, type, body, reply); return
    case '/players': postPlayers(ctx, sess, type, body, reply); return
    case '/quit': postQuit(ctx, sess, reply); return
    case '/egress-probe/done': text(200, 'ok'); return
    default:
      text(404, 'Not Found')
  }
}

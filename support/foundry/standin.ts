// A test-only stand-in for a Foundry VTT server (v11–v14) as a browser sees
// it: routes per server state, the `session` cookie, the late-rendered join
// form, POST /join with its bare i18n error keys, admin auth, the setup world
// list and launch, the /game boot over socket.io and a fake REST API module
// that connects to a relay, as the team's reference notes on Foundry v11–v14
// describe it; this file is meant to be as strict as the real server.
//
// This file keeps the public API (startFoundryStandin, the option and record
// types) and the transport (HTTP server, socket.io, restart); the server is
// split by Foundry page like the driver (lib/foundry/) and the browser side
// (client/*.js), under server/: state.ts (config, sessions, active users),
// router.ts (HTTP routing, static assets, cookies), html.ts (page shell,
// client scripts), auth.ts (/auth, /license), setup.ts (/setup, launch,
// shutdown, /quit), join.ts (/join), players.ts (/players), game.ts (/game,
// world data, socket.io connection), module.ts (REST API module), heavy.ts
// (heavyGame assets).
//
// Choices where foundry.md is silent or unsure (documented, test-visible):
// - GET / with a running world sends a session that is logged in to /game,
//   others to /join (foundry.md marks this (?)).
// - Join variants: 11 → form#join-game; 12 … 14.365 → #join-game-form +
//   #join-game-setup; 14.367+ (and 15+) → #join-username text field, key userId.
// - The setup play link is hover-hidden on 11–13 (foundry.md only says 13),
//   visible on 14. The setup list is rendered by script ~150 ms after load.
// - Setup API errors are JSON {"error":"<key>"}: unknown world 404
//   PACKAGE.WorldNotFound, locked 403 PACKAGE.LaunchLocked, a world already
//   running / launching 409, not admin 403 ERROR.InvalidAdminKey. A world that
//   needs migrating is migrated by any launch, as real Foundry does: only the
//   setup page's play control asks first (its dialog); a direct POST launch
//   migrates at once (state().migratedWorlds records it).
// - A failing launch (world launchFailure): POST answers {} as usual, then the
//   progress event carries step "error", message SETUP.WorldLaunchFailure and
//   the reason; the setup page shows "SETUP.WorldLaunchFailure: <reason>".
// - Join variants beyond the version: joinKey (the POST key the server reads)
//   and joinRedirect (prefixed, unprefixed or relative /game); v14 /auth with
//   an administrator user (adminUsername → #auth-username).
// - POST /auth failure: 302 back to /auth, which then shows ERROR.InvalidAdminKey
//   in #auth-error. POST /auth takes urlencoded only (400 otherwise), and 403
//   without a known session. JSON adminAuth on POST /setup is taken on 13+.
// - POST /join: not JSON → 400 "Bad Request"; no known session → 403
//   JOIN.ErrorInvalidSession; no world → 400 JOIN.ErrorNoActiveWorld; v14
//   /players gate pending → 403 JOIN.ErrorUserConfigPending (invented keys).
//   A missing password counts as ''. Successful return-to-setup (admin
//   password matches) → 200 {status,message,redirect:'/setup'}.
// - A user is active while a socket of a session bound to it is connected, or
//   between its login and the first /game socket (the join page navigating).
// - v2 module: reconnects on every close but 1000 (as its source), ping every
//   30 s by default (modulePingIntervalMs); primary GM = lowest id among
//   active role-4 users (the 2.x source uses isGM; foundry.md says role 4).
// - v3 module: a token that is not JSON-encoded in localStorage is no token.
// - EULA unsigned: every route, /api/status included, → /license.
// - POST /quit from an admin (or with no admin password) stops the stand-in
//   listening, as the real server exits; state().quit records it.
import http from 'node:http'
import type { AddressInfo, Socket as NetSocket } from 'node:net'
import { Server as IOServer } from 'socket.io'
import { onConnection } from './server/game.ts'
import { handle } from './server/router.ts'
import { launch, doShutdown } from './server/setup.ts'
import { computeActive, createCtx, emitActivity } from './server/state.ts'

export { defaultClientId } from './server/module.ts'

export interface StandinUser { id: string, name: string, role: 0 | 1 | 2 | 3 | 4, password: string }

export interface StandinWorld {
  id: string
  title: string
  system: { id: string, title: string, version: string }
  users: StandinUser[]
  /** REST API module enabled in this world (default true). */
  moduleActive?: boolean
  /** v3 module: world setting clientId (default `fvtt_` + 16 hex derived from the world id). */
  moduleClientId?: string
  /** Older than core/system: the setup page asks before launching; any launch migrates it (state().migratedWorlds). */
  needsMigration?: boolean
  /** Locked: launch refused with PACKAGE.LaunchLocked. */
  locked?: boolean
  /** The launch starts, then fails with SETUP.WorldLaunchFailure and this reason (e.g. a missing system). */
  launchFailure?: string
}

export interface HeavyGameOptions {
  /** Bytes of JavaScript parsed and run on /game (default 8 MB). */
  scriptBytes?: number
  /** Number of images (each ~1 MB of BMP pixels) decoded on /game (default 8). */
  images?: number
  /** Milliseconds of WebGL work when the canvas is on (default 500). */
  canvasMs?: number
}

export interface StandinOptions {
  /** '11.315' | '12.331' | '13.351' (default) | '14.365' | '14.367' … */
  version?: string
  worlds: StandinWorld[]
  /** World running at start (default null → setup). */
  activeWorld?: string | null
  /** If set, /setup requires admin auth via /auth. */
  adminPassword?: string
  /** e.g. 'foundry' → every route and the socket.io path live under /foundry/. */
  routePrefix?: string
  /** Module world setting wsRelayUrl; unset → the module never connects. */
  relayUrl?: string
  /** REST API module generation (default 2). */
  moduleVersion?: 2 | 3
  /** v2 world setting apiKey (default: the world id). */
  moduleApiKey?: string
  /** Module ping interval in ms (default 30000, as the module). */
  modulePingIntervalMs?: number
  /** Module reconnects before it gives up (default 20, as the module: about 8 minutes of backoff). */
  moduleReconnectMaxAttempts?: number
  /** Module reconnect backoff base in ms (default 1000, as the module). */
  moduleReconnectBaseMs?: number
  /**
   * A second login of a user replaces the first (one field report says
   * Foundry does this): the earlier session is logged out and its pages are
   * told so over their socket, which sends them to /join.
   */
  secondLoginReplaces?: boolean
  /** Users already logged in elsewhere: disabled on the join page, count for the primary-GM rule. */
  activeUserIds?: string[]
  /** Delay before the join form renders after getJoinData (default 300). */
  joinRenderDelayMs?: number
  /** Delay before the setup world list renders after its data arrives (default 150). */
  setupRenderDelayMs?: number
  /** /game: time from the socket 'session' event to game.ready (default 500). */
  gameReadyDelayMs?: number
  /** Extra fake canvas time before ready when core.noCanvas is not set (default 200). */
  canvasDelayMs?: number
  /** /setup launchWorld → world active (default 800). */
  launchDelayMs?: number
  /** v12+ telemetry dialog on /setup until answered. */
  telemetryPrompt?: boolean
  /** v12+ first-load tour overlay on /setup (closed by [data-action=exit], button.tour-exit or Escape; remembered in localStorage core.tourProgress). */
  tourPrompt?: boolean
  /** v14+: a world's first launch shows the /players user-management gate ("Save and Continue") before /join works. */
  playersGate?: boolean
  /** Default true; false → every route → /license. */
  eulaSigned?: boolean
  /**
   * A hostile /game page: once loaded it also runs the egress probe
   * (client/egress-probe.js), which tries every way a page has to reach
   * `canary` (an http:// origin) and `udpPort` (STUN over UDP on the
   * canary's host), then POSTs what it saw to /egress-probe/done.
   * GET /egress-probe?canary=…&udp=… is the same probe on a page of its own.
   */
  egressProbe?: { canary: string, udpPort: number }
  /** Big scripts/images/audio and WebGL work on /game, for benchmarks. */
  heavyGame?: boolean | HeavyGameOptions
  /**
   * The key POST /join reads the user id from, whatever the join page shows
   * (default: `userId` from 14.367, else `userid`). Sources disagree on the
   * build that switched (foundry.md §2): 14.367 + 'userid' is a user name
   * page on a server that still reads the old key; 14.365 + 'userId' the reverse.
   */
  joinKey?: 'userid' | 'userId'
  /** The join answer's redirect: 'prefixed' (default: route prefix included), 'unprefixed' ('/game'), 'relative' ('game'). */
  joinRedirect?: 'prefixed' | 'unprefixed' | 'relative'
  /** v14: an administrator user is configured: /auth shows #auth-username (name adminUsername). */
  adminUsername?: string
  /** With adminUsername: POST /auth must carry it (default true); false: an empty user name is accepted. */
  adminUsernameRequired?: boolean
  /** 'unknown': a join page whose form has neither a user list nor a user name field (as a future Foundry might). */
  joinForm?: 'unknown'
}

export interface StandinRequest { method: string, path: string, contentType?: string, body?: unknown, status: number }
/** What a /game page's canvas came to (canvas on only): WebGL context or not. */
export interface StandinCanvas { userId: string | null, ready: boolean, renderer: string | null }
export interface StandinJoin { userId: string, ok: boolean, reason?: string, sessionCookie: string }

export interface Standin {
  /** http://127.0.0.1:<port>/ (+ prefix + '/') */
  url: string
  close: () => Promise<void>
  state: () => { activeWorld: string | null, activeUsers: string[], launching: string | null, migratedWorlds: string[], quit: boolean }
  /** Every HTTP request (socket.io traffic excluded). Passwords appear here: test-only. */
  requests: StandinRequest[]
  joins: StandinJoin[]
  /** Each /game boot with the canvas on: did it get a WebGL context (foundry.md §5)? */
  canvas: StandinCanvas[]
  /** Each /game boot that was sent its world's data: the user's id (the page gets ready from it even if the server then stops). */
  worldData: string[]
  /** As if an admin launched it; resolves when the world is active. */
  launchWorld: (id: string) => Promise<void>
  /** Emit 'shutdown' to clients, world inactive, sessions logged out. */
  shutdownWorld: () => Promise<void>
  /** Server restart: drop sockets and sessions, stop listening for downMs (default 200), listen again on the same port; world as configured at start. */
  restart: (opts?: { downMs?: number }) => Promise<void>
  /** Cut every socket.io transport (clients retry and reconnect). */
  cutLiveConnections: () => void
  /** Browser sessions logged in as this user with a live socket now (two for one GM: the session runs twice). */
  liveLogins: (userId: string) => number
  setUserActive: (id: string, active: boolean) => void
  /** A user's password changed in Foundry (every world of the stand-in; kept across restart). */
  setUserPassword: (id: string, password: string) => void
  /** Server → every client 'reload'. */
  reloadClients: () => void
  /** Cut every socket.io transport and refuse socket.io handshakes for ms while HTTP stays up (resolves when lifted). */
  blockSockets: (ms: number) => Promise<void>
  /**
   * An outage of any length, until up(): 'refuse' — Foundry stopped, the port
   * refuses connections (a host reboot, a Foundry update); '502' — a reverse
   * proxy answers 502 Bad Gateway with Foundry gone behind it; 'hang' —
   * connections are accepted and never answered (a host that sleeps). Sockets
   * and browser sessions are dropped as by a restart.
   */
  down: (mode?: 'refuse' | '502' | 'hang') => Promise<void>
  /** Foundry back after down(), on the same port; the world as configured at start (or as set by opts). */
  up: (opts?: { activeWorld?: string | null }) => Promise<void>
  /** Change a user's password (a Gamemaster changed it in Foundry). */
  setPassword: (userId: string, password: string) => void
  /** Delete a user from every world. */
  removeUser: (userId: string) => void
  /** The licence signed or not (false: every route → /license, as after a licence reset). */
  setEulaSigned: (signed: boolean) => void
}

export async function startFoundryStandin (opts: StandinOptions): Promise<Standin> {
  const ctx = createCtx(opts)
  const server = { http: null as http.Server | null, io: null as IOServer | null }
  const conns = new Set<NetSocket>()
  let port = 0
  let refusingSockets = false

  async function boot (): Promise<void> {
    const srv = http.createServer((req, res) => {
      handle(ctx, req, res).catch((err: unknown) => {
        if (!res.headersSent) res.writeHead(500, { 'Content-Type': 'text/plain' }).end(String(err))
        else res.destroy()
      })
    })
    srv.on('connection', (c: NetSocket) => { conns.add(c); c.on('close', () => conns.delete(c)) })
    const ioServer = new IOServer(srv, {
      path: ctx.route('/socket.io'),
      serveClient: false,
      transports: ['websocket', 'polling'],
      allowRequest: (_req, cb) => { cb(null, !refusingSockets) }
    })
    ioServer.on('connection', (socket) => onConnection(ctx, socket))
    await new Promise<void>((resolve, reject) => {
      srv.once('error', reject)
      srv.listen(port, '127.0.0.1', () => { srv.off('error', reject); resolve() })
    })
    port = (srv.address() as AddressInfo).port
    server.http = srv
    ctx.io = ioServer
  }

  async function stopTransport (): Promise<void> {
    const srv = server.http
    const ioServer = ctx.io
    server.http = null
    ctx.io = null
    if (srv === null || ioServer === null) return
    const closed = new Promise<void>((resolve) => { srv.close(() => resolve()) })
    ioServer.close()
    srv.closeAllConnections()
    for (const c of conns) c.destroy()
    conns.clear()
    await closed
  }
  ctx.stopTransport = stopTransport

  /** What answers on the port while Foundry is down (null: nothing listens). */
  let stand: { srv: http.Server, conns: Set<NetSocket> } | null = null
  async function standIn (mode: '502' | 'hang'): Promise<void> {
    const held = new Set<NetSocket>()
    const srv = http.createServer((_req, res) => {
      if (mode === '502') res.writeHead(502, { 'Content-Type': 'text/html' }).end('<html><body><h1>502 Bad Gateway</h1></body></html>')
    })
    srv.on('connection', (c: NetSocket) => { held.add(c); c.on('close', () => held.delete(c)) })
    await new Promise<void>((resolve, reject) => {
      srv.once('error', reject)
      srv.listen(port, '127.0.0.1', () => { srv.off('error', reject); resolve() })
    })
    stand = { srv, conns: held }
  }
  async function standOut (): Promise<void> {
    const s = stand
    stand = null
    if (s === null) return
    const closed = new Promise<void>((resolve) => { s.srv.close(() => resolve()) })
    s.srv.closeAllConnections()
    for (const c of s.conns) c.destroy()
    await closed
  }

  await boot()

  const standin: Standin = {
    url: `http://127.0.0.1:${port}${ctx.prefix}/`,
    requests: ctx.requests,
    joins: ctx.joins,
    canvas: ctx.canvasReports,
    worldData: ctx.worldData,
    state: () => ({ activeWorld: ctx.activeWorld, activeUsers: [...computeActive(ctx)].sort(), launching: ctx.launching, migratedWorlds: [...ctx.migratedWorlds], quit: ctx.quit }),
    async close () { await standOut(); await stopTransport() },
    async launchWorld (id: string) {
      if (!ctx.worlds.has(id)) throw new Error(`unknown world ${id}`)
      if (ctx.activeWorld === id) return
      if (ctx.activeWorld !== null) throw new Error(`world ${ctx.activeWorld} is active`)
      await launch(ctx, id)
    },
    async shutdownWorld () { doShutdown(ctx) },
    async restart (o = {}) {
      await stopTransport()
      ctx.sessions = new Map()
      ctx.external = new Set(opts.activeUserIds ?? [])
      ctx.activeWorld = opts.activeWorld ?? null
      ctx.launching = null
      ctx.launchPromise = null
      ctx.lastActive = new Set()
      await new Promise((resolve) => setTimeout(resolve, o.downMs ?? 200))
      await boot()
      ctx.lastActive = computeActive(ctx)
    },
    cutLiveConnections () {
      if (ctx.io === null) return
      for (const s of ctx.io.of('/').sockets.values()) s.conn.close()
    },
    liveLogins (userId: string) {
      let n = 0
      for (const s of ctx.sessions.values()) if (s.userId === userId && s.sockets > 0) n++
      return n
    },
    setUserActive (id: string, active: boolean) {
      if (active) ctx.external.add(id)
      else ctx.external.delete(id)
      emitActivity(ctx)
    },
    setUserPassword (id: string, password: string) {
      for (const w of ctx.worlds.values()) for (const u of w.users) if (u.id === id) u.password = password
    },
    reloadClients () { ctx.io?.emit('reload') },
    async down (mode = 'refuse') {
      await standOut()
      await stopTransport()
      ctx.sessions = new Map()
      ctx.external = new Set(opts.activeUserIds ?? [])
      ctx.activeWorld = null
      ctx.launching = null
      ctx.launchPromise = null
      ctx.lastActive = new Set()
      if (mode !== 'refuse') await standIn(mode)
    },
    async up (o = {}) {
      await standOut()
      ctx.activeWorld = o.activeWorld !== undefined ? o.activeWorld : opts.activeWorld ?? null
      await boot()
      ctx.lastActive = computeActive(ctx)
    },
    setPassword (userId: string, password: string) {
      for (const w of ctx.worlds.values()) for (const u of w.users) if (u.id === userId) u.password = password
    },
    removeUser (userId: string) {
      for (const w of ctx.worlds.values()) w.users = w.users.filter((u) => u.id !== userId)
    },
    setEulaSigned (signed: boolean) {
      (ctx.opts as StandinOptions).eulaSigned = signed
    },
    async blockSockets (ms: number) {
      refusingSockets = true
      standin.cutLiveConnections()
      await new Promise((resolve) => setTimeout(resolve, ms))
      refusingSockets = false
    }
  }
  ctx.lastActive = computeActive(ctx)
  return standin
}

// A test-only stand-in for a Foundry VTT server (v11–v14) as a browser sees
// it: routes per server state, the `session` cookie, the late-rendered join
// form, POST /join with its bare i18n error keys, admin auth, the setup world
// list and launch, the /game boot over socket.io and a fake REST API module
// that connects to a relay, as described in the reference notes on Foundry
// (foundry.md, kept with the relay API reference outside this repo); this file
// is meant to be as strict as the real server.
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
import { createHash, randomBytes } from 'node:crypto'
import { readFileSync } from 'node:fs'
import { createRequire } from 'node:module'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { Server as IOServer, type Socket as IOSocket } from 'socket.io'

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
  /** As if an admin launched it; resolves when the world is active. */
  launchWorld: (id: string) => Promise<void>
  /** Emit 'shutdown' to clients, world inactive, sessions logged out. */
  shutdownWorld: () => Promise<void>
  /** Server restart: drop sockets and sessions, stop listening for downMs (default 200), listen again on the same port; world as configured at start. */
  restart: (opts?: { downMs?: number }) => Promise<void>
  /** Cut every socket.io transport (clients retry and reconnect). */
  cutLiveConnections: () => void
  setUserActive: (id: string, active: boolean) => void
  /** Server → every client 'reload'. */
  reloadClients: () => void
  /** Cut every socket.io transport and refuse socket.io handshakes for ms while HTTP stays up (resolves when lifted). */
  blockSockets: (ms: number) => Promise<void>
}

interface Session {
  id: string
  userId: string | null
  admin: boolean
  /** Joined but no live socket yet (the join page navigates to /game). */
  justJoined: boolean
  sockets: number
  flash: string | null
}

const here = dirname(fileURLToPath(import.meta.url))
const clientDir = join(here, 'client')
const require = createRequire(import.meta.url)
const socketIoClientPath = join(dirname(require.resolve('socket.io/package.json')), 'client-dist', 'socket.io.min.js')

let clientCache: Record<string, string> | null = null
function clientFiles (): Record<string, string> {
  if (clientCache === null) {
    const read = (f: string): string => readFileSync(join(clientDir, f), 'utf8')
    clientCache = {
      common: read('common.js'),
      join: read('join.js'),
      setup: read('setup.js'),
      game: read('game.js'),
      moduleV2: read('module-v2.js'),
      moduleV3: read('module-v3.js'),
      moduleRequests: read('module-requests.js'),
      players: read('players.js'),
      ioClient: readFileSync(socketIoClientPath, 'utf8')
    }
  }
  return clientCache
}

const MODULE_ID = 'foundry-rest-api'

function randomHex (bytes: number): string { return randomBytes(bytes).toString('hex') }

function esc (s: string): string {
  return s.replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c] ?? c)
}

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

export function defaultClientId (worldId: string): string {
  return 'fvtt_' + createHash('sha256').update(worldId).digest('hex').slice(0, 16)
}

const SKELETON = `<div id="interface" class="interface">
  <section id="ui-left"><aside id="players"></aside><menu id="scene-controls"></menu></section>
  <section id="ui-middle"><header id="ui-top"><nav id="navigation"></nav></header><footer id="ui-bottom"><div id="hotbar"></div></footer></section>
  <section id="ui-right"><div id="sidebar"></div></section>
</div>
<canvas id="board"></canvas>`

const CSS = `body{font-family:sans-serif;margin:0;min-height:100vh;background:#222;color:#eee}
#notifications{position:fixed;top:0;left:30%;width:40%;list-style:none;margin:0;padding:0;z-index:2000}
#notifications .notification{padding:6px 10px;margin:4px;border-radius:4px;background:#335}
#notifications .notification.error{background:#733}#notifications .notification.warning{background:#763}
.app-overlay{position:fixed;inset:0;z-index:1000;background:rgba(0,0,0,.6);display:flex;align-items:center;justify-content:center}
.app-overlay dialog{position:static;display:block}
#worlds-list{list-style:none;padding:0}#worlds-list li.package{display:flex;gap:12px;align-items:center;padding:8px;border-bottom:1px solid #444}
#worlds-list .control.play{display:inline-block;padding:4px 10px;background:#363;cursor:pointer}
body.hover-controls #worlds-list li.package .control.play{display:none}
body.hover-controls #worlds-list li.package:hover .control.play{display:inline-block}
#join-game,#setup-authentication{max-width:480px;margin:40px auto}
.user-autocomplete li.disabled{color:#777}
#board{position:fixed;inset:0;z-index:-1}`

export async function startFoundryStandin (opts: StandinOptions): Promise<Standin> {
  const version = opts.version ?? '13.351'
  const [genStr, buildStr] = version.split('.')
  const generation = Number(genStr)
  const build = Number(buildStr)
  if (!Number.isInteger(generation) || !Number.isInteger(build)) throw new Error(`bad version ${version}`)
  const variant: 'v11' | 'v12' | 'v14' = generation <= 11 ? 'v11' : (generation > 14 || (generation === 14 && build >= 367)) ? 'v14' : 'v12'
  const userKey = opts.joinKey ?? (variant === 'v14' ? 'userId' : 'userid')
  const release = { generation, build, version, channel: 'Stable' }
  const prefix = opts.routePrefix !== undefined && opts.routePrefix.replace(/^\/+|\/+$/g, '') !== ''
    ? '/' + opts.routePrefix.replace(/^\/+|\/+$/g, '')
    : ''
  const route = (p: string): string => prefix + p
  const moduleVersion = opts.moduleVersion ?? 2
  const joinRenderDelayMs = opts.joinRenderDelayMs ?? 300
  const setupRenderDelayMs = opts.setupRenderDelayMs ?? 150
  const gameReadyDelayMs = opts.gameReadyDelayMs ?? 500
  const canvasDelayMs = opts.canvasDelayMs ?? 200
  const launchDelayMs = opts.launchDelayMs ?? 800
  const pingIntervalMs = opts.modulePingIntervalMs ?? 30000
  const heavy = opts.heavyGame === true ? {} : (opts.heavyGame === false || opts.heavyGame === undefined ? null : opts.heavyGame)
  const startedAt = Date.now()

  // World records are copied: migration and telemetry answers persist across
  // restart() like data on disk; sessions and the running world do not.
  const worlds = new Map<string, StandinWorld>(opts.worlds.map((w) => [w.id, { ...w, users: w.users.map((u) => ({ ...u })) }]))
  for (const w of worlds.values()) {
    for (const u of w.users) {
      if (!/^[A-Za-z0-9]{16}$/.test(u.id)) throw new Error(`user id ${u.id} is not 16 alphanumeric characters`)
    }
  }
  if (opts.activeWorld != null && !worlds.has(opts.activeWorld)) throw new Error(`unknown activeWorld ${opts.activeWorld}`)

  const requests: StandinRequest[] = []
  const joins: StandinJoin[] = []
  const migratedWorlds: string[] = []
  const canvasReports: StandinCanvas[] = []
  let telemetryAnswered = false
  const playersDone = new Set<string>()
  const gated = (): boolean => opts.playersGate === true && generation >= 14 && activeWorld !== null && !playersDone.has(activeWorld)
  let quit = false

  let activeWorld: string | null = opts.activeWorld ?? null
  let launching: string | null = null
  let sessions = new Map<string, Session>()
  let external = new Set<string>(opts.activeUserIds ?? [])
  let lastActive = new Set<string>()

  const world = (): StandinWorld | null => activeWorld === null ? null : worlds.get(activeWorld) ?? null

  function computeActive (): Set<string> {
    const w = world()
    const out = new Set<string>()
    if (w === null) return out
    const ids = new Set(w.users.map((u) => u.id))
    for (const id of external) if (ids.has(id)) out.add(id)
    for (const s of sessions.values()) {
      if (s.userId !== null && ids.has(s.userId) && (s.sockets > 0 || s.justJoined)) out.add(s.userId)
    }
    return out
  }

  function emitActivity (): void {
    const now = computeActive()
    for (const id of now) if (!lastActive.has(id)) io?.emit('userActivity', id, { active: true })
    for (const id of lastActive) if (!now.has(id)) io?.emit('userActivity', id, { active: false })
    lastActive = now
  }

  function usersPayload (): Array<{ _id: string, name: string, role: number, active: boolean }> {
    const w = world()
    if (w === null) return []
    const active = computeActive()
    return w.users.map((u) => ({ _id: u.id, name: u.name, role: u.role, active: active.has(u.id) }))
  }

  function newSession (): Session {
    let id = randomHex(12)
    while (sessions.has(id)) id = randomHex(12)
    const s: Session = { id, userId: null, admin: false, justJoined: false, sockets: 0, flash: null }
    sessions.set(id, s)
    return s
  }

  function logout (s: Session): void {
    if (s.userId === null) return
    s.userId = null
    s.justJoined = false
    emitActivity()
  }

  // ---------------------------------------------------------------- HTTP
  function page (title: string, bodyClass: string, body: string, scripts: string[] = []): string {
    const tags = scripts.map((s) => `<script defer src="${route(s)}"></script>`).join('\n  ')
    return `<!DOCTYPE html>
<html lang="en">
<head>
  <meta charset="utf-8">
  <meta name="viewport" content="width=device-width, initial-scale=1">
  <meta name="description" content="Foundry Virtual Tabletop: a standalone virtual tabletop application for tabletop role-playing games.">
  <meta name="color-scheme" content="dark light">
  <meta name="robots" content="noindex, nofollow">
  <title>${esc(title)}</title>
  <link rel="stylesheet" href="${route('/css/style.css')}">
  ${tags}
</head>
<body class="${bodyClass}">
${body}
<ol id="notifications"></ol>
</body>
</html>
`
  }

  const ioScript = '/scripts/socket.io.min.js'

  function joinShell (w: StandinWorld): string {
    return page(`${w.title} • Foundry Virtual Tabletop`, 'auth join theme-dark', `<header id="main-header">
  <h1>${esc(w.title)}</h1>
</header>
<main id="join-main">
  <template id="join-game"></template>
</main>
<noscript><p>Foundry Virtual Tabletop requires JavaScript. Enable JavaScript in your browser to join this game session.</p></noscript>
<aside id="tooltip" role="tooltip"></aside>
<nav id="context-menu" hidden></nav>
<footer id="join-footer">
  <p class="version">Foundry Virtual Tabletop &middot; Version ${esc(version)} &middot; Generation ${generation}, Build ${build}</p>
  <p class="links"><a href="https://foundryvtt.com" rel="noopener" target="_blank">foundryvtt.com</a> &middot; <a href="https://foundryvtt.com/kb/" rel="noopener" target="_blank">Knowledge Base</a> &middot; <a href="https://foundryvtt.com/article/eula/" rel="noopener" target="_blank">EULA</a></p>
</footer>`, [ioScript, '/scripts/join.js'])
  }

  function joinInactivePage (): string {
    return page('Foundry Virtual Tabletop', 'auth join theme-dark', `<header id="main-header"><h1>Foundry Virtual Tabletop</h1></header>
<main id="join-main"><section id="join-inactive"><p>There is no active game session. The game master must launch a World before players can join.</p></section></main>`)
  }

  function authPage (flash: string | null): string {
    const id = generation >= 14 ? 'auth-password' : 'admin-password'
    const user = generation >= 14 && opts.adminUsername !== undefined
      ? '\n  <input type="text" name="adminUsername" id="auth-username" placeholder="Administrator User" autocomplete="username">'
      : ''
    return page('Administrator Access • Foundry Virtual Tabletop', 'auth setup-auth theme-dark', `<form id="setup-authentication" method="post" action="${route('/auth')}">
  <h2>Administrator Access</h2>${user}
  <input type="password" name="adminPassword" id="${id}" placeholder="Administrator Password" autocomplete="current-password">
  <input type="hidden" name="action" value="adminAuth">
  <button type="submit"><i class="fas fa-key"></i> Log In</button>
</form>
${flash !== null ? `<div id="auth-error" class="notification error">${esc(flash)}</div>` : ''}`)
  }

  function licensePage (): string {
    return page('License • Foundry Virtual Tabletop', 'auth license theme-dark', `<section id="license">
  <h2>Software License Agreement</h2>
  <form id="license-key-form"><input type="text" name="licenseKey" placeholder="Enter your license key"><button type="submit" name="submit" disabled>Submit</button></form>
  <form id="eula"><label><input type="checkbox" id="eula-agree" name="agree"> I agree to the End User License Agreement</label><button type="submit" id="sign" name="sign" disabled>Agree</button></form>
</section>`)
  }

  function setupPage (): string {
    return page('Foundry Virtual Tabletop', `setup theme-dark${generation <= 13 ? ' hover-controls' : ''}`, `<header id="setup-menu"><h1>Foundry Virtual Tabletop</h1></header>
<section id="setup-packages"></section>`, [ioScript, '/scripts/setup.js'])
  }

  function gamePage (w: StandinWorld): string {
    return page(`${w.title} • Foundry Virtual Tabletop`, `vtt game system-${w.system.id}`,
      generation >= 13 ? SKELETON : '', [ioScript, '/scripts/game.js'])
  }

  function heavyConfig (): unknown {
    if (heavy === null) return null
    const images = heavy.images ?? 8
    return {
      scripts: [route('/scripts/heavy.js')],
      images: Array.from({ length: images }, (_, i) => route(`/assets/heavy-${i}.bmp`)),
      audio: route('/assets/heavy.wav'),
      canvasMs: heavy.canvasMs ?? 500
    }
  }

  function playersPage (w: StandinWorld): string {
    const rows = w.users.map((u) => `<li class="user" data-user-id="${esc(u.id)}"><span class="name">${esc(u.name)}</span> <span class="role">${u.role}</span></li>`).join('')
    return page(`${w.title} • Foundry Virtual Tabletop`, 'auth players theme-dark', `<header id="main-header"><h1>${esc(w.title)}</h1></header>
<form id="players-config"><h2>Configure Players</h2><ul class="users">${rows}</ul>
  <button type="submit" name="save" data-action="save"><i class="fas fa-save"></i> Save and Continue</button></form>`, [ioScript, '/scripts/players.js'])
  }

  function pageScript (name: 'join' | 'setup' | 'game' | 'players'): string {
    const f = clientFiles()
    const cfg = {
      prefix,
      variant,
      generation,
      version,
      release,
      joinRenderDelayMs,
      setupRenderDelayMs,
      gameReadyDelayMs,
      canvasDelayMs,
      skeletonStatic: generation >= 13,
      skeletonHtml: SKELETON,
      heavy: name === 'game' ? heavyConfig() : null,
      joinForm: opts.joinForm ?? null
    }
    return `(function (CONFIG) {\n${f.common}\n${f[name]}\n})(${JSON.stringify(cfg)});\n`
  }

  let heavyScriptCache: string | null = null
  function heavyScript (): string {
    if (heavyScriptCache === null) {
      // Many small closures (parse + compile cost) and a retained heap (like
      // Foundry's CONFIG, documents and compendium indexes).
      const bytes = heavy?.scriptBytes ?? 8 * 1024 * 1024
      const parts: string[] = ['(function(){var keep=(window.game.heavyData=window.game.heavyData||[]);']
      let n = 0
      let i = 0
      while (n < bytes) {
        const chunk: string[] = [`(function(){var o${i}={};`]
        for (let j = 0; j < 500; j++, i++) chunk.push(`o${i - j}.f${i}=function(a){return a*${i}+${i % 7}};`)
        chunk.push(`keep.push(o${i - 500});for(var k=0;k<2000;k++)keep.push({id:'d'+k+'_${i}',name:'Document '+k,system:{value:k,notes:'x'.repeat(k%64)}});})();\n`)
        const line = chunk.join('')
        parts.push(line)
        n += line.length
      }
      parts.push('})();\n')
      heavyScriptCache = parts.join('')
    }
    return heavyScriptCache
  }

  function heavyImage (seed: number): Buffer {
    // 24-bit BMP, 512×512 (~768 KB) of noise: decode cost without compression.
    const w = 512
    const h = 512
    const row = w * 3
    const size = 54 + row * h
    const b = Buffer.alloc(size)
    b.write('BM', 0)
    b.writeUInt32LE(size, 2)
    b.writeUInt32LE(54, 10)
    b.writeUInt32LE(40, 14)
    b.writeInt32LE(w, 18)
    b.writeInt32LE(h, 22)
    b.writeUInt16LE(1, 26)
    b.writeUInt16LE(24, 28)
    b.writeUInt32LE(row * h, 34)
    let x = seed * 2654435761 >>> 0
    for (let i = 54; i < size; i++) { x = (x * 1103515245 + 12345) >>> 0; b[i] = x >>> 24 }
    return b
  }

  function heavyAudio (): Buffer {
    const rate = 22050
    const samples = rate * 5
    const b = Buffer.alloc(44 + samples * 2)
    b.write('RIFF', 0); b.writeUInt32LE(36 + samples * 2, 4); b.write('WAVE', 8); b.write('fmt ', 12)
    b.writeUInt32LE(16, 16); b.writeUInt16LE(1, 20); b.writeUInt16LE(1, 22); b.writeUInt32LE(rate, 24)
    b.writeUInt32LE(rate * 2, 28); b.writeUInt16LE(2, 32); b.writeUInt16LE(16, 34); b.write('data', 36); b.writeUInt32LE(samples * 2, 40)
    for (let i = 0; i < samples; i++) b.writeInt16LE(Math.round(Math.sin(i / 10) * 8000), 44 + i * 2)
    return b
  }

  function moduleScript (): string {
    const f = clientFiles()
    const body = moduleVersion === 3 ? f.moduleV3 : f.moduleV2
    return `(function (CONFIG) {\n${f.moduleRequests}\n${body}\n})(${JSON.stringify({ pingIntervalMs, reconnectMaxAttempts: opts.moduleReconnectMaxAttempts, reconnectBaseMs: opts.moduleReconnectBaseMs })});\n`
  }

  function worldData (s: Session, w: StandinWorld): unknown {
    const moduleActive = w.moduleActive !== false
    const settings = [
      { key: `${MODULE_ID}.wsRelayUrl`, value: JSON.stringify(opts.relayUrl ?? '') },
      { key: `${MODULE_ID}.customName`, value: JSON.stringify('') },
      { key: 'core.nue.shownTips', value: JSON.stringify(true) }
    ]
    if (moduleVersion === 2) settings.push({ key: `${MODULE_ID}.apiKey`, value: JSON.stringify(opts.moduleApiKey ?? w.id) })
    else settings.push({ key: `${MODULE_ID}.clientId`, value: JSON.stringify(w.moduleClientId ?? defaultClientId(w.id)) })
    return {
      sessionId: s.id,
      userId: s.userId,
      world: { id: w.id, title: w.title },
      system: { ...w.system },
      version,
      release,
      users: usersPayload(),
      modules: [{
        id: MODULE_ID,
        title: 'Foundry REST API',
        version: moduleVersion === 3 ? '3.4.1' : '2.1.3',
        active: moduleActive,
        scripts: [route(`/modules/${MODULE_ID}/scripts/module.js`)]
      }],
      settings
    }
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

  async function handle (req: http.IncomingMessage, res: http.ServerResponse): Promise<void> {
    const url = new URL(req.url ?? '/', 'http://standin')
    const method = req.method ?? 'GET'
    const contentType = req.headers['content-type']
    const entry: StandinRequest = { method, path: url.pathname + url.search, status: 0 }
    if (contentType !== undefined) entry.contentType = contentType
    requests.push(entry)
    res.on('finish', () => { entry.status = res.statusCode })

    const text = (status: number, body: string, type = 'text/plain; charset=utf-8'): void => {
      res.writeHead(status, { 'Content-Type': type, 'Content-Length': Buffer.byteLength(body) }).end(body)
    }
    const json = (status: number, body: unknown): void => text(status, JSON.stringify(body), 'application/json; charset=utf-8')
    const html = (status: number, body: string): void => text(status, body, 'text/html; charset=utf-8')
    const redirect = (p: string): void => { res.writeHead(302, { Location: route(p), 'Content-Length': 0 }).end() }

    // Route prefix.
    let path = url.pathname
    if (prefix !== '') {
      if (path === prefix) { res.writeHead(302, { Location: prefix + '/' }).end(); return }
      if (!path.startsWith(prefix + '/')) { text(404, 'Not Found'); return }
      path = path.slice(prefix.length)
    }

    // Static assets: no cookie, no state.
    if (method === 'GET' || method === 'HEAD') {
      const f = (): Record<string, string> => clientFiles()
      const js = (body: string): void => text(200, body, 'application/javascript; charset=utf-8')
      switch (path) {
        case '/scripts/socket.io.min.js': js(f().ioClient); return
        case '/scripts/join.js': js(pageScript('join')); return
        case '/scripts/setup.js': js(pageScript('setup')); return
        case '/scripts/game.js': js(pageScript('game')); return
        case '/scripts/players.js': js(pageScript('players')); return
        case `/modules/${MODULE_ID}/scripts/module.js`: js(moduleScript()); return
        case '/css/style.css': text(200, CSS, 'text/css; charset=utf-8'); return
      }
      if (heavy !== null) {
        if (path === '/scripts/heavy.js') { js(heavyScript()); return }
        const m = /^\/assets\/heavy-(\d+)\.bmp$/.exec(path)
        if (m !== null) { res.writeHead(200, { 'Content-Type': 'image/bmp' }).end(heavyImage(Number(m[1]))); return }
        if (path === '/assets/heavy.wav') { res.writeHead(200, { 'Content-Type': 'audio/wav' }).end(heavyAudio()); return }
      }
    }

    // Sessions: a cookie is set on the first page response lacking a known one.
    const cookieId = parseCookies(req.headers.cookie).session
    let sess = cookieId !== undefined ? sessions.get(cookieId) ?? null : null
    const pageRoutes = new Set(['/', '/license', '/auth', '/setup', '/join', '/game', '/players'])
    if (sess === null && method === 'GET' && pageRoutes.has(path)) {
      sess = newSession()
      res.setHeader('Set-Cookie', `session=${sess.id}; Path=${prefix === '' ? '/' : prefix + '/'}; SameSite=Strict`)
    }

    const eula = opts.eulaSigned !== false
    if (!eula && path !== '/license' && !path.startsWith('/scripts/') && path !== '/css/style.css') {
      redirect('/license')
      return
    }
    const w = world()
    const needsAdminAuth = (s: Session | null): boolean => opts.adminPassword !== undefined && opts.adminPassword !== '' && !(s?.admin ?? false)

    if (method === 'GET' || method === 'HEAD') {
      switch (path) {
        case '/':
          if (w !== null && gated()) redirect('/players')
          else if (w !== null) redirect(sess?.userId != null ? '/game' : '/join')
          else redirect(needsAdminAuth(sess) ? '/auth' : '/setup')
          return
        case '/license':
          if (eula) redirect('/')
          else html(200, licensePage())
          return
        case '/auth': {
          if (w !== null && !(gated() && needsAdminAuth(sess))) { redirect('/join'); return }
          if (!needsAdminAuth(sess)) { redirect(w !== null ? '/players' : '/setup'); return }
          const flash = sess?.flash ?? null
          if (sess !== null) sess.flash = null
          html(200, authPage(flash))
          return
        }
        case '/setup':
          if (w !== null) { redirect('/join'); return }
          if (needsAdminAuth(sess)) { redirect('/auth'); return }
          html(200, setupPage())
          return
        case '/join':
          if (w === null) { html(200, joinInactivePage()); return }
          if (gated()) { redirect('/players'); return }
          // Visiting /join logs the browser's session out of the world.
          if (sess !== null) logout(sess)
          html(200, joinShell(w))
          return
        case '/game':
          if (w !== null && gated()) { redirect('/players'); return }
          if (w === null || sess === null || sess.userId === null) { redirect('/join'); return }
          html(200, gamePage(w))
          return
        case '/players':
          if (w !== null && gated()) {
            if (needsAdminAuth(sess)) { redirect('/auth'); return }
            html(200, playersPage(w))
          } else redirect(w !== null ? '/join' : '/')
          return
        case '/api/status':
          if (w === null) json(200, { active: false, version })
          else json(200, { active: true, version, world: w.id, system: w.system.id, systemVersion: w.system.version, users: computeActive().size, uptime: Date.now() - startedAt })
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
      case '/join': return postJoin(sess, type, body, text, json)
      case '/auth': {
        if (type !== 'application/x-www-form-urlencoded' || body === null) { text(400, 'Bad Request'); return }
        if (sess === null) { text(403, 'Forbidden'); return }
        if (!needsAdminAuth(sess)) { redirect('/setup'); return }
        if (body.action !== 'adminAuth') { text(400, 'Bad Request'); return }
        const userOk = generation < 14 || opts.adminUsername === undefined || opts.adminUsernameRequired === false ||
          body.adminUsername === opts.adminUsername
        if (body.adminPassword === opts.adminPassword && userOk) { sess.admin = true; redirect(world() !== null ? '/players' : '/setup'); return }
        sess.flash = 'ERROR.InvalidAdminKey'
        redirect('/auth')
        return
      }
      case '/setup': return await postSetup(sess, type, body, text, json, redirect)
      case '/players':
        if (type !== 'application/json' || body === null) { text(400, 'Bad Request'); return }
        if (sess === null) { json(403, { error: 'ERROR.InvalidSession' }); return }
        if (!gated()) { json(400, { error: 'No user configuration pending' }); return }
        if (needsAdminAuth(sess)) { json(403, { error: 'ERROR.InvalidAdminKey' }); return }
        if (body.action !== 'save') { json(400, { error: 'Unknown action' }); return }
        playersDone.add(activeWorld!)
        json(200, { status: 'success', redirect: route('/join') })
        return
      case '/quit':
        if (sess === null || needsAdminAuth(sess)) { text(403, 'Forbidden'); return }
        // Real Foundry stops the process. The stand-in stops answering.
        quit = true
        text(200, '')
        setTimeout(() => { void stopTransport() }, 10)
        return
      default:
        text(404, 'Not Found')
    }
  }

  function postJoin (sess: Session | null, type: string, body: Record<string, unknown> | null,
    text: (s: number, b: string, t?: string) => void, json: (s: number, b: unknown) => void): void {
    if (type !== 'application/json' || body === null) { text(400, 'Bad Request'); return }
    if (sess === null) { text(403, 'JOIN.ErrorInvalidSession'); return }
    const w = world()
    if (w === null) { text(400, 'JOIN.ErrorNoActiveWorld'); return }
    if (gated()) { text(403, 'JOIN.ErrorUserConfigPending'); return }
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
      doShutdown()
      return
    }
    if (action !== 'join') { text(400, 'Bad Request'); return }
    // The posting session is logged out first, whatever the outcome.
    logout(sess)
    const record = (userId: string, ok: boolean, reason?: string): void => {
      const j: StandinJoin = { userId, ok, sessionCookie: sess.id }
      if (reason !== undefined) j.reason = reason
      joins.push(j)
    }
    const rawId = body[userKey]
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
      for (const other of sessions.values()) {
        if (other === sess || other.userId !== user.id) continue
        other.userId = null
        other.justJoined = false
        for (const socket of io?.of('/').sockets.values() ?? []) {
          if (socket.handshake.query.session === other.id) socket.emit('session', { sessionId: other.id, userId: null })
        }
      }
    }
    sess.userId = user.id
    sess.justJoined = true
    record(user.id, true)
    emitActivity()
    const redirectTo = opts.joinRedirect === 'unprefixed' ? '/game' : opts.joinRedirect === 'relative' ? 'game' : route('/game')
    json(200, { status: 'success', message: 'JOIN.LoginSuccess', redirect: redirectTo })
  }

  async function postSetup (sess: Session | null, type: string, body: Record<string, unknown> | null,
    text: (s: number, b: string, t?: string) => void, json: (s: number, b: unknown) => void, redirect: (p: string) => void): Promise<void> {
    if (type !== 'application/json' || body === null) { text(400, 'Bad Request'); return }
    if (sess === null) { json(403, { error: 'ERROR.InvalidSession' }); return }
    const hasAdminPw = opts.adminPassword !== undefined && opts.adminPassword !== ''
    if (body.action === 'adminAuth' && generation >= 13) {
      if (!hasAdminPw || body.adminPassword === opts.adminPassword) { sess.admin = true; json(200, { status: 'success' }); return }
      json(403, { error: 'ERROR.InvalidAdminKey' })
      return
    }
    // A GM leaving the running world.
    if (body.shutdown === true) {
      const w = world()
      const user = w?.users.find((u) => u.id === sess.userId)
      if (w === null || ((user === undefined || user.role < 3) && !sess.admin)) { json(403, { error: 'ERROR.InvalidAdminKey' }); return }
      doShutdown()
      redirect('/setup')
      return
    }
    if (hasAdminPw && !sess.admin) { json(403, { error: 'ERROR.InvalidAdminKey' }); return }
    switch (body.action) {
      case 'telemetry':
        telemetryAnswered = true
        json(200, {})
        return
      case 'launchWorld': {
        const id = typeof body.world === 'string' ? body.world : ''
        const w = worlds.get(id)
        if (activeWorld !== null) { json(409, { error: 'SETUP.WorldAlreadyActive' }); return }
        if (launching !== null) { json(409, { error: 'SETUP.WorldLaunchInProgress' }); return }
        if (w === undefined) { json(404, { error: 'PACKAGE.WorldNotFound' }); return }
        if (w.locked === true) { json(403, { error: 'PACKAGE.LaunchLocked' }); return }
        json(200, {})
        void launch(id)
        return
      }
      default:
        json(400, { error: 'Unknown setup action' })
    }
  }

  let launchPromise: Promise<void> | null = null
  function launch (id: string): Promise<void> {
    if (launchPromise !== null) return launchPromise
    launching = id
    const steps = ['connectWorld', 'migrateWorld', 'connectPackage', 'migratePackage', 'complete'] as const
    launchPromise = (async () => {
      const w = worlds.get(id)
      for (let i = 0; i < steps.length; i++) {
        const step = steps[i]
        if (step === 'migrateWorld' && w?.launchFailure !== undefined) {
          // The launch fails after it started (the POST already answered {}).
          launching = null
          io?.emit('progress', { action: 'launchWorld', id, step: 'error', pct: 0, message: 'SETUP.WorldLaunchFailure', error: w.launchFailure })
          return
        }
        // Real Foundry migrates an old world on any launch: only the setup
        // page's dialog asks first (a direct POST never does).
        if (step === 'migrateWorld' && w?.needsMigration === true) { w.needsMigration = false; migratedWorlds.push(id) }
        if (step === 'complete') {
          activeWorld = id
          launching = null
          lastActive = new Set()
          emitActivity()
        }
        io?.emit('progress', { action: 'launchWorld', id, step, pct: Math.round((i + 1) / steps.length * 100) })
        if (step !== 'complete') await new Promise((resolve) => setTimeout(resolve, launchDelayMs / (steps.length - 1)))
      }
    })().finally(() => { launchPromise = null })
    return launchPromise
  }

  function doShutdown (): void {
    io?.emit('shutdown')
    activeWorld = null
    for (const s of sessions.values()) { s.userId = null; s.justJoined = false }
    lastActive = new Set()
  }

  // ----------------------------------------------------------- socket.io
  function onConnection (socket: IOSocket): void {
    const q = socket.handshake.query.session
    const sid = typeof q === 'string' ? q : ''
    const sess = sessions.get(sid) ?? null
    if (sess !== null) {
      sess.sockets++
      if (sess.userId !== null) sess.justJoined = false
      emitActivity()
    }
    socket.emit('session', { sessionId: sess?.id ?? null, userId: sess?.userId ?? null })
    socket.on('disconnect', () => {
      if (sess !== null && sessions.get(sess.id) === sess) {
        sess.sockets--
        emitActivity()
      }
    })
    socket.on('canvasState', (st: unknown) => {
      const ready = (st as { ready?: unknown } | null)?.ready === true
      const renderer = (st as { renderer?: unknown } | null)?.renderer
      canvasReports.push({ userId: sess?.userId ?? null, ready, renderer: typeof renderer === 'string' ? renderer : null })
    })
    socket.on('getJoinData', (ack: unknown) => {
      if (typeof ack !== 'function') return
      const w = world()
      if (w === null) { ack({}); return }
      ack({ world: { id: w.id, title: w.title, system: w.system.id }, version, release, users: usersPayload(), options: { routePrefix: prefix === '' ? null : prefix.slice(1) } })
    })
    socket.on('world', (ack: unknown) => {
      if (typeof ack !== 'function') return
      const w = world()
      if (w === null || sess === null || sess.userId === null || sessions.get(sess.id) !== sess) { ack(null); return }
      ack(worldData(sess, w))
    })
    socket.on('getSetupData', (ack: unknown) => {
      if (typeof ack !== 'function') return
      const hasAdminPw = opts.adminPassword !== undefined && opts.adminPassword !== ''
      if (world() !== null || (hasAdminPw && !(sess?.admin ?? false))) { ack(null); return }
      ack({
        version,
        release,
        telemetryPrompt: opts.telemetryPrompt === true && generation >= 12 && !telemetryAnswered,
        tourPrompt: opts.tourPrompt === true && generation >= 12,
        worlds: [...worlds.values()].map((w) => ({ id: w.id, title: w.title, system: w.system, locked: w.locked === true, needsMigration: w.needsMigration === true }))
      })
    })
  }

  // ----------------------------------------------------------- lifecycle
  let server: http.Server | null = null
  let io: IOServer | null = null
  const conns = new Set<NetSocket>()
  let port = 0
  let refusingSockets = false

  async function boot (): Promise<void> {
    const srv = http.createServer((req, res) => {
      handle(req, res).catch((err: unknown) => {
        if (!res.headersSent) res.writeHead(500, { 'Content-Type': 'text/plain' }).end(String(err))
        else res.destroy()
      })
    })
    srv.on('connection', (c: NetSocket) => { conns.add(c); c.on('close', () => conns.delete(c)) })
    const ioServer = new IOServer(srv, {
      path: route('/socket.io'),
      serveClient: false,
      transports: ['websocket', 'polling'],
      allowRequest: (_req, cb) => { cb(null, !refusingSockets) }
    })
    ioServer.on('connection', onConnection)
    await new Promise<void>((resolve, reject) => {
      srv.once('error', reject)
      srv.listen(port, '127.0.0.1', () => { srv.off('error', reject); resolve() })
    })
    port = (srv.address() as AddressInfo).port
    server = srv
    io = ioServer
  }

  async function stopTransport (): Promise<void> {
    const srv = server
    const ioServer = io
    server = null
    io = null
    if (srv === null || ioServer === null) return
    const closed = new Promise<void>((resolve) => { srv.close(() => resolve()) })
    ioServer.close()
    srv.closeAllConnections()
    for (const c of conns) c.destroy()
    conns.clear()
    await closed
  }

  await boot()

  const standin: Standin = {
    url: `http://127.0.0.1:${port}${prefix}/`,
    requests,
    joins,
    canvas: canvasReports,
    state: () => ({ activeWorld, activeUsers: [...computeActive()].sort(), launching, migratedWorlds: [...migratedWorlds], quit }),
    async close () { await stopTransport() },
    async launchWorld (id: string) {
      if (!worlds.has(id)) throw new Error(`unknown world ${id}`)
      if (activeWorld === id) return
      if (activeWorld !== null) throw new Error(`world ${activeWorld} is active`)
      await launch(id)
    },
    async shutdownWorld () { doShutdown() },
    async restart (o = {}) {
      await stopTransport()
      sessions = new Map()
      external = new Set(opts.activeUserIds ?? [])
      activeWorld = opts.activeWorld ?? null
      launching = null
      launchPromise = null
      lastActive = new Set()
      await new Promise((resolve) => setTimeout(resolve, o.downMs ?? 200))
      await boot()
      lastActive = computeActive()
    },
    cutLiveConnections () {
      if (io === null) return
      for (const s of io.of('/').sockets.values()) s.conn.close()
    },
    setUserActive (id: string, active: boolean) {
      if (active) external.add(id)
      else external.delete(id)
      emitActivity()
    },
    reloadClients () { io?.emit('reload') },
    async blockSockets (ms: number) {
      refusingSockets = true
      standin.cutLiveConnections()
      await new Promise((resolve) => setTimeout(resolve, ms))
      refusingSockets = false
    }
  }
  lastActive = computeActive()
  return standin
}

// The stand-in's server state: the configuration derived from the options
// (version, variant, prefix, delays), the worlds, the browser sessions (the
// `session` cookie), which users are active and the records tests read
// (requests, joins, canvas reports, migrated worlds). Every other module of
// the server reads and changes state through the Ctx made here.
import { randomBytes } from 'node:crypto'
import type { Server as IOServer } from 'socket.io'
import type { HeavyGameOptions, StandinCanvas, StandinJoin, StandinOptions, StandinRequest, StandinWorld } from '../standin.ts'

export interface Session {
  id: string
  userId: string | null
  admin: boolean
  /** Joined but no live socket yet (the join page navigates to /game). */
  justJoined: boolean
  sockets: number
  flash: string | null
}

export interface Ctx {
  readonly opts: StandinOptions
  readonly version: string
  readonly generation: number
  readonly build: number
  readonly variant: 'v11' | 'v12' | 'v14'
  /** The key POST /join reads the user id from. */
  readonly userKey: 'userid' | 'userId'
  readonly release: { generation: number, build: number, version: string, channel: string }
  /** '' or '/<prefix>'. */
  readonly prefix: string
  readonly route: (p: string) => string
  readonly moduleVersion: 2 | 3
  readonly joinRenderDelayMs: number
  readonly setupRenderDelayMs: number
  readonly gameReadyDelayMs: number
  readonly canvasDelayMs: number
  readonly launchDelayMs: number
  readonly pingIntervalMs: number
  readonly heavy: HeavyGameOptions | null
  readonly startedAt: number

  /** World records, copied: migration persists across restart() like data on disk. */
  readonly worlds: Map<string, StandinWorld>
  readonly requests: StandinRequest[]
  readonly joins: StandinJoin[]
  readonly migratedWorlds: string[]
  readonly canvasReports: StandinCanvas[]
  readonly worldData: string[]
  telemetryAnswered: boolean
  readonly playersDone: Set<string>
  quit: boolean
  activeWorld: string | null
  launching: string | null
  launchPromise: Promise<void> | null
  sessions: Map<string, Session>
  /** Users made active from outside (activeUserIds, setUserActive). */
  external: Set<string>
  lastActive: Set<string>

  /** The running socket.io server (null while down). */
  io: IOServer | null
  /** Stop listening (set by the transport). */
  stopTransport: () => Promise<void>
}

export function createCtx (opts: StandinOptions): Ctx {
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

  return {
    opts,
    version,
    generation,
    build,
    variant,
    userKey,
    release,
    prefix,
    route: (p: string): string => prefix + p,
    moduleVersion: opts.moduleVersion ?? 2,
    joinRenderDelayMs: opts.joinRenderDelayMs ?? 300,
    setupRenderDelayMs: opts.setupRenderDelayMs ?? 150,
    gameReadyDelayMs: opts.gameReadyDelayMs ?? 500,
    canvasDelayMs: opts.canvasDelayMs ?? 200,
    launchDelayMs: opts.launchDelayMs ?? 800,
    pingIntervalMs: opts.modulePingIntervalMs ?? 30000,
    heavy,
    startedAt,
    worlds,
    requests: [],
    joins: [],
    migratedWorlds: [],
    canvasReports: [],
    worldData: [],
    telemetryAnswered: false,
    playersDone: new Set<string>(),
    quit: false,
    activeWorld: opts.activeWorld ?? null,
    launching: null,
    launchPromise: null,
    sessions: new Map<string, Session>(),
    external: new Set<string>(opts.activeUserIds ?? []),
    lastActive: new Set<string>(),
    io: null,
    stopTransport: async () => {}
  }
}

export function world (ctx: Ctx): StandinWorld | null {
  return ctx.activeWorld === null ? null : ctx.worlds.get(ctx.activeWorld) ?? null
}

/** v14 /players gate: the running world's user configuration is still pending. */
export function gated (ctx: Ctx): boolean {
  return ctx.opts.playersGate === true && ctx.generation >= 14 && ctx.activeWorld !== null && !ctx.playersDone.has(ctx.activeWorld)
}

export function hasAdminPassword (ctx: Ctx): boolean {
  return ctx.opts.adminPassword !== undefined && ctx.opts.adminPassword !== ''
}

export function needsAdminAuth (ctx: Ctx, s: Session | null): boolean {
  return hasAdminPassword(ctx) && !(s?.admin ?? false)
}

export function computeActive (ctx: Ctx): Set<string> {
  const w = world(ctx)
  const out = new Set<string>()
  if (w === null) return out
  const ids = new Set(w.users.map((u) => u.id))
  for (const id of ctx.external) if (ids.has(id)) out.add(id)
  for (const s of ctx.sessions.values()) {
    if (s.userId !== null && ids.has(s.userId) && (s.sockets > 0 || s.justJoined)) out.add(s.userId)
  }
  return out
}

export function emitActivity (ctx: Ctx): void {
  const now = computeActive(ctx)
  for (const id of now) if (!ctx.lastActive.has(id)) ctx.io?.emit('userActivity', id, { active: true })
  for (const id of ctx.lastActive) if (!now.has(id)) ctx.io?.emit('userActivity', id, { active: false })
  ctx.lastActive = now
}

export function usersPayload (ctx: Ctx): Array<{ _id: string, name: string, role: number, active: boolean }> {
  const w = world(ctx)
  if (w === null) return []
  const active = computeActive(ctx)
  return w.users.map((u) => ({ _id: u.id, name: u.name, role: u.role, active: active.has(u.id) }))
}

function randomHex (bytes: number): string { return randomBytes(bytes).toString('hex') }

export function newSession (ctx: Ctx): Session {
  let id = randomHex(12)
  while (ctx.sessions.has(id)) id = randomHex(12)
  const s: Session = { id, userId: null, admin: false, justJoined: false, sockets: 0, flash: null }
  ctx.sessions.set(id, s)
  return s
}

export function logout (ctx: Ctx, s: Session): void {
  if (s.userId === null) return
  s.userId = null
  s.justJoined = false
  emitActivity(ctx)
}

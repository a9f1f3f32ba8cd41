// What this instance holds for each session it runs (an Entry): its record,
// its credentials (options, and secrets as Buffers wiped when the session
// ends), its browser handles and timers. Also the credentials → LoginParams
// mapping for a first login and for logging back in. No I/O here.
import type { BrowserContext, Page } from 'puppeteer-core'
import type { LoginParams } from '../foundry/index.ts'
import type { WsWatcher } from '../browser/websockets.ts'
import type { Credentials, Lifecycle, Session, SessionOptions, SessionSecrets } from './types.ts'

export interface Timers {
  setTimeout: (fn: () => void, ms: number) => NodeJS.Timeout
  clearTimeout: (t: NodeJS.Timeout) => void
}

/** Secrets held for logging back in: buffers, zeroed when the session ends. */
export interface HeldSecrets {
  password: Buffer
  adminPassword: Buffer | null
  connectionToken: Buffer | null
  webhookUrl: Buffer | null
  webhookSecret: Buffer | null
}

export interface Entry {
  /** This instance's copy, authoritative for a session it runs. */
  session: Session
  options: SessionOptions
  secrets: HeldSecrets
  /** The login in progress, aborted when the session finishes. */
  abort: AbortController
  context: BrowserContext | null
  page: Page | null
  /** The page's WebSocket watcher, held for the session's life (the module's relay connection). */
  ws: WsWatcher | null
  /** The next check whether the module needs bringing back. */
  reviveTimer: NodeJS.Timeout | null
  /** Settles with the first login. */
  ready: Promise<Session>
  settle: { resolve: (s: Session) => void, reject: (e: Error) => void }
  retryTimer: NodeJS.Timeout | null
  /** Registry writes, in order. */
  saving: Promise<void>
  /**
   * Until then (ms) a login back in does not replace a login Foundry shows
   * as active: the session was just taken over from another machine, whose
   * page may still be connected (a stalled process holds its sockets open,
   * its egress gate with them). Foundry showing the user active is then
   * waited out (USER_ALREADY_ACTIVE, a transient cause), never doubled.
   */
  yieldToActiveUntil: number
}

export const snapshot = (s: Session): Session => structuredClone(s)

export function lifecycleOf (s: Session): Lifecycle {
  const { status, statusReason, statusChangedAt, startedAt, activeSince, endedAt, lastActivity, relogins, attempts, cause, nextAttemptAt, loggedOut, module } = s
  return { status, statusReason, statusChangedAt, startedAt, activeSince, endedAt, lastActivity, relogins, attempts, cause: cause ?? null, nextAttemptAt: nextAttemptAt ?? null, loggedOut, module }
}

function secretBuffer (value: string | undefined): Buffer | null {
  return value !== undefined && value !== '' ? Buffer.from(value, 'utf8') : null
}

export function holdSecrets (secrets: SessionSecrets): HeldSecrets {
  return {
    password: Buffer.from(secrets.password, 'utf8'),
    adminPassword: secretBuffer(secrets.adminPassword),
    connectionToken: secretBuffer(secrets.connectionToken),
    webhookUrl: secretBuffer(secrets.webhookUrl),
    webhookSecret: secretBuffer(secrets.webhookSecret)
  }
}

/** The held secrets as strings again (the inverse of holdSecrets), to keep them for another machine. */
export function releaseSecrets (secrets: HeldSecrets): SessionSecrets {
  return {
    password: secrets.password.toString('utf8'),
    ...(secrets.adminPassword !== null ? { adminPassword: secrets.adminPassword.toString('utf8') } : {}),
    ...(secrets.connectionToken !== null ? { connectionToken: secrets.connectionToken.toString('utf8') } : {}),
    ...(secrets.webhookUrl !== null ? { webhookUrl: secrets.webhookUrl.toString('utf8') } : {}),
    ...(secrets.webhookSecret !== null ? { webhookSecret: secrets.webhookSecret.toString('utf8') } : {})
  }
}

export function wipe (secrets: HeldSecrets): void {
  secrets.password.fill(0)
  secrets.adminPassword?.fill(0)
  secrets.connectionToken?.fill(0)
  secrets.webhookUrl?.fill(0)
  secrets.webhookSecret?.fill(0)
}

/** An entry for a session record (new, or taken over from the registry) and its credentials; no browser yet. */
export function newEntry (record: Session, credentials: Credentials): Entry {
  let settle!: Entry['settle']
  const ready = new Promise<Session>((resolve, reject) => { settle = { resolve, reject } })
  ready.catch(() => {}) // only awaited by a second start for the same session
  return {
    session: snapshot(record),
    options: credentials.options,
    secrets: holdSecrets(credentials.secrets),
    abort: new AbortController(),
    context: null,
    page: null,
    ws: null,
    reviveTimer: null,
    ready,
    settle,
    retryTimer: null,
    saving: Promise.resolve(),
    yieldToActiveUntil: 0
  }
}

/** What the driver gets: relogin, a login back into a session that had one. */
export function loginParams (entry: Entry, relogin: boolean, now: number): LoginParams {
  const { options: o, secrets } = entry
  return {
    foundryUrl: o.foundryUrl,
    username: o.username,
    password: secrets.password.toString('utf8'),
    worldName: o.worldName,
    adminPassword: secrets.adminPassword?.toString('utf8'),
    adminUsername: o.adminUsername,
    connectionToken: secrets.connectionToken?.toString('utf8'),
    requireModule: o.requireModule,
    // Logging back in replaces this session's own stale login, unless
    // Foundry logged it out (another login may hold the user), or the
    // session was just taken over from another machine (its page may still
    // be connected: wait for Foundry to let it go rather than log in twice).
    loginIfActive: relogin ? !entry.session.loggedOut && now >= entry.yieldToActiveUntil : o.loginIfActive,
    launchWorld: !relogin || o.relaunchWorld
  }
}

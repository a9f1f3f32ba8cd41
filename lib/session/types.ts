// What a session is, as data: its statuses (one TypeBox union, used by the
// API schema and the code), the record the registry keeps (no secrets), the
// options a start takes (defaults applied in one place), and its events.
import { Type, type Static } from '@sinclair/typebox'
import type { LoginResult, Stage } from '../foundry/index.ts'
import { DEFAULT_PAGE_SETUP, type BlockableResource, type PageSetupOptions } from '../browser/page-setup.ts'

export const SessionStatus = Type.Union([
  Type.Literal('starting'), Type.Literal('active'), Type.Literal('reconnecting'), Type.Literal('failed'), Type.Literal('ended')
])
export type SessionStatus = Static<typeof SessionStatus>

/** Listed as running: logged in, or logging back in. */
export const RunningStatus = Type.Union([Type.Literal('active'), Type.Literal('reconnecting')])
/** Listed as over. */
export const FinalStatus = Type.Union([Type.Literal('failed'), Type.Literal('ended')])
export type FinalStatus = Static<typeof FinalStatus>

export function isFinal (status: SessionStatus): status is FinalStatus {
  return status === 'failed' || status === 'ended'
}

/** The lifecycle part of a session: what the state machine reads and writes. */
export interface Lifecycle {
  status: SessionStatus
  /** Why the status last changed, in words. */
  statusReason: string
  statusChangedAt: number
  startedAt: number
  activeSince: number | null
  endedAt: number | null
  /** Last API call naming or listing the session. */
  lastActivity: number
  /** Times the session was logged back in after losing its login. */
  relogins: number
  /** Failed logins in a row while reconnecting (each HTTP probe that found Foundry away counts as one). */
  attempts: number
  /**
   * While reconnecting: the error code of the last failed attempt
   * (FOUNDRY_UNREACHABLE, WORLD_NOT_RUNNING… see causes.ts), or LOGIN_LOST
   * before the first. Once failed: the error code it failed with. Null otherwise.
   */
  cause: string | null
  /** While reconnecting: when the next attempt is due (epoch ms; past: in progress); null otherwise. */
  nextAttemptAt: number | null
  /**
   * The login was lost by Foundry logging the page out (sent to /join while
   * Foundry runs): log back in only if no one else is logged in as the user.
   */
  loggedOut: boolean
  /** The REST API module's relay connection while logged in (null before the first login). */
  module: ModuleState | null
}

export interface ModuleState {
  connected: boolean
  /** Since when it is connected, or not. */
  since: number
  /** Why it is (not) connected, in words. */
  reason: string
  /** A close the module does not recover from by itself, but a reload of the game page does (relay unreachable). */
  revivable: boolean
  /** Last sign of the module's connection: an attempt, an answer or a close. */
  lastSeenAt: number
  /** When the game page was last reloaded to bring it back (null: not since it last connected). */
  revivedAt: number | null
}

/** A session as the registry keeps it: no password, token or browser handle. */
export interface Session extends Lifecycle {
  id: string
  /** SHA-256 of the API key that started it. */
  ownerId: string
  stage: Stage | null
  /** Foundry base URL (route prefix included). */
  foundryUrl: string
  username: string
  /** As asked for ('' when none was named). */
  worldName: string
  clientId: string | null
  info: LoginResult | null
}

/** How a session logs in, every default applied (see startOptions). */
export interface SessionOptions {
  foundryUrl: string
  username: string
  /** '' when none was named: the running world. */
  worldName: string
  /** Foundry v14's administrator user name, for /auth ('' when none). */
  adminUsername: string
  /** Wait for the REST API module. */
  requireModule: boolean
  /** Log in even if Foundry shows the user as active elsewhere. */
  loginIfActive: boolean
  /** When logging back in, launch the world if it was shut down. */
  relaunchWorld: boolean
  /** Keep a screenshot of the page if the first login fails. */
  screenshotOnFailure: boolean
  /** Page tuning over the service's defaults. */
  page: { blockResources?: readonly BlockableResource[], noCanvas?: boolean }
}

/** Where the session goes, from the handshake. */
export interface StartTarget {
  foundryUrl: string
  username: string
  worldName?: string | undefined
}

/** A start-session body's options, as they arrive (all optional). */
export interface StartFields {
  worldName?: string | undefined
  adminUsername?: string | undefined
  requireModule?: boolean | undefined
  loginIfActive?: boolean | undefined
  relaunchWorld?: boolean | undefined
  screenshotOnFailure?: boolean | undefined
  noCanvas?: boolean | undefined
  blockResources?: readonly BlockableResource[] | undefined
}

/** The one place start-session defaults are applied: the body's world wins over the handshake's. */
export function startOptions (target: StartTarget, body: StartFields): SessionOptions {
  const page: SessionOptions['page'] = {}
  if (body.noCanvas !== undefined) page.noCanvas = body.noCanvas
  if (body.blockResources !== undefined) page.blockResources = body.blockResources
  const world = body.worldName?.trim() ?? ''
  return {
    foundryUrl: target.foundryUrl,
    username: target.username,
    worldName: world !== '' ? world : target.worldName?.trim() ?? '',
    adminUsername: body.adminUsername?.trim() ?? '',
    requireModule: body.requireModule ?? true,
    loginIfActive: body.loginIfActive ?? false,
    relaunchWorld: body.relaunchWorld ?? false,
    screenshotOnFailure: body.screenshotOnFailure ?? false,
    page
  }
}

/** Page setup for one session: the service's, then the session's own overrides. */
export function pageSetup (service: PageSetupOptions | undefined, own: SessionOptions['page']): PageSetupOptions {
  return { ...(service ?? DEFAULT_PAGE_SETUP), ...own }
}

/** Secrets a session logs in with; they never enter the registry. */
export interface SessionSecrets {
  password: string
  adminPassword?: string | undefined
  connectionToken?: string | undefined
  /** Where this session's webhooks go (start-session encryptedWebhookUrl). */
  webhookUrl?: string | undefined
  /** Their Standard Webhooks signing secret (whsec_…), the client's or generated. */
  webhookSecret?: string | undefined
}

/** What a session logs in with, held by the instance that runs it: enough to log it in again. */
export interface Credentials {
  options: SessionOptions
  secrets: SessionSecrets
}

export interface StartRequest extends Credentials {
  ownerId: string
}

interface EventBase { sessionId: string, ownerId: string, at: number }

/** Where a reconnecting session stands: why, since when, attempts so far, next attempt due. */
export interface ReconnectInfo {
  cause: string
  since: number
  attempts: number
  nextAttemptAt: number | null
}

/** The reconnect info of a session, or null when it is not reconnecting. */
export function reconnectInfo (s: Lifecycle): ReconnectInfo | null {
  if (s.status !== 'reconnecting') return null
  return { cause: s.cause ?? 'LOGIN_LOST', since: s.statusChangedAt, attempts: s.attempts, nextAttemptAt: s.nextAttemptAt }
}

/** Something that happened to a session, for listeners (the console, audit lines). */
export type SessionEvent =
  | EventBase & { type: 'stage', stage: Stage }
  /**
   * reconnect: while reconnecting (a status event follows every failed
   * attempt, with the count and the next one due); code: the error code a
   * failed session failed with.
   */
  | EventBase & { type: 'status', status: SessionStatus, reason: string, previous: SessionStatus | null, reconnect?: ReconnectInfo | undefined, code?: string | undefined }
  | EventBase & { type: 'module', connected: boolean, clientId: string | null, reason: string }
  /** The egress gate refused a connection of the session's browser (reported, never ended for it). */
  | EventBase & { type: 'egress', target: string, reason: string, refused: number }

export type SessionEventListener = (event: SessionEvent, session: Session) => void

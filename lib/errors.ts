// Every error a client can receive, by stable code. The message is a
// sentence that says what went wrong and what to do. No Fastify import:
// @fastify/error is a standalone package.
import createError from '@fastify/error'

export interface ServiceError extends Error {
  code: string
  statusCode: number
  /** Login stage that failed (reach Foundry, world launch, join, game load, module connection). */
  stage?: string
  /** Path of the Foundry page the browser was on. */
  page?: string
  /** Seconds after which a retry makes sense (429). */
  retryAfter?: number
  /** URL of a failure screenshot. */
  screenshot?: string
  /** Value of the fly-replay response header (Fly's proxy replays the request accordingly). */
  replay?: string
}

// Auth
export const ApiKeyMissing = createError('API_KEY_MISSING', 'The x-api-key header is required', 401)
export const ApiKeyInvalid = createError('API_KEY_INVALID', 'Invalid API key: send a key this service was configured with in x-api-key', 401)

// Input
export const InvalidRequest = createError('INVALID_REQUEST', '%s', 400)
export const InvalidFoundryUrl = createError('INVALID_FOUNDRY_URL', 'x-foundry-url %s', 400)
export const InvalidEncryptedPassword = createError('INVALID_ENCRYPTED_PASSWORD', '%s', 400)

// Handshakes
export const HandshakeNotFound = createError('HANDSHAKE_NOT_FOUND', 'Invalid or expired handshake token: request a new one with POST /session-handshake', 401)
export const HandshakeExpired = createError('HANDSHAKE_EXPIRED', 'Handshake token expired: request a new one with POST /session-handshake and start the session within its lifetime', 401)
export const NonceMismatch = createError('NONCE_MISMATCH', 'Invalid nonce: encrypt {"password", "nonce"} with the nonce from the same handshake', 401)
export const HandshakeStoreFull = createError('HANDSHAKE_STORE_FULL', 'Too many open handshakes: use or let expire the ones you have, then retry', 429)
export const HandshakeOwnerFull = createError('HANDSHAKE_STORE_FULL', '%s', 429)
export const RateLimited = createError('RATE_LIMITED', '%s', 429)

// Sessions
export const SessionNotFound = createError('SESSION_NOT_FOUND', 'Session not found: list your sessions with GET /session', 404)
export const ScreenshotNotFound = createError('SCREENSHOT_NOT_FOUND', 'Screenshot not found: it expired, or belongs to another API key', 404)
export const SessionCancelled = createError('SESSION_CANCELLED', 'The session was ended while it was starting', 409)
export const AtCapacity = createError('AT_CAPACITY', '%s', 429)
export const ServiceClosing = createError('SERVICE_CLOSING', 'The service is shutting down: retry against another instance or in a moment', 503)
export const BrowserUnavailable = createError('BROWSER_UNAVAILABLE', 'Chromium could not be started: %s', 503)

// Fleet (REDIS_URL set)
/** Answer carrying `fly-replay: instance=<owner>`: Fly's proxy replays the request there; a client only sees it when it bypasses the proxy. */
export const OtherMachine = createError('OTHER_MACHINE', '%s', 409)
/** A request Fly's proxy already replayed once reached a machine that still cannot serve it. */
export const ReplayMissed = createError('REPLAY_MISSED', '%s', 503)
export const FleetUnavailable = createError('FLEET_UNAVAILABLE', 'The fleet registry (Redis) cannot be reached: sessions keep running; retry in a few seconds', 503)
export const HandshakeMachineGone = createError('HANDSHAKE_NOT_FOUND', 'The machine that made this handshake has stopped (deploy or crash), and its key with it: request a new one with POST /session-handshake', 401)

// Login (the stage and page are set by the login driver)
export const FoundryUnreachable = createError('FOUNDRY_UNREACHABLE', '%s', 502)
export const FoundryTlsError = createError('FOUNDRY_TLS_ERROR', '%s', 502)
export const NotFoundry = createError('NOT_FOUNDRY', '%s', 502)
export const FoundryTimeout = createError('FOUNDRY_TIMEOUT', '%s', 504)
export const FoundryError = createError('FOUNDRY_ERROR', '%s', 502)
export const WorldNotFound = createError('WORLD_NOT_FOUND', '%s', 404)
export const WorldNotRunning = createError('WORLD_NOT_RUNNING', '%s', 409)
export const WorldMismatch = createError('WORLD_MISMATCH', '%s', 409)
export const WorldLaunchFailed = createError('WORLD_LAUNCH_FAILED', '%s', 502)
export const AdminPasswordRequired = createError('ADMIN_PASSWORD_REQUIRED', '%s', 403)
export const LicenseNotSigned = createError('FOUNDRY_LICENSE_NOT_SIGNED', '%s', 409)
export const UserNotFound = createError('USER_NOT_FOUND', '%s', 404)
export const UserBanned = createError('USER_BANNED', '%s', 403)
export const LoginRejected = createError('FOUNDRY_LOGIN_REJECTED', '%s', 422)
export const LoginLost = createError('FOUNDRY_LOGIN_LOST', '%s', 502)
export const NotGamemaster = createError('NOT_GAMEMASTER', '%s', 409)
export const ModuleNotConnected = createError('MODULE_NOT_CONNECTED', '%s', 504)
export const ModuleConnectionTaken = createError('MODULE_CONNECTION_TAKEN', '%s', 409)
export const ModuleTokenRefused = createError('MODULE_TOKEN_REFUSED', '%s', 422)
export const AdminPasswordRejected = createError('ADMIN_PASSWORD_REJECTED', '%s', 422)
export const WorldNeedsMigration = createError('WORLD_NEEDS_MIGRATION', '%s', 409)
export const WorldLocked = createError('WORLD_LOCKED', '%s', 409)
export const UserAlreadyActive = createError('USER_ALREADY_ACTIVE', '%s', 409)
export const FoundryUrlRefused = createError('FOUNDRY_URL_REFUSED', '%s', 403)
export const JoinFormUnknown = createError('JOIN_FORM_UNKNOWN', '%s', 502)

/** Codes whose message is written for clients, even on 5xx. */
export const OWN_CODES = new Set<string>([
  ServiceClosing, BrowserUnavailable, ReplayMissed, FleetUnavailable, FoundryUnreachable, FoundryTlsError, NotFoundry, FoundryTimeout,
  FoundryError, WorldLaunchFailed, LoginLost, ModuleNotConnected, JoinFormUnknown
].map((E) => new E('').code))

export function withContext<E extends Error> (err: E, ctx: { stage?: string, page?: string, retryAfter?: number, screenshot?: string, replay?: string }): E {
  return Object.assign(err, ctx)
}

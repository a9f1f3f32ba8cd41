// The error catalogue: every code a client can receive, with its status,
// when it is sent and what to do about it. The OpenAPI error descriptions of
// every route (schemas/common.ts) and the README's error table (checked by
// test/errors.test.ts, both ways) come from here. Adding a code is one line
// in CATALOGUE, plus `define(…)` below if the code is thrown as a class.
// No Fastify import: @fastify/error is a standalone package.
import createError, { type FastifyErrorConstructor } from '@fastify/error'

export interface CatalogueEntry {
  status: number
  /** When it is sent. */
  when: string
  /** What the client should do. */
  todo: string
}

const e = (status: number, when: string, todo: string): CatalogueEntry => ({ status, when, todo })

export const CATALOGUE = {
  // 400
  INVALID_REQUEST: e(400, 'A header, query parameter or body field is missing or invalid, or the request is not valid HTTP', 'Fix the field the message names'),
  INVALID_JSON: e(400, 'The body is not valid JSON', 'Send a JSON object'),
  INVALID_FOUNDRY_URL: e(400, 'x-foundry-url is not an http(s) URL, carries credentials, cannot be resolved, or points at an address FOUNDRY_URL_POLICY or FOUNDRY_URL_DENY refuses', 'Send the address you open Foundry at'),
  INVALID_WEBHOOK_URL: e(400, 'The decrypted encryptedWebhookUrl is not an http(s) URL, carries credentials, cannot be resolved, or points at an address FOUNDRY_URL_POLICY or FOUNDRY_URL_DENY refuses', 'Send the webhook URL of a public receiver (a Discord webhook URL works as it is)'),
  INVALID_ENCRYPTED_PASSWORD: e(400, 'An encrypted field cannot be decrypted with the handshake\'s key or is not the expected JSON', 'Encrypt {"password", "nonce"} with RSA-OAEP and the handshake\'s publicKey, base64 it'),
  // 401
  API_KEY_MISSING: e(401, 'No x-api-key header', 'Send one of the service\'s API keys in x-api-key'),
  API_KEY_INVALID: e(401, 'x-api-key is not one of the service\'s keys', 'Check the key; repeated wrong keys from one address lead to API_KEY_THROTTLED'),
  HANDSHAKE_NOT_FOUND: e(401, 'The handshake token is unknown, already used, or another API key\'s', 'Request a new handshake'),
  HANDSHAKE_EXPIRED: e(401, 'The handshake token is past its lifetime (HANDSHAKE_TTL_MS)', 'Request a new handshake and start the session within its lifetime'),
  NONCE_MISMATCH: e(401, 'The encrypted JSON carries another handshake\'s nonce', 'Encrypt the nonce of the same handshake'),
  // 403
  ADMIN_PASSWORD_REQUIRED: e(403, 'A world must be launched and Foundry asks for its administrator password', 'Send encryptedAdminPassword, or launch the world yourself'),
  USER_BANNED: e(403, 'Foundry says the user is banned in this world', 'Give the user a role in Foundry'),
  FOUNDRY_URL_REFUSED: e(403, 'Foundry\'s URL or a redirect it sent the browser on led to an address FOUNDRY_URL_POLICY or FOUNDRY_URL_DENY refuses', 'Check x-foundry-url and where that server redirects'),
  // 404
  WORLD_NOT_FOUND: e(404, 'The named world does not exist on the Foundry server', 'Use one of the worlds the message lists'),
  USER_NOT_FOUND: e(404, 'The user does not exist in the world', 'Use the user name exactly as Foundry\'s join page shows it'),
  SESSION_NOT_FOUND: e(404, 'No such session for this API key', 'List your sessions with GET /session'),
  SCREENSHOT_NOT_FOUND: e(404, 'No such failure screenshot for this API key, or it expired', 'Fetch it within SCREENSHOT_TTL_MS with the same key'),
  ROUTE_NOT_FOUND: e(404, 'No route for this method and path', 'See the API documentation at /docs'),
  // 408
  REQUEST_TIMEOUT: e(408, 'The request head was not received in time', 'Send the whole request at once'),
  // 409
  WORLD_NOT_RUNNING: e(409, 'No world runs and none was named, or the session\'s world shut down and relaunching was not allowed', 'Name the world in x-world-name (and send encryptedAdminPassword if Foundry has one)'),
  WORLD_MISMATCH: e(409, 'Another world is running', 'Ask for the running world the message names, or return Foundry to setup yourself'),
  WORLD_NEEDS_MIGRATION: e(409, 'The world needs a data migration before it can be launched', 'Back it up, launch it once in Foundry and confirm the migration'),
  WORLD_LOCKED: e(409, 'The world is locked against launching', 'Unlock it in Foundry\'s setup page'),
  FOUNDRY_LICENSE_NOT_SIGNED: e(409, 'Foundry shows its licence page', 'Sign the licence in a browser once'),
  USER_ALREADY_ACTIVE: e(409, 'Foundry shows the user as logged in elsewhere', 'Log that browser out, or send loginIfActive: true'),
  NOT_GAMEMASTER: e(409, 'The user is not a Gamemaster, so the REST API module does not connect', 'Log in as a Gamemaster, or send requireModule: false'),
  MODULE_CONNECTION_TAKEN: e(409, 'The relay gave the module\'s connection to another browser of this world', 'End the other session, then start again'),
  SESSION_CANCELLED: e(409, 'The session was ended while it was starting', 'Start it again if that was not meant'),
  OTHER_MACHINE: e(409, 'Fleet: the request belongs to another machine; the answer carries fly-replay, and Fly\'s proxy replays it there (a client sees this only when it bypasses the proxy)', 'Send requests to the service\'s Fly.io address, not to one machine'),
  // 413, 415
  PAYLOAD_TOO_LARGE: e(413, 'The body is over 64 KiB', 'Send a smaller body'),
  UNSUPPORTED_MEDIA_TYPE: e(415, 'The body is not application/json', 'Send the body as application/json'),
  // 422
  FOUNDRY_LOGIN_REJECTED: e(422, 'Foundry rejected the login (its own reason, e.g. JOIN.ErrorInvalidPassword)', 'Check the password'),
  ADMIN_PASSWORD_REJECTED: e(422, 'Foundry rejected the administrator password', 'Check encryptedAdminPassword'),
  MODULE_TOKEN_REFUSED: e(422, 'The relay refused the module\'s connection token', 'Pair the world with the relay again and send the new token'),
  // 429, always with Retry-After
  AT_CAPACITY: e(429, 'The service, or this API key, runs its maximum of sessions, or too many logins run at once', 'End a session, or retry after Retry-After'),
  RATE_LIMITED: e(429, 'This API key asked for more than HANDSHAKE_RATE_MAX handshakes in a window', 'Retry after Retry-After'),
  HANDSHAKE_STORE_FULL: e(429, 'Too many open handshakes, in total or for this API key', 'Use the ones you have or let them expire, then retry after Retry-After'),
  TOO_MANY_STREAMS: e(429, 'This API key, or this machine, holds its maximum of open event streams (EVENT_STREAMS_PER_KEY, EVENT_STREAMS_MAX)', 'Close a stream, or retry after Retry-After'),
  API_KEY_THROTTLED: e(429, 'Too many wrong API keys came from this client address (API_KEY_FAIL_MAX per API_KEY_FAIL_WINDOW_MS)', 'Retry after Retry-After with a right key'),
  // 431
  HEADERS_TOO_LARGE: e(431, 'The request line and headers exceed 16 KiB', 'Send shorter headers'),
  // 500
  INTERNAL_ERROR: e(500, 'An unexpected failure (logged with its details)', 'Retry, and report it if it persists'),
  // 502
  FOUNDRY_UNREACHABLE: e(502, 'The browser could not connect to the Foundry server, or Foundry stopped while the world loaded', 'Check x-foundry-url and that Foundry runs'),
  FOUNDRY_TLS_ERROR: e(502, 'The Foundry server\'s TLS certificate or handshake failed', 'Fix the server\'s certificate'),
  NOT_FOUNDRY: e(502, 'The URL answered, but not as a Foundry VTT server', 'Check x-foundry-url'),
  FOUNDRY_ERROR: e(502, 'Foundry answered with an error or a page this service cannot pass', 'Check the Foundry server\'s own log'),
  WORLD_LAUNCH_FAILED: e(502, 'Foundry failed to launch the world', 'Check the Foundry server\'s own log'),
  FOUNDRY_LOGIN_LOST: e(502, 'Foundry accepted the login, then sent the browser elsewhere', 'Start again; check whether another login replaced it'),
  JOIN_FORM_UNKNOWN: e(502, 'Foundry\'s join page has a login form this service does not recognise', 'Report it with your Foundry version'),
  // 503
  SERVICE_CLOSING: e(503, 'The service is shutting down', 'Retry against another instance or in a moment'),
  BROWSER_UNAVAILABLE: e(503, 'Chromium could not be started', 'See /health (browser.lastError); the operator must fix the Chromium setup'),
  REPLAY_MISSED: e(503, 'Fleet: a request Fly\'s proxy already replayed reached a machine that cannot serve it (it is never replayed twice)', 'Retry after Retry-After'),
  FLEET_UNAVAILABLE: e(503, 'Fleet: the registry (Redis) cannot be reached from this machine, or the machine is cut off from the fleet (its sessions wait, or move to other machines)', 'Retry after Retry-After'),
  // 504
  FOUNDRY_TIMEOUT: e(504, 'A login step timed out', 'Check that Foundry is reachable and not overloaded'),
  MODULE_NOT_CONNECTED: e(504, 'The REST API module did not connect to its relay in time', 'Follow the usual causes the message lists')
} as const satisfies Record<string, CatalogueEntry>

export type ErrorCode = keyof typeof CATALOGUE

/** Stages of a login, in order; a login failure names the one it failed in. */
export const LOGIN_STAGES = ['reach', 'admin-auth', 'world-launch', 'join', 'game-load', 'module-connection'] as const

export interface ServiceError extends Error {
  code: string
  statusCode: number
  /** Login stage that failed (one of LOGIN_STAGES). */
  stage?: string
  /** Path of the Foundry page the browser was on. */
  page?: string
  /** Seconds after which a retry makes sense: the Retry-After header of a 429 or a 503. */
  retryAfter?: number
  /** URL of a failure screenshot. */
  screenshot?: string
  /** Value of the fly-replay response header (Fly's proxy replays the request accordingly). */
  replay?: string
}

/** An error class for a catalogued code; its status comes from the catalogue. */
function define (code: ErrorCode, message = '%s'): FastifyErrorConstructor<{ code: ErrorCode, statusCode: number }> {
  return createError(code, message, CATALOGUE[code].status)
}

// Auth
export const ApiKeyMissing = define('API_KEY_MISSING', 'The x-api-key header is required')
export const ApiKeyInvalid = define('API_KEY_INVALID', 'Invalid API key: send a key this service was configured with in x-api-key')
export const ApiKeyThrottled = define('API_KEY_THROTTLED')

// Input
export const InvalidRequest = define('INVALID_REQUEST')
export const InvalidFoundryUrl = define('INVALID_FOUNDRY_URL', 'x-foundry-url %s')
export const InvalidEncryptedPassword = define('INVALID_ENCRYPTED_PASSWORD')
export const InvalidWebhookUrl = define('INVALID_WEBHOOK_URL', 'The webhook URL (encryptedWebhookUrl) %s')

// Handshakes
export const HandshakeNotFound = define('HANDSHAKE_NOT_FOUND', 'Invalid or expired handshake token: request a new one with POST /session-handshake')
export const HandshakeExpired = define('HANDSHAKE_EXPIRED', 'Handshake token expired: request a new one with POST /session-handshake and start the session within its lifetime')
export const NonceMismatch = define('NONCE_MISMATCH', 'Invalid nonce: encrypt {"password", "nonce"} with the nonce from the same handshake')
export const HandshakeStoreFull = define('HANDSHAKE_STORE_FULL', 'Too many open handshakes: use or let expire the ones you have, then retry')
/** The per-key bound on open handshakes: the same code, with the key's numbers. */
export const HandshakeOwnerFull = define('HANDSHAKE_STORE_FULL')
export const RateLimited = define('RATE_LIMITED')
export const TooManyStreams = define('TOO_MANY_STREAMS')

// Sessions
export const SessionNotFound = define('SESSION_NOT_FOUND', 'Session not found: list your sessions with GET /session')
export const ScreenshotNotFound = define('SCREENSHOT_NOT_FOUND', 'Screenshot not found: it expired, or belongs to another API key')
export const SessionCancelled = define('SESSION_CANCELLED', 'The session was ended while it was starting')
export const AtCapacity = define('AT_CAPACITY')
export const ServiceClosing = define('SERVICE_CLOSING', 'The service is shutting down: retry against another instance or in a moment')
export const BrowserUnavailable = define('BROWSER_UNAVAILABLE', 'Chromium could not be started: %s')

// Fleet (REDIS_URL set)
/** Answer carrying `fly-replay: instance=<owner>`: Fly's proxy replays the request there; a client only sees it when it bypasses the proxy. */
export const OtherMachine = define('OTHER_MACHINE')
/** A request Fly's proxy already replayed once reached a machine that still cannot serve it. */
export const ReplayMissed = define('REPLAY_MISSED')
/**
 * Retry-After (s) of every FLEET_UNAVAILABLE: Redis failed, or this machine is
 * cut off from the fleet (fenced, or its lease ran out during a login); the
 * next heartbeat (or Redis back) ends it.
 */
export const FLEET_RETRY_AFTER_S = 5

/**
 * Retry-After (s) of a replayed request that missed its machine
 * (REPLAY_MISSED: the handshake's or session's machine changed while Fly's
 * proxy replayed it): the retry is replayed to the machine the registry
 * names then.
 */
export const REPLAY_RETRY_AFTER_S = 1
export const FleetUnavailable = define('FLEET_UNAVAILABLE', 'The fleet registry (Redis) cannot be reached from this machine: retry in a few seconds')
/** This machine's lease is half gone: it does not act for the fleet until Redis answers again (the message says so). */
export const FleetCutOff = define('FLEET_UNAVAILABLE')
export const HandshakeMachineGone = define('HANDSHAKE_NOT_FOUND', 'The machine that made this handshake has stopped (deploy or crash), and its key with it: request a new one with POST /session-handshake')

// Login (the stage and page are set by the login driver)
export const FoundryUnreachable = define('FOUNDRY_UNREACHABLE')
export const FoundryTlsError = define('FOUNDRY_TLS_ERROR')
export const NotFoundry = define('NOT_FOUNDRY')
export const FoundryTimeout = define('FOUNDRY_TIMEOUT')
export const FoundryError = define('FOUNDRY_ERROR')
export const WorldNotFound = define('WORLD_NOT_FOUND')
export const WorldNotRunning = define('WORLD_NOT_RUNNING')
export const WorldMismatch = define('WORLD_MISMATCH')
export const WorldLaunchFailed = define('WORLD_LAUNCH_FAILED')
export const AdminPasswordRequired = define('ADMIN_PASSWORD_REQUIRED')
export const LicenseNotSigned = define('FOUNDRY_LICENSE_NOT_SIGNED')
export const UserNotFound = define('USER_NOT_FOUND')
export const UserBanned = define('USER_BANNED')
export const LoginRejected = define('FOUNDRY_LOGIN_REJECTED')
export const LoginLost = define('FOUNDRY_LOGIN_LOST')
export const NotGamemaster = define('NOT_GAMEMASTER')
export const ModuleNotConnected = define('MODULE_NOT_CONNECTED')
export const ModuleConnectionTaken = define('MODULE_CONNECTION_TAKEN')
export const ModuleTokenRefused = define('MODULE_TOKEN_REFUSED')
export const AdminPasswordRejected = define('ADMIN_PASSWORD_REJECTED')
export const WorldNeedsMigration = define('WORLD_NEEDS_MIGRATION')
export const WorldLocked = define('WORLD_LOCKED')
export const UserAlreadyActive = define('USER_ALREADY_ACTIVE')
export const FoundryUrlRefused = define('FOUNDRY_URL_REFUSED')
export const JoinFormUnknown = define('JOIN_FORM_UNKNOWN')

/**
 * Codes whose message is written for clients, even on 5xx: every catalogued
 * code but INTERNAL_ERROR. Anything else on a 5xx is logged and answered as
 * INTERNAL_ERROR.
 */
export const OWN_CODES = new Set<string>(Object.keys(CATALOGUE).filter((c) => c !== 'INTERNAL_ERROR'))

export function isErrorCode (code: string): code is ErrorCode {
  return Object.hasOwn(CATALOGUE, code)
}

export function withContext<E extends Error> (err: E, ctx: { stage?: string, page?: string, retryAfter?: number, screenshot?: string, replay?: string }): E {
  return Object.assign(err, ctx)
}

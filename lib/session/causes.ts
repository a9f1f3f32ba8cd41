// Why a session that lost its login could not log back in, and whether
// waiting can fix it: the one table of causes. A transient cause (Foundry
// down, answering 5xx, slow, the world not running, the relay down, the
// browser crashed, the user still shown active after a crash) keeps the
// session reconnecting, with backoff, for as long as SESSION_RECONNECT_MAX_MS
// allows; a permanent one (a password Foundry rejects, a user or world that
// is gone, an unsigned licence, an address the URL policy refuses) ends it
// at once, `failed`, with Foundry's own words. The README's table "Why a
// session stops trying" is this one. A first login is never retried: its
// client gets the error.

export type CauseKind = 'transient' | 'permanent'

export interface Cause {
  kind: CauseKind
  /** What the session does about it, in words (README). */
  what: string
}

const wait = (what: string): Cause => ({ kind: 'transient', what })
const stop = (what: string): Cause => ({ kind: 'permanent', what })

/** Error codes (lib/errors.ts) a login back in can fail with, and what each means for a session that lost its login. */
export const CAUSES = {
  // Foundry itself away or unwell: waited for (an HTTP probe, no browser, decides when to try again).
  FOUNDRY_UNREACHABLE: wait('Foundry does not answer (stopped, rebooting, DNS or network failure): waits, probing it over HTTP without a browser'),
  FOUNDRY_TIMEOUT: wait('Foundry or a login step is too slow: waits and tries again'),
  FOUNDRY_ERROR: wait('Foundry (or a proxy in front of it) answers HTTP 5xx or an unexpected page: waits, probing it over HTTP'),
  FOUNDRY_TLS_ERROR: wait('The TLS handshake failed (a certificate being renewed, a proxy being redeployed): waits and tries again'),
  NOT_FOUNDRY: wait('Something else answers at the address (a maintenance page of a proxy): waits for Foundry to be back'),
  // The world.
  WORLD_NOT_RUNNING: wait('The world is shut down: launched again with relaunchWorld, else waited for (a Gamemaster may launch it)'),
  WORLD_MISMATCH: wait('Another world runs: waits for the session\'s world to run again'),
  WORLD_LAUNCH_FAILED: wait('Foundry failed to launch the world: tries again'),
  ADMIN_PASSWORD_REQUIRED: wait('Relaunching needs the administrator password, which the session was not given: waits for a Gamemaster to launch the world'),
  // The login.
  USER_ALREADY_ACTIVE: wait('Foundry still shows the user active (a stale flag after a crash): waits until it lets go; a session Foundry logged out for another login fails instead'),
  FOUNDRY_LOGIN_LOST: wait('Foundry accepted the login, then lost it (restarting): tries again'),
  // The module and its relay.
  MODULE_NOT_CONNECTED: wait('The REST API module did not reach its relay (relay down): waits and tries again'),
  MODULE_CONNECTION_TAKEN: wait('The relay still holds the module\'s id for an earlier page: waits until it lets go'),
  // The browser.
  FLEET_UNAVAILABLE: wait('Fleet: this machine was cut off from the registry (Redis) for half its lease, so its page left Foundry: logs in again once it is back'),
  BROWSER_UNAVAILABLE: wait('Chromium could not be started: tries again'),
  // What no waiting fixes.
  FOUNDRY_LOGIN_REJECTED: stop('Foundry rejected the password (changed?): failed at once'),
  ADMIN_PASSWORD_REJECTED: stop('Foundry rejected the administrator password: failed at once'),
  USER_NOT_FOUND: stop('The user no longer exists in the world: failed at once'),
  USER_BANNED: stop('The user has no role in the world any more: failed at once'),
  NOT_GAMEMASTER: stop('The user is no longer a Gamemaster, so the module cannot connect: failed at once'),
  WORLD_NOT_FOUND: stop('The world no longer exists on the server: failed at once'),
  WORLD_LOCKED: stop('The world was locked against launching: failed at once'),
  WORLD_NEEDS_MIGRATION: stop('The world needs a data migration (Foundry was updated): failed at once; this service never migrates'),
  FOUNDRY_LICENSE_NOT_SIGNED: stop('Foundry shows its licence page: failed at once; this service never signs it'),
  FOUNDRY_URL_REFUSED: stop('Foundry\'s URL or a redirect it sent the browser on led to an address FOUNDRY_URL_POLICY or FOUNDRY_URL_DENY refuses: failed at once (what a page\'s own scripts are refused never ends a session)'),
  MODULE_TOKEN_REFUSED: stop('The relay refused the module\'s connection token: failed at once'),
  JOIN_FORM_UNKNOWN: stop('Foundry\'s join page changed to a form this service does not know: failed at once')
} as const satisfies Record<string, Cause>

export type CauseCode = keyof typeof CAUSES

/** The cause behind an error code; an unknown code is waited for (a session gives up only on what it knows cannot pass). */
export function causeOf (code: string): Cause {
  return Object.hasOwn(CAUSES, code) ? CAUSES[code as CauseCode] : wait('an unexpected failure: tries again')
}

export function isPermanent (code: string): boolean {
  return causeOf(code).kind === 'permanent'
}

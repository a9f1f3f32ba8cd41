// The login driver's public types: what a login is asked (LoginParams,
// LoginOptions) and what it returns (LoginResult). No code.
import type { EgressReason } from '../browser/egress.ts'

export interface LoginTimeouts {
  navigation: number
  joinForm: number
  worldLaunch: number
  gameReady: number
  moduleConnect: number
  /**
   * Module 2.x: how long an accepted relay connection must stay open to
   * count (a 2.x relay accepts the upgrade, then closes a refused id with
   * 4004; it sends nothing on success). Default 250 ms.
   */
  moduleStable?: number
}

export interface LoginParams {
  foundryUrl: string
  username: string
  password: string
  worldName?: string
  /** Foundry's administrator password, to pass /auth and launch the world. */
  adminPassword?: string
  /** v14: the administrator user name /auth asks for when one is configured. */
  adminUsername?: string
  /** Module 3.x connection token, seeded into localStorage before Foundry loads. */
  connectionToken?: string
  /** Wait for the REST API module's relay connection (default true). */
  requireModule?: boolean
  /** Log in even when Foundry shows the user as already logged in elsewhere. */
  loginIfActive?: boolean
  /** Launch the named world from the setup page when none runs (default true). */
  launchWorld?: boolean
}

export interface LoginOptions {
  timeouts: LoginTimeouts
  signal?: AbortSignal
  /** Called as the login moves from stage to stage (for status and logs). */
  onStage?: (stage: Stage, page: string | null) => void
  /**
   * Why the egress gate refused the last connection to host:port (as
   * egressTarget names it), if it did and none to it passed since
   * (FOUNDRY_URL_POLICY, FOUNDRY_URL_ALLOW / DENY, or 'unresolvable'). The
   * login asks it of its main frame's navigation only: Foundry's URL and the
   * redirects it follows.
   */
  refusal?: (target: string) => EgressReason | undefined
  /**
   * How the egress gate's last connection to host:port failed (ECONNREFUSED …),
   * if it did: Chromium only sees the gate's 502 for plain http://.
   */
  upstreamFailure?: (target: string) => string | undefined
}

export type Stage = 'reach' | 'admin-auth' | 'world-launch' | 'join' | 'game-load' | 'module-connection'

export interface WorldInfo {
  userId: string
  userName: string
  role: number
  worldId: string
  worldTitle: string
  systemId: string
  systemTitle: string
  systemVersion: string
  foundryVersion: string
}

export interface ModuleInfo {
  /** The id the REST API module announced to its relay; null when the module was not required. */
  clientId: string | null
  /** Module-announced custom name ('' when none). */
  customName: string
}

export interface LoginResult extends WorldInfo, ModuleInfo {}

/** localStorage key of the module 3.x connection token (JSON-encoded). */
export const CONNECTION_TOKEN_KEY = 'foundry-rest-api.connectionToken'

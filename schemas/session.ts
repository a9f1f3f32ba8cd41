import { Type } from '@sinclair/typebox'
import { BLOCKABLE } from '../lib/browser/page-setup.ts'
import { FinalStatus, RunningStatus } from '../lib/session/types.ts'

export const HandshakeHeaders = Type.Object({
  'x-foundry-url': Type.String({ minLength: 1, maxLength: 2048, description: 'Foundry server URL (http or https), as opened in a browser' }),
  'x-username': Type.String({ minLength: 1, maxLength: 256, description: 'Foundry user name as shown on the join page' }),
  'x-world-name': Type.Optional(Type.String({ maxLength: 256, description: 'World title (or id) to log into, launched if no world runs' }))
})

export const HandshakeReply = Type.Object({
  token: Type.String({ description: 'Single-use handshake token (64 hex chars)' }),
  publicKey: Type.String({ description: 'RSA-2048 public key, SPKI PEM' }),
  nonce: Type.String({ description: 'Put this in the encrypted JSON next to the password (32 hex chars)' }),
  expires: Type.Number({ description: 'Expiry, epoch milliseconds' }),
  expiresAt: Type.String({ format: 'date-time', description: 'Expiry, ISO 8601' }),
  instanceId: Type.String(),
  foundryUrl: Type.String(),
  username: Type.String(),
  worldName: Type.Optional(Type.String())
})

export const StartBody = Type.Object({
  handshakeToken: Type.String({ minLength: 1, maxLength: 256, description: 'token from POST /session-handshake' }),
  encryptedPassword: Type.String({
    minLength: 1,
    maxLength: 4096,
    description: 'base64 of RSA-OAEP (SHA-1 or SHA-256) over the UTF-8 JSON {"password": "…", "nonce": "<nonce>"} with the handshake\'s publicKey'
  }),
  worldName: Type.Optional(Type.String({ maxLength: 256, description: 'Overrides the handshake\'s x-world-name' })),
  adminUsername: Type.Optional(Type.String({
    maxLength: 256,
    description: 'Foundry v14 with an administrator user configured: its user name, sent with encryptedAdminPassword on the administrator login (not a secret; ignored where Foundry asks for none)'
  })),
  encryptedAdminPassword: Type.Optional(Type.String({
    maxLength: 4096,
    description: 'Foundry\'s administrator password, to launch a world behind /auth: base64 RSA-OAEP of {"adminPassword": "…", "nonce": "<nonce>"} with the same handshake key (or put "adminPassword" in the password JSON)'
  })),
  encryptedConnectionToken: Type.Optional(Type.String({
    maxLength: 4096,
    description: 'REST API module 3.x connection token, seeded into the browser before Foundry loads: base64 RSA-OAEP of {"connectionToken": "…", "nonce": "<nonce>"} (or put "connectionToken" in the password JSON)'
  })),
  encryptedWebhookUrl: Type.Optional(Type.String({
    maxLength: 4096,
    description: 'Where to send this session\'s webhooks (session.failed, session.reconnecting, session.recovered, module.offline, session.ended), under the same URL policy as Foundry URLs: base64 RSA-OAEP of {"webhookUrl": "…", "nonce": "<nonce>"} (or put "webhookUrl" in the password JSON). A Discord webhook URL gets Discord messages'
  })),
  encryptedWebhookSecret: Type.Optional(Type.String({
    maxLength: 4096,
    description: 'The Standard Webhooks signing secret of encryptedWebhookUrl (whsec_ + base64 of 24 to 64 random bytes): base64 RSA-OAEP of {"webhookSecret": "…", "nonce": "<nonce>"}. Without it the service makes one and returns it as webhookSecret'
  })),
  requireModule: Type.Optional(Type.Boolean({ description: 'false: succeed once the game is ready, without waiting for the REST API module (default true)' })),
  relaunchWorld: Type.Optional(Type.Boolean({ description: 'true: if the world is shut down while the session runs, launch it again when logging back in (default false)' })),
  loginIfActive: Type.Optional(Type.Boolean({ description: 'true: log in even if Foundry shows the user as logged in elsewhere (Foundry allows it)' })),
  screenshotOnFailure: Type.Optional(Type.Boolean({ description: 'true: keep a screenshot of the page if the login fails, for a few minutes, at the URL in the error\'s "screenshot"' })),
  noCanvas: Type.Optional(Type.Boolean({ description: 'Overrides PAGE_NO_CANVAS for this session: true skips Foundry\'s canvas (WebGL, scenes); false keeps it, for module requests that select or control tokens on the canvas' })),
  blockResources: Type.Optional(Type.Array(Type.Union(BLOCKABLE.map((r) => Type.Literal(r))), {
    maxItems: BLOCKABLE.length,
    uniqueItems: true,
    description: 'Overrides PAGE_BLOCK_RESOURCES for this session: resource types the page never loads ([] loads everything)'
  }))
}, { additionalProperties: true })

export const StartReply = Type.Object({
  success: Type.Literal(true),
  message: Type.String(),
  sessionId: Type.String({ format: 'uuid' }),
  clientId: Type.String({ description: 'The id the REST API module announced to its relay (module 2.x: foundry-<userId>; 3.x: the world\'s paired id); "" when the module was not required and is not connected' }),
  moduleConnected: Type.Boolean({ description: 'Whether the REST API module is connected to its relay' }),
  existingSession: Type.Optional(Type.Boolean({ description: 'true: this API key already had a session for this Foundry URL, world and user; it is returned instead of a second login' })),
  webhookSecret: Type.Optional(Type.String({ description: 'The signing secret the service made for this session\'s webhooks (encryptedWebhookUrl sent without encryptedWebhookSecret): verify webhook-signature with it. Sent once, here' }))
})

export const EndQuery = Type.Object({
  sessionId: Type.String({ minLength: 1, maxLength: 128, description: 'sessionId from POST /start-session or GET /session' })
})

export const EndReply = Type.Object({
  success: Type.Literal(true),
  status: Type.Literal('ok'),
  message: Type.String(),
  sessionId: Type.String()
})

const str = (description?: string) => Type.String(description === undefined ? {} : { description })

/** Where a reconnecting session stands (lib/session/causes.ts: what each cause means). */
export const Reconnect = Type.Object({
  cause: Type.String({ description: 'Error code of the last failed attempt (FOUNDRY_UNREACHABLE, FOUNDRY_ERROR, FOUNDRY_TIMEOUT, WORLD_NOT_RUNNING, MODULE_NOT_CONNECTED…: causes waiting can fix), or LOGIN_LOST before the first attempt' }),
  since: Type.String({ format: 'date-time', description: 'Since when the session is reconnecting' }),
  attempts: Type.Integer({ minimum: 0, description: 'Failed attempts so far (an HTTP probe that found Foundry away counts as one)' }),
  nextAttemptAt: Type.Union([Type.String({ format: 'date-time' }), Type.Null()], { description: 'When the next attempt is due (in the past: in progress); null when not known' })
}, { description: 'Present while the status is reconnecting: why, since when, attempts so far, next attempt due. No browser is held while Foundry does not answer' })

export const ScreenshotParams = Type.Object({
  id: Type.String({ pattern: '^[0-9a-f]{32}$', description: 'Screenshot id from an error\'s "screenshot" URL' })
})

export const ActiveSession = Type.Object({
  id: str('Session id'),
  sessionId: str('Same as id'),
  clientId: str('Module relay client id ("" when the module is not connected)'),
  status: Type.Union([...RunningStatus.anyOf, ...FinalStatus.anyOf], { description: 'active, reconnecting (lost its login; logging back in), failed or ended' }),
  statusReason: str('Why the status last changed'),
  statusChangedAt: Type.String({ format: 'date-time' }),
  relogins: Type.Integer({ description: 'Times the session logged back in after losing its login' }),
  reconnect: Type.Optional(Reconnect),
  module: Type.Object({
    connected: Type.Boolean({ description: 'Whether the REST API module is connected to its relay now' }),
    since: Type.String({ format: 'date-time', description: 'Since when it is (not) connected' }),
    reason: str('Why it is (not) connected: connected to its relay; connecting; the relay is unreachable (close 1006); the relay gave its id to another browser (close 4004); closed normally (close 1000: replaced); token refused (close 1008)…')
  }, { description: 'The REST API module\'s relay connection, followed for the session\'s whole life' }),
  lastActivity: Type.Number({ description: 'Epoch ms of the last API call that named or listed the session' }),
  idleMinutes: Type.Integer(),
  instanceId: str(),
  worldId: str(),
  worldTitle: str(),
  foundryVersion: str(),
  systemId: str(),
  systemTitle: str(),
  systemVersion: str(),
  customName: str(),
  foundryUrl: str(),
  username: str(),
  userId: str(),
  worldName: str(),
  startedAt: Type.String({ format: 'date-time' })
})

export const PendingSession = Type.Object({
  id: str(),
  sessionId: str(),
  status: Type.Literal('pending', { description: 'pending (login in progress)' }),
  stage: str('Login stage in progress'),
  foundryUrl: str(),
  worldName: str(),
  username: str(),
  instanceId: str(),
  startTime: Type.Number({ description: 'Epoch ms' }),
  waitingSeconds: Type.Integer()
})

export const EndedSession = Type.Intersect([ActiveSession, Type.Object({ endedAt: Type.String({ format: 'date-time' }) })])

export const ListReply = Type.Object({
  activeSessions: Type.Array(ActiveSession, { description: 'Logged in (status active), or logging back in (status reconnecting)' }),
  pendingSessions: Type.Array(PendingSession, { description: 'Logins in progress' }),
  endedSessions: Type.Array(EndedSession, { description: 'Ended or failed in the last minutes, with the reason; a failed one stays until DELETE /end-session removes it' })
})

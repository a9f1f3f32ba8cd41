import { Type, type Static } from '@sinclair/typebox'

export const HandshakeHeaders = Type.Object({
  'x-foundry-url': Type.String({ minLength: 1, maxLength: 2048, description: 'Foundry server URL (http or https), as opened in a browser' }),
  'x-username': Type.String({ minLength: 1, maxLength: 256, description: 'Foundry user name as shown on the join page' }),
  'x-world-name': Type.Optional(Type.String({ maxLength: 256, description: 'World title (or id) to log into, launched if no world runs' }))
})
export type HandshakeHeadersT = Static<typeof HandshakeHeaders>

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
  worldName: Type.Optional(Type.String({ maxLength: 256, description: 'Overrides the handshake\'s x-world-name' }))
}, { additionalProperties: true })
export type StartBodyT = Static<typeof StartBody>

export const StartReply = Type.Object({
  success: Type.Literal(true),
  message: Type.String(),
  sessionId: Type.String({ format: 'uuid' }),
  clientId: Type.String({ description: 'The id the REST API module announced to its relay (module 2.x: foundry-<userId>)' })
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

export const ActiveSession = Type.Object({
  id: str('Session id'),
  sessionId: str('Same as id'),
  clientId: str('Module relay client id'),
  status: Type.String({ description: 'active' }),
  statusReason: str(),
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
  status: Type.String({ description: 'pending (login in progress)' }),
  stage: str('Login stage in progress'),
  foundryUrl: str(),
  worldName: str(),
  username: str(),
  instanceId: str(),
  startTime: Type.Number({ description: 'Epoch ms' }),
  waitingSeconds: Type.Integer()
})

export const ListReply = Type.Object({
  activeSessions: Type.Array(ActiveSession),
  pendingSessions: Type.Array(PendingSession)
})

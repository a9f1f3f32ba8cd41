import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import type { FastifyReply } from 'fastify'
import { isFinal, reconnectInfo, startOptions, type FinalStatus, type Session, type SessionStatus } from '../lib/session/index.ts'
import { ScreenshotNotFound } from '../lib/errors.ts'
import { rememberChecks } from '../lib/access/checked-urls.ts'
import { AUTHENTICATED, JSON_BODY, SECURITY, errorResponses } from '../schemas/common.ts'
import {
  EndQuery, EndReply, ScreenshotParams, HandshakeHeaders, HandshakeReply, ListReply, StartBody, StartReply
} from '../schemas/session.ts'

const sessionRoutes: FastifyPluginAsyncTypebox = async (fastify) => {
  const { keystore, sessions, config, urlPolicy, screenshots, fleet, webhooks } = fastify
  const instanceIdJson = JSON.stringify(config.instanceId)
  // The policy's check of x-foundry-url, a passed one reused for a second
  // (lib/access/checked-urls.ts): the same URL comes handshake after handshake.
  const checkFoundryUrl = rememberChecks(async (raw) => await urlPolicy.check(raw))
  fastify.addHook('onRequest', fastify.authenticate)

  fastify.post('/session-handshake', {
    schema: {
      tags: ['sessions'],
      summary: 'Get a one-time public key and nonce to encrypt the Foundry password with',
      description: 'Encrypt the UTF-8 JSON {"password": "…", "nonce": "<nonce>"} with RSA-OAEP (SHA-1 or SHA-256) and the returned publicKey, base64 it, and send it to POST /start-session with the token before it expires.',
      security: SECURITY,
      headers: HandshakeHeaders,
      response: {
        200: HandshakeReply,
        ...errorResponses(AUTHENTICATED, JSON_BODY, 'INVALID_REQUEST', 'INVALID_FOUNDRY_URL', 'RATE_LIMITED', 'HANDSHAKE_STORE_FULL',
          'OTHER_MACHINE', 'FLEET_UNAVAILABLE')
      }
    },
    preHandler: [fastify.handshakeRateLimit, fastify.fleetPlaceHandshake],
    config: { accessLog: 'debug' }
  }, async function (request, reply) {
    const headers = request.headers
    const foundryUrl = await checkFoundryUrl(headers['x-foundry-url'])
    const worldName = headers['x-world-name']?.trim()
    const h = keystore.create({
      ownerId: request.ownerId,
      foundryUrl,
      username: headers['x-username'],
      ...(worldName !== undefined && worldName !== '' ? { worldName } : {})
    })
    // Any machine can then tell where the handshake (and its key) is.
    if (fleet !== null) await fleet.recordHandshake(h.token, h.expires)
    // The reply (HandshakeReply) written out here rather than by the
    // schema's serializer: the PEM key, four fifths of the body, is
    // serialised once per key pair (keystore), not once per handshake. A
    // string payload with a JSON content type is sent as it is.
    return (reply as FastifyReply).type('application/json; charset=utf-8').send(
      `{"token":"${h.token}","publicKey":${h.publicKeyJson},"nonce":"${h.nonce}","expires":${h.expires},` +
      `"expiresAt":"${new Date(h.expires).toISOString()}","instanceId":${instanceIdJson},` +
      `"foundryUrl":${JSON.stringify(h.foundryUrl)},"username":${JSON.stringify(h.username)}` +
      `${h.worldName !== undefined ? `,"worldName":${JSON.stringify(h.worldName)}` : ''}}`)
  })

  fastify.post('/start-session', {
    schema: {
      tags: ['sessions'],
      summary: 'Log into Foundry in a headless browser and keep the session',
      description: 'Blocks until the user is logged in, the game is ready and the REST API module in the world has connected to its relay; returns the clientId the module announced.',
      security: SECURITY,
      body: StartBody,
      response: {
        200: StartReply,
        ...errorResponses(AUTHENTICATED, JSON_BODY, 'INVALID_REQUEST', 'INVALID_ENCRYPTED_PASSWORD', 'INVALID_WEBHOOK_URL',
          'HANDSHAKE_NOT_FOUND', 'HANDSHAKE_EXPIRED', 'NONCE_MISMATCH',
          'ADMIN_PASSWORD_REQUIRED', 'USER_BANNED', 'FOUNDRY_URL_REFUSED',
          'WORLD_NOT_FOUND', 'USER_NOT_FOUND',
          'WORLD_NOT_RUNNING', 'WORLD_MISMATCH', 'WORLD_NEEDS_MIGRATION', 'WORLD_LOCKED', 'FOUNDRY_LICENSE_NOT_SIGNED',
          'USER_ALREADY_ACTIVE', 'NOT_GAMEMASTER', 'MODULE_CONNECTION_TAKEN', 'SESSION_CANCELLED',
          'FOUNDRY_LOGIN_REJECTED', 'ADMIN_PASSWORD_REJECTED', 'MODULE_TOKEN_REFUSED',
          'AT_CAPACITY',
          'FOUNDRY_UNREACHABLE', 'FOUNDRY_TLS_ERROR', 'NOT_FOUNDRY', 'JOIN_FORM_UNKNOWN', 'FOUNDRY_ERROR', 'WORLD_LAUNCH_FAILED', 'FOUNDRY_LOGIN_LOST',
          'SERVICE_CLOSING', 'BROWSER_UNAVAILABLE',
          'FOUNDRY_TIMEOUT', 'MODULE_NOT_CONNECTED',
          'OTHER_MACHINE', 'REPLAY_MISSED', 'FLEET_UNAVAILABLE')
      }
    },
    preHandler: fastify.fleetRouteStart
  }, async function (request) {
    const {
      handshakeToken, encryptedPassword, encryptedAdminPassword, encryptedConnectionToken, encryptedWebhookUrl, encryptedWebhookSecret, ...fields
    } = request.body
    const { handshake, credentials } = keystore.consume(handshakeToken, request.ownerId, {
      password: encryptedPassword,
      adminPassword: encryptedAdminPassword,
      connectionToken: encryptedConnectionToken,
      webhookUrl: encryptedWebhookUrl,
      webhookSecret: encryptedWebhookSecret
    })
    // The session's webhook: its URL under the URL policy, its signing secret the client's or made here.
    let madeSecret: string | undefined
    if (credentials.webhookUrl !== undefined) {
      credentials.webhookUrl = await webhooks.checkUrl(credentials.webhookUrl)
      const { secret, generated } = webhooks.secret(credentials.webhookSecret)
      credentials.webhookSecret = secret
      if (generated) madeSecret = secret
    } else {
      delete credentials.webhookSecret
    }
    const { session, existing } = await sessions.start({
      ownerId: request.ownerId,
      options: startOptions(handshake, fields),
      secrets: credentials
    })
    const moduleConnected = session.clientId !== null
    return {
      success: true as const,
      message: existing
        ? 'Foundry session already running for this world and user'
        : moduleConnected ? 'Foundry session started successfully' : 'Foundry session started successfully; the REST API module is not connected (not required)',
      sessionId: session.id,
      clientId: session.clientId ?? '',
      moduleConnected,
      ...(existing ? { existingSession: true } : {}),
      // The existing session keeps its own webhook: this start's was not used.
      ...(madeSecret !== undefined && !existing ? { webhookSecret: madeSecret } : {})
    }
  })

  fastify.get('/failure-screenshot/:id', {
    schema: {
      tags: ['sessions'],
      summary: 'A screenshot of a failed login\'s page (start-session with screenshotOnFailure)',
      description: 'Kept in memory for a few minutes; only the API key that started the session can fetch it. Password fields are emptied before the shot.',
      security: SECURITY,
      params: ScreenshotParams,
      response: {
        200: { type: 'string', format: 'binary', description: 'PNG image' },
        ...errorResponses(AUTHENTICATED, 'INVALID_REQUEST', 'SCREENSHOT_NOT_FOUND')
      }
    }
  }, async function (request, reply) {
    const png = screenshots.get(request.ownerId, request.params.id)
    if (png === null) throw new ScreenshotNotFound()
    return reply.type('image/png').header('cache-control', 'no-store').send(Buffer.from(png))
  })

  fastify.delete('/end-session', {
    schema: {
      tags: ['sessions'],
      summary: 'End a session, or cancel one still starting',
      security: SECURITY,
      querystring: EndQuery,
      response: {
        200: EndReply,
        ...errorResponses(AUTHENTICATED, JSON_BODY, 'INVALID_REQUEST', 'SESSION_NOT_FOUND', 'OTHER_MACHINE', 'REPLAY_MISSED', 'FLEET_UNAVAILABLE')
      }
    },
    preHandler: fastify.fleetRouteEnd
  }, async function (request) {
    const s = await sessions.end(request.ownerId, request.query.sessionId)
    const message = s.status === 'failed'
      ? 'Failed Foundry session removed'
      : s.activeSince === null ? 'Pending Foundry session cancelled' : 'Foundry session terminated'
    return {
      success: true as const,
      status: 'ok' as const,
      message,
      sessionId: request.query.sessionId
    }
  })

  fastify.get('/session', {
    schema: {
      tags: ['sessions'],
      summary: 'List this API key\'s sessions: active (and reconnecting), starting, and recently ended or failed',
      security: SECURITY,
      response: { 200: ListReply, ...errorResponses(AUTHENTICATED, 'FLEET_UNAVAILABLE') }
    }
  }, async function (request) {
    const now = Date.now()
    const mine = await sessions.list(request.ownerId)
    // In a fleet, each session names the machine that runs it.
    const where = fastify.fleetRegistry !== null ? await fastify.fleetRegistry.machinesOf(mine.map((s) => s.id)) : new Map<string, string>()
    const machine = (id: string): string => where.get(id) ?? config.instanceId
    const running: Array<Listed<'active' | 'reconnecting'>> = []
    const over: Array<Listed<FinalStatus>> = []
    for (const s of mine) {
      if (s.status === 'active' || s.status === 'reconnecting') running.push({ ...s, status: s.status })
      else if (isFinal(s.status)) over.push({ ...s, status: s.status })
    }
    return {
      activeSessions: running.map((s) => active(s, now, machine(s.id))),
      endedSessions: over.map((s) => ({
        ...active(s, now, machine(s.id)),
        endedAt: new Date(s.endedAt ?? now).toISOString()
      })),
      pendingSessions: mine.filter((s) => s.status === 'starting').map((s) => ({
        id: s.id,
        sessionId: s.id,
        status: 'pending' as const,
        stage: s.stage ?? 'reach',
        foundryUrl: s.foundryUrl,
        worldName: s.worldName,
        username: s.username,
        instanceId: machine(s.id),
        startTime: s.startedAt,
        waitingSeconds: Math.floor((now - s.startedAt) / 1000)
      }))
    }
  })
}

type Listed<S extends SessionStatus> = Session & { status: S }

/** The Reconnect object of a reconnecting session (times as ISO 8601), else nothing. */
export function reconnectWire (s: Session): { reconnect?: { cause: string, since: string, attempts: number, nextAttemptAt: string | null } } {
  const r = reconnectInfo(s)
  if (r === null) return {}
  return { reconnect: { cause: r.cause, since: new Date(r.since).toISOString(), attempts: r.attempts, nextAttemptAt: r.nextAttemptAt === null ? null : new Date(r.nextAttemptAt).toISOString() } }
}

function active<S extends SessionStatus> (s: Listed<S>, now: number, instanceId: string) {
  const i = s.info
  return {
    id: s.id,
    sessionId: s.id,
    clientId: s.clientId ?? '',
    status: s.status,
    statusReason: s.statusReason,
    statusChangedAt: new Date(s.statusChangedAt).toISOString(),
    relogins: s.relogins,
    ...reconnectWire(s),
    module: {
      connected: s.status === 'active' && s.module?.connected === true,
      since: new Date(s.module?.since ?? s.statusChangedAt).toISOString(),
      reason: s.module?.reason ?? 'not connected'
    },
    lastActivity: s.lastActivity,
    idleMinutes: Math.floor((now - s.lastActivity) / 60_000),
    instanceId,
    worldId: i?.worldId ?? '',
    worldTitle: i?.worldTitle ?? '',
    foundryVersion: i?.foundryVersion ?? '',
    systemId: i?.systemId ?? '',
    systemTitle: i?.systemTitle ?? '',
    systemVersion: i?.systemVersion ?? '',
    customName: i?.customName ?? '',
    foundryUrl: s.foundryUrl,
    username: s.username,
    userId: i?.userId ?? '',
    worldName: s.worldName,
    startedAt: new Date(s.startedAt).toISOString()
  }
}

export default sessionRoutes

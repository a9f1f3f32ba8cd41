import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import type { FastifyReply } from 'fastify'
import type { Session } from '../lib/sessions.js'
import { ScreenshotNotFound } from '../lib/errors.js'
import { AUTH_ERRORS, SECURITY, errors } from '../schemas/common.js'
import {
  EndQuery, EndReply, ScreenshotParams, HandshakeHeaders, HandshakeReply, ListReply, StartBody, StartReply
} from '../schemas/session.js'

const sessionRoutes: FastifyPluginAsyncTypebox = async (fastify) => {
  const { keystore, sessions, config, urlPolicy, screenshots } = fastify
  const instanceIdJson = JSON.stringify(config.instanceId)
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
        ...errors({ 400: 'Missing or invalid header (INVALID_REQUEST, INVALID_FOUNDRY_URL)', ...AUTH_ERRORS, 429: 'Too many handshakes for this API key, or too many open (RATE_LIMITED, HANDSHAKE_STORE_FULL); see Retry-After' })
      }
    },
    preHandler: fastify.handshakeRateLimit,
    config: { accessLog: 'debug' }
  }, async function (request, reply) {
    const headers = request.headers
    const url = await urlPolicy.check(headers['x-foundry-url'])
    const worldName = headers['x-world-name']?.trim()
    const h = keystore.create({
      ownerId: request.ownerId,
      foundryUrl: url.href,
      username: headers['x-username'],
      ...(worldName !== undefined && worldName !== '' ? { worldName } : {})
    })
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
        ...errors({
          400: 'Invalid body or undecryptable password (INVALID_REQUEST, INVALID_JSON, INVALID_ENCRYPTED_PASSWORD)',
          401: 'API key missing or unknown; handshake token unknown, used, expired or another key\'s; nonce mismatch (HANDSHAKE_NOT_FOUND, HANDSHAKE_EXPIRED, NONCE_MISMATCH)',
          403: 'Foundry needs its administrator password, the user is banned, or the browser was sent to an address FOUNDRY_URL_POLICY refuses (ADMIN_PASSWORD_REQUIRED, USER_BANNED, FOUNDRY_URL_REFUSED)',
          404: 'World or user not found (WORLD_NOT_FOUND, USER_NOT_FOUND)',
          409: 'No world running, another world running, world needs migrating or is locked, licence unsigned, user active elsewhere or not a Gamemaster, the relay gave the module\'s id to another browser, or the session was ended while starting (WORLD_NOT_RUNNING, WORLD_MISMATCH, WORLD_NEEDS_MIGRATION, WORLD_LOCKED, FOUNDRY_LICENSE_NOT_SIGNED, USER_ALREADY_ACTIVE, NOT_GAMEMASTER, MODULE_CONNECTION_TAKEN, SESSION_CANCELLED)',
          422: 'Foundry rejected the password or the administrator password, or the relay refused the module\'s connection token (FOUNDRY_LOGIN_REJECTED, ADMIN_PASSWORD_REJECTED, MODULE_TOKEN_REFUSED)',
          429: AUTH_ERRORS[429],
          502: 'Foundry unreachable, TLS failure, not a Foundry server, an unknown join page, or Foundry failed (FOUNDRY_UNREACHABLE, FOUNDRY_TLS_ERROR, NOT_FOUNDRY, JOIN_FORM_UNKNOWN, FOUNDRY_ERROR, WORLD_LAUNCH_FAILED, FOUNDRY_LOGIN_LOST)',
          503: 'Shutting down or Chromium unavailable (SERVICE_CLOSING, BROWSER_UNAVAILABLE)',
          504: 'A login step timed out, or the module never connected (FOUNDRY_TIMEOUT, MODULE_NOT_CONNECTED)'
        })
      }
    }
  }, async function (request) {
    const {
      handshakeToken, encryptedPassword, encryptedAdminPassword, encryptedConnectionToken, worldName,
      requireModule, loginIfActive, relaunchWorld, screenshotOnFailure, noCanvas, blockResources
    } = request.body
    const { handshake, credentials } = keystore.consume(handshakeToken, request.ownerId, {
      password: encryptedPassword,
      ...(encryptedAdminPassword !== undefined ? { adminPassword: encryptedAdminPassword } : {}),
      ...(encryptedConnectionToken !== undefined ? { connectionToken: encryptedConnectionToken } : {})
    })
    const world = worldName?.trim() !== undefined && worldName.trim() !== '' ? worldName.trim() : handshake.worldName
    const { session, existing } = await sessions.start({
      ownerId: request.ownerId,
      foundryUrl: handshake.foundryUrl,
      username: handshake.username,
      password: credentials.password,
      ...(credentials.adminPassword !== undefined ? { adminPassword: credentials.adminPassword } : {}),
      ...(credentials.connectionToken !== undefined ? { connectionToken: credentials.connectionToken } : {}),
      ...(world !== undefined ? { worldName: world } : {}),
      ...(requireModule !== undefined ? { requireModule } : {}),
      ...(loginIfActive !== undefined ? { loginIfActive } : {}),
      ...(relaunchWorld !== undefined ? { relaunchWorld } : {}),
      ...(screenshotOnFailure !== undefined ? { screenshotOnFailure } : {}),
      page: {
        ...(noCanvas !== undefined ? { noCanvas } : {}),
        ...(blockResources !== undefined ? { blockResources } : {})
      }
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
      ...(existing ? { existingSession: true } : {})
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
        ...errors({ 401: AUTH_ERRORS[401], 404: 'No such screenshot for this API key, or it expired (SCREENSHOT_NOT_FOUND)' })
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
        ...errors({ 400: 'sessionId missing (INVALID_REQUEST)', 401: AUTH_ERRORS[401], 404: 'No such session for this API key (SESSION_NOT_FOUND)' })
      }
    }
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
      response: { 200: ListReply, ...errors({ 401: AUTH_ERRORS[401] }) }
    }
  }, async function (request) {
    const now = Date.now()
    const mine = sessions.list(request.ownerId)
    return {
      activeSessions: mine.filter((s) => s.status === 'active' || s.status === 'reconnecting').map((s) => active(s, now, config.instanceId)),
      endedSessions: mine.filter((s) => s.status === 'ended' || s.status === 'failed').map((s) => ({
        ...active(s, now, config.instanceId),
        endedAt: new Date(s.endedAt ?? now).toISOString()
      })),
      pendingSessions: mine.filter((s) => s.status === 'starting').map((s) => ({
        id: s.id,
        sessionId: s.id,
        status: 'pending',
        stage: s.stage ?? 'reach',
        foundryUrl: s.foundryUrl,
        worldName: s.worldName,
        username: s.username,
        instanceId: config.instanceId,
        startTime: s.startedAt,
        waitingSeconds: Math.floor((now - s.startedAt) / 1000)
      }))
    }
  })
}

function active (s: Session, now: number, instanceId: string) {
  const i = s.info
  return {
    id: s.id,
    sessionId: s.id,
    clientId: s.clientId ?? '',
    status: s.status,
    statusReason: s.statusReason,
    statusChangedAt: new Date(s.statusChangedAt).toISOString(),
    relogins: s.relogins,
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

import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import { checkFoundryUrl } from '../lib/url-policy.js'
import type { Session } from '../lib/sessions.js'
import { AUTH_ERRORS, SECURITY, errors } from '../schemas/common.js'
import {
  EndQuery, EndReply, HandshakeHeaders, HandshakeReply, ListReply, StartBody, StartReply
} from '../schemas/session.js'

const sessionRoutes: FastifyPluginAsyncTypebox = async (fastify) => {
  const { keystore, sessions, config } = fastify
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
        ...errors({ 400: 'Missing or invalid header (INVALID_REQUEST, INVALID_FOUNDRY_URL)', ...AUTH_ERRORS })
      }
    }
  }, async function (request) {
    const headers = request.headers
    const url = checkFoundryUrl(headers['x-foundry-url'])
    const worldName = headers['x-world-name']?.trim()
    const h = keystore.create({
      ownerId: request.ownerId,
      foundryUrl: url.href,
      username: headers['x-username'],
      ...(worldName !== undefined && worldName !== '' ? { worldName } : {})
    })
    return {
      token: h.token,
      publicKey: h.publicKey,
      nonce: h.nonce,
      expires: h.expires,
      expiresAt: new Date(h.expires).toISOString(),
      instanceId: config.instanceId,
      foundryUrl: h.foundryUrl,
      username: h.username,
      ...(h.worldName !== undefined ? { worldName: h.worldName } : {})
    }
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
          403: 'Foundry needs its administrator password, or the user is banned (ADMIN_PASSWORD_REQUIRED, USER_BANNED)',
          404: 'World or user not found (WORLD_NOT_FOUND, USER_NOT_FOUND)',
          409: 'No world running, another world running, licence unsigned, user not a Gamemaster, or session ended while starting (WORLD_NOT_RUNNING, WORLD_MISMATCH, FOUNDRY_LICENSE_NOT_SIGNED, NOT_GAMEMASTER, SESSION_CANCELLED)',
          422: 'Foundry rejected the password (FOUNDRY_LOGIN_REJECTED)',
          429: AUTH_ERRORS[429],
          502: 'Foundry unreachable, TLS failure, not a Foundry server, or Foundry failed (FOUNDRY_UNREACHABLE, FOUNDRY_TLS_ERROR, NOT_FOUNDRY, FOUNDRY_ERROR, WORLD_LAUNCH_FAILED, FOUNDRY_LOGIN_LOST)',
          503: 'Shutting down or Chromium unavailable (SERVICE_CLOSING, BROWSER_UNAVAILABLE)',
          504: 'A login step timed out, or the module never connected (FOUNDRY_TIMEOUT, MODULE_NOT_CONNECTED)'
        })
      }
    }
  }, async function (request) {
    const { handshakeToken, encryptedPassword, worldName } = request.body
    const { handshake, credentials } = keystore.consume(handshakeToken, request.ownerId, encryptedPassword)
    const world = worldName?.trim() !== undefined && worldName.trim() !== '' ? worldName.trim() : handshake.worldName
    const session = await sessions.start({
      ownerId: request.ownerId,
      foundryUrl: handshake.foundryUrl,
      username: handshake.username,
      password: credentials.password,
      ...(world !== undefined ? { worldName: world } : {})
    })
    return {
      success: true as const,
      message: 'Foundry session started successfully',
      sessionId: session.id,
      clientId: session.clientId ?? ''
    }
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
    const wasStarting = (await sessions.end(request.ownerId, request.query.sessionId)).statusReason.includes('while starting')
    return {
      success: true as const,
      status: 'ok' as const,
      message: wasStarting ? 'Pending Foundry session cancelled' : 'Foundry session terminated',
      sessionId: request.query.sessionId
    }
  })

  fastify.get('/session', {
    schema: {
      tags: ['sessions'],
      summary: 'List this API key\'s sessions, active and starting',
      security: SECURITY,
      response: { 200: ListReply, ...errors({ 401: AUTH_ERRORS[401] }) }
    }
  }, async function (request) {
    const now = Date.now()
    const mine = sessions.list(request.ownerId)
    return {
      activeSessions: mine.filter((s) => s.status === 'active').map((s) => active(s, now, config.instanceId)),
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

// GET /session/{id}/events: one session's live events as server-sent events
// (@fastify/sse), for the console and the CLI. The stream opens with the
// session's current status (and stage, while it logs in), then carries each
// change as it happens, and ends after the session ends or fails, or after a
// last status event when the session leaves this machine (another machine
// of the fleet runs it now: follow it again there). Streams are bounded per
// API key and per machine (429 TOO_MANY_STREAMS with Retry-After); comment
// lines keep idle ones open and show when a client is gone.
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import { fastifySSE } from '@fastify/sse'
import type { ReconnectInfo, Session, SessionEvent as ManagerEvent } from '../lib/session/types.ts'
import { isFinal, reconnectInfo } from '../lib/session/types.ts'
import { AUTHENTICATED, SECURITY, errorResponses } from '../schemas/common.ts'
import { TooManyStreams, withContext } from '../lib/errors.ts'
import { EventsParams, SessionEvent, type SessionEventT, type StatusEventT } from '../schemas/events.ts'

function reconnectOf (r: ReconnectInfo | undefined): Pick<StatusEventT, 'reconnect'> {
  if (r === undefined) return {}
  return { reconnect: { cause: r.cause, since: new Date(r.since).toISOString(), attempts: r.attempts, nextAttemptAt: r.nextAttemptAt === null ? null : new Date(r.nextAttemptAt).toISOString() } }
}

/** The wire form of a manager event (no owner, times as ISO 8601). */
function wire (e: ManagerEvent): SessionEventT {
  const at = new Date(e.at).toISOString()
  switch (e.type) {
    case 'stage': return { type: 'stage', sessionId: e.sessionId, at, stage: e.stage }
    case 'status': return { type: 'status', sessionId: e.sessionId, at, status: e.status, reason: e.reason, ...reconnectOf(e.reconnect), ...(e.code !== undefined ? { code: e.code } : {}) }
    case 'module': return { type: 'module', sessionId: e.sessionId, at, connected: e.connected, clientId: e.clientId ?? '', reason: e.reason }
    case 'egress': return { type: 'egress', sessionId: e.sessionId, at, target: e.target, reason: e.reason, refused: e.refused }
  }
}

/** The events that tell a newcomer where the session is now. */
function current (s: Session): SessionEventT[] {
  const out: SessionEventT[] = [{ type: 'status', sessionId: s.id, at: new Date(s.statusChangedAt).toISOString(), status: s.status, reason: s.statusReason, ...reconnectOf(reconnectInfo(s) ?? undefined), ...(s.status === 'failed' && s.cause !== null && s.cause !== undefined ? { code: s.cause } : {}) }]
  if (s.status !== 'active' && !isFinal(s.status) && s.stage !== null) {
    out.push({ type: 'stage', sessionId: s.id, at: new Date(s.statusChangedAt).toISOString(), stage: s.stage })
  }
  return out
}

/** Same change as the last one sent (an event that raced the opening snapshot)? */
function repeats (a: SessionEventT | undefined, b: SessionEventT): boolean {
  if (a === undefined || a.type !== b.type) return false
  if (a.type === 'stage' && b.type === 'stage') return a.stage === b.stage
  if (a.type === 'status' && b.type === 'status') return a.status === b.status && a.reason === b.reason && a.reconnect?.attempts === b.reconnect?.attempts
  return false
}

const eventRoutes: FastifyPluginAsyncTypebox = async (fastify) => {
  const { sessions, config } = fastify
  await fastify.register(fastifySSE, { heartbeatInterval: 15_000 })
  /** Open streams, per API key and in all. */
  const open = new Map<string, number>()
  let total = 0
  const STREAM_RETRY_AFTER_S = 10
  fastify.addHook('onRequest', fastify.authenticate)

  fastify.get('/session/:id/events', {
    // Always a stream: no Accept negotiation (whose 406 is not in the one error shape).
    sse: 'manual',
    schema: {
      tags: ['sessions'],
      summary: 'Follow one session live: its login stages, status changes, module connection and refused connections, as server-sent events',
      description: 'A text/event-stream. Each message\'s `event:` is its type (stage, status, module, egress) and its `data:` the JSON of a SessionEvent. ' +
        'The first message is the session\'s current status (then its stage, while it logs in); the stream ends after the session ends or fails. ' +
        'Comment lines (": heartbeat") keep idle connections open. Browsers: EventSource cannot send x-api-key; read the stream with fetch (see public/client.ts).',
      security: SECURITY,
      params: EventsParams,
      response: {
        200: { description: 'The session\'s events', content: { 'text/event-stream': { schema: SessionEvent } } },
        ...errorResponses(AUTHENTICATED, 'INVALID_REQUEST', 'SESSION_NOT_FOUND', 'TOO_MANY_STREAMS', 'OTHER_MACHINE', 'REPLAY_MISSED', 'FLEET_UNAVAILABLE')
      }
    },
    preHandler: fastify.fleetRouteEvents,
    config: { accessLog: 'debug' }
  }, async function (request, reply) {
    const { id } = request.params
    const owner = request.ownerId
    if (total >= config.EVENT_STREAMS_MAX) {
      throw withContext(new TooManyStreams(`This machine holds its maximum of ${config.EVENT_STREAMS_MAX} event streams: retry later`), { retryAfter: STREAM_RETRY_AFTER_S })
    }
    if ((open.get(owner) ?? 0) >= config.EVENT_STREAMS_PER_KEY) {
      throw withContext(new TooManyStreams(`This API key holds its maximum of ${config.EVENT_STREAMS_PER_KEY} event streams: close one first`), { retryAfter: STREAM_RETRY_AFTER_S })
    }
    const queue: SessionEventT[] = []
    let wake: (() => void) | null = null
    let closed = false
    /** The session left this machine: the stream ends once the queue is sent. */
    let leaving = false
    const push = (e: SessionEventT): void => { queue.push(e); wake?.() }
    // Subscribe first (it refuses another key's or an unknown id with 404),
    // then read the current state: nothing between the two is lost.
    const unsubscribe = await sessions.subscribe(owner, id, (event) => { push(wire(event)) })
    const stopLeave = sessions.onLeave((left) => {
      if (left !== id || leaving) return
      leaving = true
      push({ type: 'status', sessionId: id, at: new Date().toISOString(), status: 'reconnecting', reason: `the session left machine ${config.instanceId} for another machine of the fleet: follow it again with GET /session/${id}/events` })
    })
    open.set(owner, (open.get(owner) ?? 0) + 1)
    total++
    let counted = true
    const close = (): void => {
      closed = true
      unsubscribe()
      stopLeave()
      if (counted) {
        counted = false
        total--
        const n = (open.get(owner) ?? 1) - 1
        if (n <= 0) open.delete(owner)
        else open.set(owner, n)
      }
      wake?.()
    }
    reply.sse.onClose(close)
    let session: Session | undefined
    try {
      session = (await sessions.list(request.ownerId)).find((s) => s.id === id)
    } catch (err) {
      close()
      throw err
    }
    const opening = session !== undefined ? current(session) : []
    queue.unshift(...opening)

    async function * stream (): AsyncGenerator<{ event: string, data: SessionEventT }> {
      let last: SessionEventT | undefined
      const lastOf: Partial<Record<SessionEventT['type'], SessionEventT>> = {}
      try {
        for (;;) {
          while (queue.length === 0 && !closed) await new Promise<void>((resolve) => { wake = resolve })
          wake = null
          const e = queue.shift()
          if (e === undefined) return
          if (!repeats(lastOf[e.type], e)) {
            yield { event: e.type, data: e }
            lastOf[e.type] = last = e
          }
          if (last?.type === 'status' && isFinal(last.status)) return
          if (leaving && queue.length === 0) return
        }
      } finally {
        close()
      }
    }
    await reply.sse.send(stream())
  })
}

export default eventRoutes

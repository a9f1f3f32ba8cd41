// Audit lines for the operator (issue 13): one `info` line per session
// started, ended or failed — who (the API key's short digest, never the
// key), which Foundry origin, world and user. No secrets: a session record
// holds none, and only these fields are written.
import type { Logger } from '../logger.ts'
import type { SessionEventListener } from './types.ts'

export type AuditEvent = 'session.started' | 'session.ended' | 'session.failed'

/** First 12 hex digits of the owner id (the API key's SHA-256). */
export function keyDigest (ownerId: string): string {
  return ownerId.slice(0, 12)
}

function origin (url: string): string {
  try { return new URL(url).origin } catch { return '' }
}

/** A global session-event listener writing the audit lines. */
export function auditListener (log: Logger): SessionEventListener {
  return (event, session) => {
    if (event.type !== 'status') return
    let audit: AuditEvent
    if (event.status === 'active' && event.previous === 'starting') audit = 'session.started'
    else if (event.status === 'ended') audit = 'session.ended'
    else if (event.status === 'failed') audit = 'session.failed'
    else return
    log.info({
      audit,
      sessionId: session.id,
      key: keyDigest(session.ownerId),
      foundry: origin(session.foundryUrl),
      world: session.info?.worldTitle ?? session.worldName,
      user: session.username,
      ...(audit === 'session.started' ? {} : { reason: event.reason })
    }, audit.replace('.', ' '))
  }
}

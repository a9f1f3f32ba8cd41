// Session events fan-out: global listeners (audit lines, metrics) and
// per-session listeners (the console's event stream). Ownership is checked
// by the manager before a per-session listener is added. A listener that
// throws is logged and does not stop the others.
import type { Logger } from '../logger.ts'
import type { Session, SessionEvent, SessionEventListener } from './types.ts'

export interface SessionEvents {
  emit: (event: SessionEvent, session: Session) => void
  /** Every event of every session; returns the unsubscribe function. */
  onEvent: (listener: SessionEventListener) => () => void
  /** One session's events; returns the unsubscribe function. */
  onSession: (sessionId: string, listener: SessionEventListener) => () => void
}

export function createSessionEvents (log: Logger): SessionEvents {
  const global = new Set<SessionEventListener>()
  const bySession = new Map<string, Set<SessionEventListener>>()

  function call (listener: SessionEventListener, event: SessionEvent, session: Session): void {
    try {
      listener(event, session)
    } catch (err) {
      log.error({ err, sessionId: event.sessionId, event: event.type }, 'a session event listener failed')
    }
  }

  return {
    emit (event, session) {
      for (const l of [...global]) call(l, event, session)
      for (const l of [...bySession.get(event.sessionId) ?? []]) call(l, event, session)
    },
    onEvent (listener) {
      global.add(listener)
      return () => { global.delete(listener) }
    },
    onSession (sessionId, listener) {
      let set = bySession.get(sessionId)
      if (set === undefined) bySession.set(sessionId, set = new Set())
      set.add(listener)
      return () => {
        set.delete(listener)
        if (set.size === 0 && bySession.get(sessionId) === set) bySession.delete(sessionId)
      }
    }
  }
}

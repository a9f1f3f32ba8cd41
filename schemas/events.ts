// The events of GET /session/{id}/events: one server-sent event per change,
// its `event:` field the type, its `data:` the JSON below.
import { Type, type Static } from '@sinclair/typebox'
import { SessionStatus } from '../lib/session/types.ts'
import { Reconnect } from './session.ts'

const common = {
  sessionId: Type.String({ description: 'The session the event is about' }),
  at: Type.String({ format: 'date-time', description: 'When it happened' })
}

export const StageEvent = Type.Object({
  type: Type.Literal('stage'),
  ...common,
  stage: Type.String({ description: 'Login stage entered: reach, admin-auth, world-launch, join, game-load, module-connection' })
}, { title: 'StageEvent', description: 'The login (first login or logging back in) entered a stage' })

export const StatusEvent = Type.Object({
  type: Type.Literal('status'),
  ...common,
  status: Type.Unsafe<Static<typeof SessionStatus>>({ ...SessionStatus, description: 'starting, active, reconnecting, failed or ended' }),
  reason: Type.String({ description: 'Why, in words (for reconnecting and failed: what was lost or went wrong)' }),
  reconnect: Type.Optional(Reconnect),
  code: Type.Optional(Type.String({ description: 'With status failed: the error code it failed with (FOUNDRY_LOGIN_REJECTED, …; see the README\'s errors and causes)' }))
}, { title: 'StatusEvent', description: 'The session\'s status changed, or a reconnecting session\'s attempt failed (with reconnect: the cause, attempts so far and the next attempt due); the first event of every stream is the current status. The stream ends after failed or ended' })

export const ModuleEvent = Type.Object({
  type: Type.Literal('module'),
  ...common,
  connected: Type.Boolean({ description: 'Whether the REST API module is connected to its relay now' }),
  clientId: Type.String({ description: 'The id the module announced to its relay ("" when not known)' }),
  reason: Type.String({ description: 'Why it connected or was lost, in words' })
}, { title: 'ModuleEvent', description: 'The REST API module connected to its relay, or lost its connection' })

export const EgressEvent = Type.Object({
  type: Type.Literal('egress'),
  ...common,
  target: Type.String({ description: 'host:port the page tried to reach (never a path)' }),
  reason: Type.String({ description: 'Why the egress gate refused it: deny-list (FOUNDRY_URL_DENY), policy-<kind> (FOUNDRY_URL_POLICY refuses loopback, private, link-local, metadata… addresses), metadata-host, unresolvable, gate-port, bad-target' }),
  refused: Type.Integer({ description: 'Connections refused so far in this login\'s browser context' })
}, { title: 'EgressEvent', description: 'The session\'s page tried to reach an address the service refuses. Reported (the first at once, then at most one per 10 s), never ended for: the connection was refused, nothing left' })

export const SessionEvent = Type.Union([StageEvent, StatusEvent, ModuleEvent, EgressEvent], { $id: 'SessionEvent', title: 'SessionEvent' })
export type SessionEventT = Static<typeof SessionEvent>
export type StatusEventT = Static<typeof StatusEvent>

export const EventsParams = Type.Object({
  id: Type.String({ minLength: 1, maxLength: 128, description: 'sessionId from POST /start-session or GET /session' })
})

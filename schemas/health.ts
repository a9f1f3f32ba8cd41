import { Type } from '@sinclair/typebox'

export const HealthReply = Type.Object({
  status: Type.Union([Type.Literal('ok'), Type.Literal('unavailable')]),
  browser: Type.Object({
    chromium: Type.String({ description: 'running, launching, down (relaunched on demand) or closed' }),
    version: Type.Union([Type.String(), Type.Null()]),
    contexts: Type.Integer(),
    loginsRunning: Type.Integer(),
    maxConcurrentLogins: Type.Integer(),
    lastError: Type.Union([Type.String(), Type.Null()])
  }),
  sessions: Type.Object({ starting: Type.Integer(), active: Type.Integer(), reconnecting: Type.Integer() }),
  instanceId: Type.String(),
  fleet: Type.Optional(Type.Object({
    registry: Type.Union([Type.Literal('connected'), Type.Literal('unreachable')], { description: 'Whether Redis answers; while unreachable, sessions keep running and fleet requests get 503 FLEET_UNAVAILABLE' })
  }, { description: 'Present with REDIS_URL' })),
  uptimeSeconds: Type.Integer()
})

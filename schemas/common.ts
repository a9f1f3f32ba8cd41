import { Type, type Static } from '@sinclair/typebox'

/** The one error shape, for every status and route. */
export const ErrorReply = Type.Object({
  statusCode: Type.Integer({ description: 'The HTTP status, repeated' }),
  code: Type.String({ description: 'Stable machine-readable name, e.g. HANDSHAKE_EXPIRED' }),
  error: Type.String({ description: 'What went wrong and what to do, in a sentence' }),
  stage: Type.Optional(Type.String({ description: 'Login stage that failed: reach, world-launch, join, game-load, module-connection' })),
  page: Type.Optional(Type.String({ description: 'Path of the Foundry page the browser was on' })),
  screenshot: Type.Optional(Type.String({ description: 'URL of a screenshot of the page at the failure (when screenshotOnFailure was set); fetch it with the same API key' }))
}, { $id: 'ErrorReply', title: 'Error' })
export type ErrorReplyT = Static<typeof ErrorReply>

const ref = Type.Ref(ErrorReply)

/** Response entries for the listed error statuses, each with a description for the OpenAPI document. */
export function errors (described: Record<number, string>): Record<number, unknown> {
  const out: Record<number, unknown> = {}
  for (const [status, description] of Object.entries(described)) {
    out[Number(status)] = { ...ref, description }
  }
  return out
}

export const AUTH_ERRORS = {
  401: 'API key missing or unknown (API_KEY_MISSING, API_KEY_INVALID)',
  429: 'The service is at capacity (AT_CAPACITY, HANDSHAKE_STORE_FULL); see Retry-After'
}

export const SECURITY = [{ apiKey: [] as string[] }]

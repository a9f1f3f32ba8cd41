import { Type } from '@sinclair/typebox'
import { CATALOGUE, LOGIN_STAGES, type ErrorCode } from '../lib/errors.ts'

/** The one error shape, for every status and route. */
export const ErrorReply = Type.Object({
  statusCode: Type.Integer({ description: 'The HTTP status, repeated' }),
  code: Type.String({ description: 'Stable machine-readable name, e.g. HANDSHAKE_EXPIRED' }),
  error: Type.String({ description: 'What went wrong and what to do, in a sentence' }),
  stage: Type.Optional(Type.String({ description: `Login stage that failed: ${LOGIN_STAGES.join(', ')}` })),
  page: Type.Optional(Type.String({ description: 'Path of the Foundry page the browser was on' })),
  screenshot: Type.Optional(Type.String({ description: 'URL of a screenshot of the page at the failure (when screenshotOnFailure was set); fetch it with the same API key' }))
}, { $id: 'ErrorReply', title: 'Error' })

const ref = Type.Ref(ErrorReply)

/** Answers any route can give: Node's parser (408, 431) and an unexpected failure (500). */
export const EVERY_ROUTE: ErrorCode[] = ['REQUEST_TIMEOUT', 'HEADERS_TOO_LARGE', 'INTERNAL_ERROR']
/** Answers of every route behind the API key. */
export const AUTHENTICATED: ErrorCode[] = ['API_KEY_MISSING', 'API_KEY_INVALID', 'API_KEY_THROTTLED']
/** Answers of a route that parses a JSON body. */
export const JSON_BODY: ErrorCode[] = ['INVALID_JSON', 'PAYLOAD_TOO_LARGE', 'UNSUPPORTED_MEDIA_TYPE']

/**
 * OpenAPI response entries for the codes a route can return (plus
 * EVERY_ROUTE's), grouped by their status in the error catalogue, each
 * status described by its codes: when each is sent and what to do.
 */
export function errorResponses (...codes: Array<ErrorCode | ErrorCode[]>): Record<number, unknown> {
  const byStatus = new Map<number, ErrorCode[]>()
  for (const code of new Set([...codes.flat(), ...EVERY_ROUTE])) {
    const { status } = CATALOGUE[code]
    byStatus.set(status, [...(byStatus.get(status) ?? []), code])
  }
  const out: Record<number, unknown> = {}
  for (const status of [...byStatus.keys()].sort((a, b) => a - b)) {
    const lines = (byStatus.get(status) ?? []).map((c) => `- \`${c}\`: ${CATALOGUE[c].when}. ${CATALOGUE[c].todo}.`)
    out[status] = { ...ref, description: (status === 429 ? 'Always with Retry-After.\n\n' : '') + lines.join('\n') }
  }
  return out
}

export const SECURITY = [{ apiKey: [] as string[] }]

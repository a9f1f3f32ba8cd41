// One error shape for everything: validation errors, typed service errors,
// Fastify's own errors and crashes. Internal messages stay in the log.
import fp from 'fastify-plugin'
import type { FastifyError, FastifyPluginAsync, FastifyServerOptions } from 'fastify'
import { CATALOGUE, OWN_CODES, ServiceClosing, type ErrorCode, type ServiceError } from '../lib/errors.ts'

// Fastify's own error codes, as catalogued codes.
const FASTIFY_CODES: Record<string, ErrorCode> = {
  FST_ERR_CTP_INVALID_JSON_BODY: 'INVALID_JSON',
  FST_ERR_CTP_EMPTY_JSON_BODY: 'INVALID_JSON',
  FST_ERR_CTP_BODY_TOO_LARGE: 'PAYLOAD_TOO_LARGE',
  FST_ERR_CTP_INVALID_MEDIA_TYPE: 'UNSUPPORTED_MEDIA_TYPE',
  FST_ERR_CTP_INVALID_CONTENT_LENGTH: 'INVALID_REQUEST',
  FST_ERR_BAD_URL: 'INVALID_REQUEST',
  FST_ERR_ASYNC_CONSTRAINT: 'INVALID_REQUEST'
}

const FASTIFY_MESSAGES: Partial<Record<ErrorCode, string>> = {
  INVALID_JSON: 'The request body is not valid JSON',
  PAYLOAD_TOO_LARGE: 'The request body is too large',
  UNSUPPORTED_MEDIA_TYPE: 'Send the body as application/json'
}

type ValidationItem = { instancePath: string, message?: string, keyword: string, params: Record<string, unknown> }

function describeValidation (context: string | undefined, items: ValidationItem[]): string {
  const where = context === 'headers' ? 'header' : context === 'querystring' ? 'query parameter' : 'body field'
  const parts = items.slice(0, 3).map((v) => {
    if (v.keyword === 'required') return `${where} ${String(v.params.missingProperty)} is required`
    const name = v.instancePath.replace(/^\//, '').replace(/\//g, '.')
    return name === '' ? `${context ?? 'request'} ${v.message ?? 'is invalid'}` : `${where} ${name} ${v.message ?? 'is invalid'}`
  })
  return `Invalid request: ${parts.join('; ')}`
}

const errorHandler: FastifyPluginAsync = async (fastify) => {
  // A request that arrives while the service closes is answered 503
  // SERVICE_CLOSING in the one shape (Fastify's own return503OnClosing
  // answers without a code, so app.ts turns it off).
  let closing = false
  fastify.addHook('preClose', async () => { closing = true })
  fastify.addHook('onRequest', async (_request, reply) => {
    if (closing) {
      void reply.header('connection', 'close')
      throw new ServiceClosing()
    }
  })

  fastify.setErrorHandler(function (err: FastifyError & ServiceError, request, reply) {
    if (err.validation !== undefined) {
      return reply.code(400).send({
        statusCode: 400,
        code: 'INVALID_REQUEST',
        error: describeValidation(err.validationContext, err.validation as ValidationItem[])
      })
    }
    let status = typeof err.statusCode === 'number' && err.statusCode >= 400 && err.statusCode < 600 ? err.statusCode : 500
    let code = typeof err.code === 'string' ? err.code : 'INTERNAL_ERROR'
    let message = err.message
    if (code.startsWith('FST_')) {
      const mapped = FASTIFY_CODES[code]
      if (mapped !== undefined) {
        code = mapped
        message = FASTIFY_MESSAGES[mapped] ?? 'The request is malformed'
      } else if (status < 500) {
        code = 'INVALID_REQUEST'
      } else {
        status = 500
      }
    }
    const exposed = status < 500 || OWN_CODES.has(code)
    if (!exposed) {
      request.log.error({ err }, 'request failed')
      code = 'INTERNAL_ERROR' satisfies ErrorCode
      status = CATALOGUE.INTERNAL_ERROR.status
      message = 'Internal server error: the failure was logged; retry, and report it if it persists'
    } else if (status >= 500) {
      request.log.warn({ code, stage: err.stage, page: err.page }, message)
    }
    if (err.retryAfter !== undefined) void reply.header('retry-after', String(err.retryAfter))
    if (err.replay !== undefined) void reply.header('fly-replay', err.replay)
    return reply.code(status).send({
      statusCode: status,
      code,
      error: message,
      ...(err.stage !== undefined ? { stage: err.stage } : {}),
      ...(err.page !== undefined ? { page: err.page } : {}),
      ...(err.screenshot !== undefined ? { screenshot: err.screenshot } : {})
    })
  })

  fastify.setNotFoundHandler(function (request, reply) {
    const code: ErrorCode = 'ROUTE_NOT_FOUND'
    return reply.code(404).send({
      statusCode: 404,
      code,
      error: `No route ${request.method} ${request.url.split('?')[0]}: see the API documentation at /docs`
    })
  })
}

export default fp(errorHandler, { name: 'error-handler', fastify: '5.x' })

/** Largest request head (request line and headers) Node accepts; past it, 431. */
export const MAX_HEADER_BYTES = 16 * 1024

/**
 * Errors Node's HTTP parser raises before Fastify sees a request (headers too
 * large, malformed request line), answered in the one error shape. Nothing
 * is logged: the error carries the raw request bytes, API key included.
 */
export const clientErrorHandler: NonNullable<FastifyServerOptions['clientErrorHandler']> = function (err, socket) {
  const e = err as Error & { code?: string }
  if (e.code === 'ECONNRESET' || socket.destroyed) return
  const [code, text, message]: [ErrorCode, string, string] = e.code === 'HPE_HEADER_OVERFLOW'
    ? ['HEADERS_TOO_LARGE', 'Request Header Fields Too Large', `The request line and headers exceed ${MAX_HEADER_BYTES} bytes`]
    : e.code === 'ERR_HTTP_REQUEST_TIMEOUT'
      ? ['REQUEST_TIMEOUT', 'Request Timeout', 'The request was not received in time']
      : ['INVALID_REQUEST', 'Bad Request', 'The request is not valid HTTP']
  const status = CATALOGUE[code].status
  const body = JSON.stringify({ statusCode: status, code, error: message })
  if (socket.writable) {
    socket.write(`HTTP/1.1 ${status} ${text}\r\nConnection: close\r\nContent-Length: ${Buffer.byteLength(body)}\r\nContent-Type: application/json; charset=utf-8\r\n\r\n${body}`)
  }
  socket.destroy()
}

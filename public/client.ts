// The typed client of this service: handshake, RSA-OAEP encryption with
// WebCrypto, start, list, end, and a session's live events. The same module
// runs in Node (the CLI, the tests) and, compiled, in the browser (the
// console at /console): it uses only fetch, WebCrypto, atob/btoa and
// TextEncoder/TextDecoder, and imports nothing at run time. Its types come
// from the service's TypeBox schemas, so a schema change breaks the build.
import type { Static } from '@sinclair/typebox'
import type { EndReply, HandshakeReply, ListReply, StartBody, StartReply } from '../schemas/session.ts'
import type { ErrorReply } from '../schemas/common.ts'
import type { SessionEvent as SessionEventSchema } from '../schemas/events.ts'

export type HandshakeReplyT = Static<typeof HandshakeReply>
export type StartReplyT = Static<typeof StartReply>
export type ListReplyT = Static<typeof ListReply>
export type EndReplyT = Static<typeof EndReply>
export type ErrorReplyT = Static<typeof ErrorReply>
export type SessionEvent = Static<typeof SessionEventSchema>
export type ActiveSessionT = ListReplyT['activeSessions'][number]
export type PendingSessionT = ListReplyT['pendingSessions'][number]
export type EndedSessionT = ListReplyT['endedSessions'][number]

/** start-session body fields other than the handshake token and the encrypted secrets. */
export type StartFlags = Pick<Static<typeof StartBody>,
'adminUsername' | 'requireModule' | 'loginIfActive' | 'relaunchWorld' | 'screenshotOnFailure' | 'noCanvas' | 'blockResources'>

export interface ClientOptions {
  /** Base URL of the service, e.g. http://localhost:3010 ("" in the console: the page's own origin). */
  server: string
  apiKey: string
  /** fetch to use (default: the global one). */
  fetch?: typeof fetch
}

export interface StartRequest extends StartFlags {
  foundryUrl: string
  username: string
  password: string
  worldName?: string
  adminPassword?: string
  connectionToken?: string
  /** Where to send this session's webhooks (encrypted like the password); a Discord webhook URL gets Discord messages. */
  webhookUrl?: string
  /** Their signing secret (whsec_…); without one the service makes one and returns it as webhookSecret. */
  webhookSecret?: string
  /** Called with the new session's events while the login runs (stages, status, module). */
  onEvent?: (event: SessionEvent) => void
  signal?: AbortSignal
}

/** An error reply of the service (or a network failure, code NETWORK_ERROR), with its code and sentence. */
export class ApiError extends Error {
  readonly statusCode: number
  readonly code: string
  readonly stage: string | undefined
  readonly page: string | undefined
  readonly screenshot: string | undefined

  constructor (body: ErrorReplyT) {
    super(body.error)
    this.name = 'ApiError'
    this.statusCode = body.statusCode
    this.code = body.code
    this.stage = body.stage
    this.page = body.page
    this.screenshot = body.screenshot
  }
}

/** base64 of RSA-OAEP (SHA-256) over the UTF-8 JSON of `payload`, with an SPKI PEM public key. */
export async function encrypt (publicKeyPem: string, payload: Record<string, string>): Promise<string> {
  const der = Uint8Array.from(atob(publicKeyPem.replace(/-----[^-]+-----|\s/g, '')), (c) => c.charCodeAt(0))
  const key = await crypto.subtle.importKey('spki', der, { name: 'RSA-OAEP', hash: 'SHA-256' }, false, ['encrypt'])
  const cipher = new Uint8Array(await crypto.subtle.encrypt({ name: 'RSA-OAEP' }, key, new TextEncoder().encode(JSON.stringify(payload))))
  let binary = ''
  for (const byte of cipher) binary += String.fromCharCode(byte)
  return btoa(binary)
}

/**
 * Server-sent events from a fetch response body: yields {event, data} per
 * message. (A browser's EventSource cannot send the x-api-key header, so
 * the stream is read with fetch, the same way in Node and the browser.)
 */
export async function * parseEventStream (body: ReadableStream<Uint8Array>): AsyncGenerator<{ event: string, data: string, id: string | null }> {
  const reader = body.getReader()
  const decoder = new TextDecoder()
  let buffer = ''
  let event = ''
  let data: string[] = []
  let id: string | null = null
  try {
    for (;;) {
      const { value, done } = await reader.read()
      buffer += done ? decoder.decode() : decoder.decode(value, { stream: true })
      const lines = buffer.split(/\r\n|\r|\n/)
      // The last piece may be an incomplete line (complete only at the end).
      buffer = done ? '' : lines.pop() ?? ''
      for (const line of lines) {
        if (line === '') {
          if (data.length > 0) yield { event: event === '' ? 'message' : event, data: data.join('\n'), id }
          event = ''
          data = []
          continue
        }
        if (line.startsWith(':')) continue // comment (heartbeat)
        const colon = line.indexOf(':')
        const field = colon === -1 ? line : line.slice(0, colon)
        let value = colon === -1 ? '' : line.slice(colon + 1)
        if (value.startsWith(' ')) value = value.slice(1)
        if (field === 'event') event = value
        else if (field === 'data') data.push(value)
        else if (field === 'id') id = value
      }
      if (done) return
    }
  } finally {
    reader.releaseLock()
    await body.cancel().catch(() => {})
  }
}

/** Login stages in words, for people. */
export const STAGE_TEXT: Record<string, string> = {
  reach: 'Reaching Foundry',
  'admin-auth': 'Passing the administrator login',
  'world-launch': 'Launching the world',
  join: 'Joining the world',
  'game-load': 'Loading the game',
  'module-connection': 'Waiting for the REST API module'
}

const EVENT_TYPES = new Set(['stage', 'status', 'module', 'egress'])

export interface Client {
  handshake: (h: { foundryUrl: string, username: string, worldName?: string }) => Promise<HandshakeReplyT>
  /** Handshake, encrypt the secrets, start-session; resolves once the session is active. */
  start: (req: StartRequest) => Promise<StartReplyT>
  list: () => Promise<ListReplyT>
  end: (sessionId: string) => Promise<EndReplyT>
  /** The session's events, from its current status on, until it ends or `signal` aborts. */
  events: (sessionId: string, opts?: { signal?: AbortSignal }) => AsyncGenerator<SessionEvent>
}

export function createClient (opts: ClientOptions): Client {
  const base = opts.server.replace(/\/+$/, '')
  const doFetch = opts.fetch ?? ((input, init) => fetch(input, init))

  async function request<T> (method: string, path: string, init: { headers?: Record<string, string>, body?: unknown, signal?: AbortSignal } = {}): Promise<T> {
    let res: Response
    try {
      res = await doFetch(`${base}${path}`, {
        method,
        headers: {
          'x-api-key': opts.apiKey,
          ...(init.body !== undefined ? { 'content-type': 'application/json' } : {}),
          ...init.headers
        },
        ...(init.body !== undefined ? { body: JSON.stringify(init.body) } : {}),
        ...(init.signal !== undefined ? { signal: init.signal } : {})
      })
    } catch (err) {
      if ((err as Error).name === 'AbortError') throw err
      throw new ApiError({ statusCode: 0, code: 'NETWORK_ERROR', error: `Cannot reach the service at ${base === '' ? 'this page\'s origin' : base}: ${(err as Error).message}` })
    }
    const text = await res.text()
    let body: unknown
    try { body = JSON.parse(text) } catch { body = undefined }
    if (!res.ok) {
      const e = body as Partial<ErrorReplyT> | undefined
      throw new ApiError(typeof e?.code === 'string' && typeof e.error === 'string'
        ? { ...e, statusCode: res.status, code: e.code, error: e.error }
        : { statusCode: res.status, code: 'UNEXPECTED_REPLY', error: `The service answered ${res.status} without an error body: ${text.slice(0, 200)}` })
    }
    return body as T
  }

  async function handshake (h: { foundryUrl: string, username: string, worldName?: string }): Promise<HandshakeReplyT> {
    return await request<HandshakeReplyT>('POST', '/session-handshake', {
      headers: {
        'x-foundry-url': h.foundryUrl,
        'x-username': h.username,
        ...(h.worldName !== undefined && h.worldName !== '' ? { 'x-world-name': h.worldName } : {})
      }
    })
  }

  async function list (): Promise<ListReplyT> {
    return await request<ListReplyT>('GET', '/session')
  }

  async function end (sessionId: string): Promise<EndReplyT> {
    return await request<EndReplyT>('DELETE', `/end-session?sessionId=${encodeURIComponent(sessionId)}`)
  }

  async function * events (sessionId: string, o: { signal?: AbortSignal } = {}): AsyncGenerator<SessionEvent> {
    let res: Response
    try {
      res = await doFetch(`${base}/session/${encodeURIComponent(sessionId)}/events`, {
        headers: { 'x-api-key': opts.apiKey, accept: 'text/event-stream' },
        ...(o.signal !== undefined ? { signal: o.signal } : {})
      })
    } catch (err) {
      if ((err as Error).name === 'AbortError') return
      throw new ApiError({ statusCode: 0, code: 'NETWORK_ERROR', error: `Cannot reach the service: ${(err as Error).message}` })
    }
    if (!res.ok || res.body === null) {
      const e = await res.json().catch(() => undefined) as Partial<ErrorReplyT> | undefined
      throw new ApiError({ statusCode: res.status, code: e?.code ?? 'UNEXPECTED_REPLY', error: e?.error ?? `The service answered ${res.status}` })
    }
    try {
      for await (const message of parseEventStream(res.body)) {
        if (!EVENT_TYPES.has(message.event)) continue
        yield JSON.parse(message.data) as SessionEvent
      }
    } catch (err) {
      if ((err as Error).name === 'AbortError' || o.signal?.aborted === true) return
      throw err
    }
  }

  /** Follow the events of the login that `started` runs, until it settles. */
  async function follow (known: Set<string>, username: string, started: Promise<unknown>, onEvent: (e: SessionEvent) => void): Promise<void> {
    const stop = new AbortController()
    let settled = false
    void started.finally(() => { settled = true; stop.abort() }).catch(() => {})
    // start-session answers only when the login is over; the session is
    // listed as pending (with its id) from its first moment.
    let id: string | undefined
    while (!settled && id === undefined) {
      const l = await list().catch(() => null)
      id = l?.pendingSessions.find((s) => !known.has(s.id) && s.username.toLowerCase() === username.toLowerCase())?.id
      if (id === undefined) await new Promise((resolve) => setTimeout(resolve, 150))
    }
    if (id === undefined) return
    try {
      for await (const e of events(id, { signal: stop.signal })) onEvent(e)
    } catch {}
  }

  async function start (req: StartRequest): Promise<StartReplyT> {
    const hs = await handshake(req)
    const { nonce, publicKey } = hs
    const encryptedPassword = await encrypt(publicKey, { password: req.password, nonce })
    const body: Static<typeof StartBody> = {
      handshakeToken: hs.token,
      encryptedPassword,
      ...(req.adminPassword !== undefined && req.adminPassword !== '' ? { encryptedAdminPassword: await encrypt(publicKey, { adminPassword: req.adminPassword, nonce }) } : {}),
      ...(req.connectionToken !== undefined && req.connectionToken !== '' ? { encryptedConnectionToken: await encrypt(publicKey, { connectionToken: req.connectionToken, nonce }) } : {}),
      ...(req.webhookUrl !== undefined && req.webhookUrl !== '' ? { encryptedWebhookUrl: await encrypt(publicKey, { webhookUrl: req.webhookUrl, nonce }) } : {}),
      ...(req.webhookSecret !== undefined && req.webhookSecret !== '' ? { encryptedWebhookSecret: await encrypt(publicKey, { webhookSecret: req.webhookSecret, nonce }) } : {})
    }
    if (req.adminUsername !== undefined && req.adminUsername !== '') body.adminUsername = req.adminUsername
    for (const flag of ['requireModule', 'loginIfActive', 'relaunchWorld', 'screenshotOnFailure', 'noCanvas', 'blockResources'] as const) {
      if (req[flag] !== undefined) Object.assign(body, { [flag]: req[flag] })
    }
    const known = req.onEvent !== undefined ? new Set((await list()).pendingSessions.map((s) => s.id)) : null
    const started = request<StartReplyT>('POST', '/start-session', { body, ...(req.signal !== undefined ? { signal: req.signal } : {}) })
    const following = known !== null && req.onEvent !== undefined ? follow(known, req.username, started, req.onEvent) : Promise.resolve()
    try {
      return await started
    } finally {
      await following
    }
  }

  return { handshake, start, list, end, events }
}

// A webhook receiver on 127.0.0.1 for the tests: records every request
// (path, headers, raw body) and answers as told per path: a list of statuses
// used in turn (the last one repeats), or 'hang' (the request is held open
// until release() answers it or the receiver closes).
import { createServer, type IncomingHttpHeaders, type ServerResponse } from 'node:http'
import { once } from 'node:events'
import type { AddressInfo } from 'node:net'

export interface Received {
  path: string
  headers: IncomingHttpHeaders
  body: string
  at: number
}

export interface Receiver {
  /** http://127.0.0.1:<port> */
  url: string
  received: Received[]
  /** Requests to this path (query excluded). */
  at: (path: string) => Received[]
  /** How to answer requests to this path from now on. */
  answer: (path: string, how: number[] | 'hang') => void
  /** Requests held open ('hang') right now. */
  held: () => number
  /** Answer every request held open so far with this status. */
  release: (status?: number) => void
  /** Resolves with the first request to `path` matching `pred` (rejects after timeoutMs). */
  wait: (path: string, pred?: (r: Received) => boolean, timeoutMs?: number) => Promise<Received>
  close: () => Promise<void>
}

export async function startReceiver (t?: { teardown: (fn: () => unknown) => void }): Promise<Receiver> {
  const received: Received[] = []
  const answers = new Map<string, number[] | 'hang'>()
  const hanging = new Set<ServerResponse>()
  const waiters: Array<() => void> = []
  const respond = (res: ServerResponse, status: number): void => { res.writeHead(status, { 'content-type': 'text/plain' }).end(status < 300 ? '' : 'no') }
  const server = createServer((req, res) => {
    const chunks: Buffer[] = []
    req.on('data', (c: Buffer) => chunks.push(c))
    req.on('end', () => {
      const path = new URL(req.url ?? '/', 'http://x').pathname
      received.push({ path, headers: req.headers, body: Buffer.concat(chunks).toString('utf8'), at: Date.now() })
      for (const w of waiters.splice(0)) w()
      const how = answers.get(path) ?? [200]
      if (how === 'hang') {
        hanging.add(res)
        res.on('close', () => hanging.delete(res))
        return
      }
      respond(res, how.length > 1 ? how.shift()! : how[0]!)
    })
  })
  server.listen(0, '127.0.0.1')
  await once(server, 'listening')
  const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`
  const r: Receiver = {
    url,
    received,
    at: (path) => received.filter((x) => x.path === path),
    answer: (path, how) => { answers.set(path, Array.isArray(how) ? [...how] : how) },
    held: () => hanging.size,
    release: (status = 200) => {
      for (const res of [...hanging]) respond(res, status)
    },
    async wait (path, pred = () => true, timeoutMs = 20_000) {
      const deadline = Date.now() + timeoutMs
      for (;;) {
        const hit = received.find((x) => x.path === path && pred(x))
        if (hit !== undefined) return hit
        const left = deadline - Date.now()
        if (left <= 0) throw new Error(`no webhook at ${path} within ${timeoutMs} ms; received: ${JSON.stringify(received.map((x) => [x.path, x.body.slice(0, 80)]))}`)
        await new Promise<void>((resolve) => {
          const timer = setTimeout(resolve, Math.min(left, 250))
          waiters.push(() => { clearTimeout(timer); resolve() })
        })
      }
    },
    async close () {
      for (const res of hanging) res.destroy()
      server.closeAllConnections()
      await new Promise<void>((resolve) => { server.close(() => { resolve() }) })
    }
  }
  t?.teardown(r.close)
  return r
}

/** The parsed body of a Standard Webhooks message. */
export function payload (r: Received): { type: string, timestamp: string, data: Record<string, unknown> } {
  return JSON.parse(r.body)
}

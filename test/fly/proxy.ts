// A stand-in for Fly's proxy, doing what Fly's docs say it does with
// fly-replay (https://fly.io/docs/networking/dynamic-request-routing/) and
// nothing more:
// - requests go to the app's machines round robin, skipping one that refuses
//   connections;
// - a response carrying `fly-replay` is not sent to the client: the original
//   request (method, path, headers, body) is replayed — `instance=<id>` to
//   that machine, `elsewhere=true` to the next machine of the load balance
//   other than the one that answered — with a `fly-replay-src` request header
//   (`instance=<sender>;region=<region>;t=<µs since epoch>`);
// - requests larger than 1 MB are not replayed.
import { createServer, request as httpRequest, type IncomingHttpHeaders, type IncomingMessage, type Server } from 'node:http'
import { once } from 'node:events'

export interface Machine { id: string, url: string }

export interface FlyProxy {
  url: string
  /** Replace the app's machines (as a deploy or a scale does). */
  setMachines: (machines: Machine[]) => void
  /** Every request the proxy sent on, in order: which machine, and whether it was a replay. */
  log: Array<{ method: string, path: string, machine: string, replay: boolean, status: number }>
  close: () => Promise<void>
}

const REPLAY_LIMIT = 1024 * 1024
const REGION = 'test'

interface Answer { status: number, headers: IncomingHttpHeaders, body: Buffer }

/** Parse `a=b;c="d,e"` into fields. */
export function parseReplay (value: string): Record<string, string> {
  const out: Record<string, string> = {}
  for (const part of value.split(';')) {
    const eq = part.indexOf('=')
    if (eq < 0) continue
    out[part.slice(0, eq).trim().toLowerCase()] = part.slice(eq + 1).trim().replace(/^"(.*)"$/, '$1')
  }
  return out
}

function forward (machine: Machine, method: string, path: string, headers: IncomingHttpHeaders, body: Buffer): Promise<Answer> {
  return new Promise((resolve, reject) => {
    const target = new URL(path, machine.url)
    const req = httpRequest(target, { method, headers: { ...headers, host: target.host }, agent: false }, (res: IncomingMessage) => {
      const chunks: Buffer[] = []
      res.on('data', (c: Buffer) => chunks.push(c))
      res.on('end', () => { resolve({ status: res.statusCode ?? 502, headers: res.headers, body: Buffer.concat(chunks) }) })
      res.on('error', reject)
    })
    req.on('error', reject)
    req.end(body)
  })
}

const refused = (err: unknown): boolean => ['ECONNREFUSED', 'ECONNRESET', 'EHOSTUNREACH'].includes((err as { code?: string }).code ?? '')

export async function startFlyProxy (machines: Machine[]): Promise<FlyProxy> {
  let list = [...machines]
  let next = 0
  const log: FlyProxy['log'] = []

  /** Round robin over the machines not excluded, skipping those refusing connections. */
  async function balance (method: string, path: string, headers: IncomingHttpHeaders, body: Buffer, exclude?: string): Promise<{ machine: Machine, answer: Answer } | null> {
    const candidates = list.length
    for (let i = 0; i < candidates; i++) {
      const machine = list[next++ % list.length]
      if (machine === undefined || machine.id === exclude) continue
      try {
        return { machine, answer: await forward(machine, method, path, headers, body) }
      } catch (err) {
        if (!refused(err)) throw err
      }
    }
    return null
  }

  const server: Server = createServer((req, res) => {
    const chunks: Buffer[] = []
    req.on('data', (c: Buffer) => chunks.push(c))
    req.on('end', () => {
      void (async () => {
        const body = Buffer.concat(chunks)
        const method = req.method ?? 'GET'
        const path = req.url ?? '/'
        const headers = { ...req.headers }
        const first = await balance(method, path, headers, body)
        if (first === null) {
          res.writeHead(503, { 'content-type': 'text/plain' }).end('no machine accepted the connection')
          return
        }
        log.push({ method, path, machine: first.machine.id, replay: false, status: first.answer.status })
        let answer = first.answer
        const replay = answer.headers['fly-replay']
        if (typeof replay === 'string' && body.length <= REPLAY_LIMIT) {
          const fields = parseReplay(replay)
          const src = `instance=${first.machine.id};region=${REGION};t=${Date.now() * 1000}${fields.state !== undefined ? `;state=${fields.state}` : ''}`
          const replayHeaders = { ...headers, 'fly-replay-src': src }
          let second: { machine: Machine, answer: Answer } | null = null
          if (fields.instance !== undefined) {
            const machine = list.find((m) => m.id === fields.instance)
            if (machine !== undefined) {
              try { second = { machine, answer: await forward(machine, method, path, replayHeaders, body) } } catch (err) { if (!refused(err)) throw err }
            }
          } else if (fields.elsewhere === 'true') {
            second = await balance(method, path, replayHeaders, body, first.machine.id)
          }
          if (second === null) {
            res.writeHead(502, { 'content-type': 'text/plain' }).end(`could not replay to ${replay}`)
            return
          }
          log.push({ method, path, machine: second.machine.id, replay: true, status: second.answer.status })
          answer = second.answer
        }
        const out = { ...answer.headers }
        delete out['transfer-encoding']
        delete out.connection
        res.writeHead(answer.status, out).end(answer.body)
      })().catch((err: Error) => {
        if (!res.headersSent) res.writeHead(502, { 'content-type': 'text/plain' })
        res.end(`proxy error: ${err.message}`)
      })
    })
  })
  server.listen(0, '127.0.0.1')
  await once(server, 'listening')
  const { port } = server.address() as { port: number }
  return {
    url: `http://127.0.0.1:${port}`,
    setMachines (m) { list = [...m] },
    log,
    async close () {
      server.closeAllConnections()
      server.close()
      await once(server, 'close').catch(() => {})
    }
  }
}

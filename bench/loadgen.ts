// A small closed-loop HTTP/1.1 load generator over raw keep-alive sockets
// (what autocannon does, without the dependency): `connections` clients each
// send one request, wait for the whole response, and send the next.
import net from 'node:net'

export interface LoadOptions {
  port: number
  method: 'GET' | 'POST'
  path: string
  headers?: Record<string, string>
  connections: number
  durationMs: number
  /** Run this long first without recording (JIT, connection set-up). */
  warmupMs?: number
}

export interface LoadResult {
  requests: number
  /** Every response, warm-up and the last in-flight ones included. */
  total: number
  /** Responses with a status other than 2xx. */
  non2xx: number
  statuses: Record<number, number>
  rps: number
  /** Latencies of the recorded requests, ms. */
  latencies: number[]
}

export async function load (o: LoadOptions): Promise<LoadResult> {
  const head = [`${o.method} ${o.path} HTTP/1.1`, 'Host: 127.0.0.1', 'Connection: keep-alive']
  for (const [k, v] of Object.entries(o.headers ?? {})) head.push(`${k}: ${v}`)
  if (o.method === 'POST') head.push('Content-Length: 0')
  const request = Buffer.from(head.join('\r\n') + '\r\n\r\n')

  const latencies: number[] = []
  const statuses: Record<number, number> = {}
  let requests = 0
  let total = 0
  let non2xx = 0
  const t0 = performance.now()
  const recordFrom = t0 + (o.warmupMs ?? 0)
  const end = recordFrom + o.durationMs
  let recordStart = 0

  async function client (): Promise<void> {
    const sock = net.connect({ port: o.port, host: '127.0.0.1', noDelay: true })
    await new Promise<void>((resolve, reject) => { sock.once('connect', resolve); sock.once('error', reject) })
    let buf: Buffer = Buffer.alloc(0)
    let sentAt = 0
    let done: (() => void) | null = null
    let fail: ((e: Error) => void) | null = null
    sock.on('data', (chunk: Buffer) => {
      buf = buf.length === 0 ? chunk : Buffer.concat([buf, chunk])
      const h = buf.indexOf('\r\n\r\n')
      if (h < 0) return
      const headText = buf.subarray(0, h).toString('latin1')
      const m = /content-length:\s*(\d+)/i.exec(headText)
      const len = m === null ? 0 : Number(m[1])
      if (buf.length < h + 4 + len) return
      const status = Number(headText.slice(9, 12))
      buf = buf.subarray(h + 4 + len)
      const now = performance.now()
      total++
      if (sentAt >= recordFrom && now <= end) {
        latencies.push(now - sentAt)
        requests++
        statuses[status] = (statuses[status] ?? 0) + 1
        if (status < 200 || status > 299) non2xx++
      }
      const d = done
      done = null
      d?.()
    })
    sock.on('error', (e) => { fail?.(e) })
    try {
      while (performance.now() < end) {
        await new Promise<void>((resolve, reject) => {
          done = resolve
          fail = reject
          sentAt = performance.now()
          if (recordStart === 0 && sentAt >= recordFrom) recordStart = sentAt
          sock.write(request)
        })
      }
    } finally {
      sock.destroy()
    }
  }

  await Promise.all(Array.from({ length: o.connections }, client))
  const span = (end - Math.max(recordFrom, recordStart === 0 ? recordFrom : recordFrom)) / 1000
  return { requests, total, non2xx, statuses, rps: requests / span, latencies }
}

// The service as a child process of the benchmark, configured by its
// environment like `npm start`, listening on a loopback port. Its process
// tree (Node + Chromium) is what the memory benchmark measures.
import './chromium-drop.ts'
import Fastify from 'fastify'
import service, { REDACT, serverOptions } from '../app.ts'

const app = Fastify({ ...serverOptions, logger: { level: process.env.LOG_LEVEL ?? 'info', redact: REDACT } })
await app.register(service)
await app.ready()
await app.listen({ host: '127.0.0.1', port: 0 })
const address = app.server.address()
const port = typeof address === 'object' && address !== null ? address.port : 0

let closing = false
async function close (): Promise<void> {
  if (closing) return
  closing = true
  await app.close().catch(() => {})
  process.exit(0)
}
process.on('message', (m: { type?: string, id?: number }) => {
  if (m.type === 'close') void close()
  else if (m.type === 'chromium') process.send?.({ id: m.id, pid: app.browserPool.pid() })
  // This Node process's own CPU time (µs), without Chromium's.
  else if (m.type === 'cpu') process.send?.({ id: m.id, ...process.cpuUsage() })
})
process.on('disconnect', () => { void close() })
process.send?.({ ready: { port, chromiumPid: app.browserPool.pid() } })

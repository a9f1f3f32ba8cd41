// A TCP gate in front of Redis for one machine: a network partition as a
// machine meets it. hold(): bytes both ways are held (connections stay open,
// nothing arrives, nothing is refused); release(): what was held goes
// through, in order, and bytes flow again.
import { connect, createServer, type Socket } from 'node:net'
import { once } from 'node:events'

export interface Gate {
  url: string
  hold: () => void
  release: () => void
  close: () => Promise<void>
}

export async function startGate (targetPort: number, t?: { teardown: (fn: () => unknown) => void }): Promise<Gate> {
  let held = false
  const pipes = new Set<{ flush: () => void, destroy: () => void }>()
  const server = createServer((client: Socket) => {
    const upstream = connect(targetPort, '127.0.0.1')
    const toUp: Buffer[] = []
    const toClient: Buffer[] = []
    client.on('data', (d: Buffer) => { if (held) toUp.push(d); else upstream.write(d) })
    upstream.on('data', (d: Buffer) => { if (held) toClient.push(d); else client.write(d) })
    const pipe = {
      flush () {
        for (const d of toUp.splice(0)) upstream.write(d)
        for (const d of toClient.splice(0)) client.write(d)
      },
      destroy () { client.destroy(); upstream.destroy() }
    }
    pipes.add(pipe)
    const end = (): void => { pipes.delete(pipe); pipe.destroy() }
    client.on('close', end)
    upstream.on('close', end)
    client.on('error', () => {})
    upstream.on('error', () => {})
  })
  server.listen(0, '127.0.0.1')
  await once(server, 'listening')
  const { port } = server.address() as { port: number }
  const g: Gate = {
    url: `redis://127.0.0.1:${port}`,
    hold () { held = true },
    release () {
      for (const p of pipes) p.flush()
      held = false
    },
    async close () {
      for (const p of pipes) p.destroy()
      server.close()
      await once(server, 'close').catch(() => {})
    }
  }
  t?.teardown(g.close)
  return g
}

// A real Redis for the fleet tests: Debian's redis-server on a free loopback
// port, no persistence, stopped after the test. It can be killed and started
// again on the same port (Redis lost while the fleet runs).
import { spawn, type ChildProcess } from 'node:child_process'
import { once } from 'node:events'
import { accessSync, constants } from 'node:fs'
import { connect, createServer } from 'node:net'
import { delimiter, join } from 'node:path'
import { Redis } from 'ioredis'
import { createRedisRegistry } from '../../lib/fleet/registry.ts'
import { fleetKeys } from '../../lib/fleet/keys.ts'
import type { FleetRegistry } from '../../lib/session/registry.ts'
import type { FleetBackend } from '../lib/registry-contract.ts'

export interface TestRedis {
  url: string
  port: number
  /** A client of the test's own (closed with the server). */
  client: Redis
  /** SIGKILL the server (the fleet sees its connections drop). */
  kill: () => Promise<void>
  /** Start it again on the same port, empty. */
  restart: () => Promise<void>
  /** Every key with its value(s) as text, for the plaintext-secret scans. */
  dump: () => Promise<Map<string, string>>
  close: () => Promise<void>
}

export async function freePort (): Promise<number> {
  const srv = createServer()
  srv.listen(0, '127.0.0.1')
  await once(srv, 'listening')
  const port = (srv.address() as { port: number }).port
  srv.close()
  await once(srv, 'close')
  return port
}

/**
 * Why this machine cannot run a Redis for the tests, in one line, or null.
 * Without this a missing binary is an unhandled spawn error (toolchain.md
 * trap 15) that takes the whole file down, Redis-free tests included.
 */
export function redisMissing (): string | null {
  const dirs = (process.env.PATH ?? '').split(delimiter).filter(Boolean)
  if (dirs.some((d) => { try { accessSync(join(d, 'redis-server'), constants.X_OK); return true } catch { return false } })) return null
  return 'redis-server is not installed: the fleet tests need it (Debian: apt-get install redis-server, or run npm run test:all as root)'
}

async function launch (port: number): Promise<ChildProcess> {
  const missing = redisMissing()
  if (missing !== null) throw new Error(missing)
  const child = spawn('redis-server', ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no'], {
    stdio: ['ignore', 'pipe', 'pipe']
  })
  let out = ''
  await new Promise<void>((resolve, reject) => {
    const onData = (d: Buffer): void => {
      out += d.toString()
      if (out.includes('Ready to accept connections')) { child.stdout!.off('data', onData); resolve() }
    }
    child.stdout!.on('data', onData)
    child.once('exit', (code) => { reject(new Error(`redis-server exited (${code ?? 'signal'}): ${out}`)) })
    child.once('error', (err) => { reject(new Error(`redis-server could not be started: ${err.message}`)) })
  })
  child.stdout!.resume()
  child.stderr!.resume()
  return child
}

export async function startRedis (t: { teardown: (fn: () => unknown) => void }): Promise<TestRedis> {
  const port = await freePort()
  let child = await launch(port)
  const client = new Redis({ port, host: '127.0.0.1', lazyConnect: true, maxRetriesPerRequest: 3 })
  client.on('error', () => {})
  await client.connect()
  const stop = async (signal: NodeJS.Signals): Promise<void> => {
    if (child.exitCode !== null || child.signalCode !== null) return
    const exited = once(child, 'exit')
    child.kill(signal)
    await exited
  }
  const r: TestRedis = {
    url: `redis://127.0.0.1:${port}`,
    port,
    client,
    kill: async () => { await stop('SIGKILL') },
    restart: async () => { await stop('SIGKILL'); child = await launch(port) },
    async dump () {
      const out = new Map<string, string>()
      let cursor = '0'
      do {
        const [next, keys] = await client.scan(cursor, 'COUNT', 500)
        cursor = next
        for (const key of keys) {
          const type = await client.type(key)
          let value: unknown
          if (type === 'string') value = await client.get(key)
          else if (type === 'hash') value = await client.hgetall(key)
          else if (type === 'set') value = await client.smembers(key)
          else if (type === 'zset') value = await client.call('zrange', key, '0', '-1', 'WITHSCORES')
          else if (type === 'list') value = await client.lrange(key, 0, -1)
          else value = `<${type}>`
          out.set(key, typeof value === 'string' ? value : JSON.stringify(value))
        }
      } while (cursor !== '0')
      return out
    },
    async close () {
      client.disconnect()
      await stop('SIGTERM')
    }
  }
  t.teardown(async () => { await r.close() })
  return r
}

let fleets = 0

/** A fresh fleet on this Redis (a key prefix of its own): one registry per machine, heartbeats as the machines write them. */
export function redisFleet (client: Redis): FleetBackend & { prefix: string } {
  const prefix = `fleet${fleets++}:`
  const machines = new Map<string, FleetRegistry>()
  return {
    prefix,
    on (machine, fresh = false) {
      let r = fresh ? undefined : machines.get(machine)
      if (r === undefined) { r = createRedisRegistry({ redis: client, instanceId: machine, retainEndedMs: 60_000, prefix }); machines.set(machine, r) }
      return r
    },
    async heartbeat (machine, alive) {
      const key = fleetKeys(prefix).machine(machine)
      if (alive) await client.set(key, '{}', 'PX', 60_000)
      else await client.del(key)
    }
  }
}

/**
 * Every command Redis executes from now on (MONITOR), each as its
 * arguments, unescaped. A connection of its own, read by hand: ioredis's
 * monitor() could fail under load with "Command queue state error" when the
 * first monitored command arrived with its OK.
 */
export async function monitorRedis (port: number, onCommand: (args: string[]) => void): Promise<{ close: () => void }> {
  const socket = connect(port, '127.0.0.1')
  socket.on('error', () => {})
  await once(socket, 'connect')
  let buffered = ''
  let ok = false
  socket.setEncoding('latin1')
  socket.on('data', (chunk: string) => {
    buffered += chunk
    let end: number
    while ((end = buffered.indexOf('\r\n')) !== -1) {
      const line = buffered.slice(0, end)
      buffered = buffered.slice(end + 2)
      if (!ok) { ok = line === '+OK'; continue }
      if (line.startsWith('+')) onCommand(monitoredArgs(line))
    }
  })
  socket.write('MONITOR\r\n')
  return { close: () => { socket.destroy() } }
}

/** The arguments of one MONITOR line (`+<time> [<db> <client>] "arg" "arg"…`), Redis's escapes undone, as UTF-8. */
export function monitoredArgs (line: string): string[] {
  const args: string[] = []
  let i = line.indexOf('] ')
  if (i === -1) return args
  i += 2
  while (i < line.length) {
    if (line[i] !== '"') { i++; continue }
    const bytes: number[] = []
    i++
    while (i < line.length && line[i] !== '"') {
      const c = line[i]!
      if (c === '\\') {
        const n = line[i + 1]!
        if (n === 'x') { bytes.push(parseInt(line.slice(i + 2, i + 4), 16)); i += 4; continue }
        bytes.push(({ n: 10, r: 13, t: 9, a: 7, b: 8 } as Record<string, number>)[n] ?? n.charCodeAt(0))
        i += 2
        continue
      }
      bytes.push(c.charCodeAt(0))
      i++
    }
    args.push(Buffer.from(bytes).toString('utf8'))
    i++
  }
  return args
}

// The service as users run it: `npm start` builds and runs `node dist/server.js`
// (what the Docker image runs). tap's `before` script (test/before.ts → test/prepare.ts) runs
// the build once, so tests spawn the compiled server directly.
import { spawn, type ChildProcess } from 'node:child_process'
import { once } from 'node:events'
import { fileURLToPath } from 'node:url'
import { encryptNode } from '../helper.ts'
import { asUsersRun } from '../child-env.ts'

export const ROOT = fileURLToPath(new URL('../../', import.meta.url))
/** The command line `npm start` ends in (after its prestart build). */
export const SERVICE_COMMAND = [process.execPath, 'dist/server.js']

export interface ServiceProcess {
  child: ChildProcess
  out: () => string
  err: () => string
  /** http://127.0.0.1:<port> once listening, else null. */
  base: () => string | null
  /** Resolves with the base URL once listening (rejects if the process exits first). */
  listening: (timeoutMs?: number) => Promise<string>
  stop: () => Promise<number | null>
}

export function startService (env: Record<string, string>): ServiceProcess {
  const [cmd, args] = asUsersRun(SERVICE_COMMAND[0]!, SERVICE_COMMAND.slice(1))
  const child = spawn(cmd, args, {
    cwd: ROOT,
    env: { PATH: process.env.PATH ?? '', HOME: process.env.HOME ?? '/tmp', HOST: '127.0.0.1', PORT: '0', ...env },
    stdio: ['ignore', 'pipe', 'pipe']
  })
  let out = ''
  let err = ''
  const waiters = new Set<() => void>()
  child.stdout!.on('data', (d: Buffer) => { out += d.toString(); for (const w of waiters) w() })
  child.stderr!.on('data', (d: Buffer) => { err += d.toString() })
  const base = (): string | null => /Server listening at (http:\/\/127\.0\.0\.1:\d+)/.exec(out)?.[1] ?? null
  return {
    child,
    out: () => out,
    err: () => err,
    base,
    async listening (timeoutMs = 120_000) {
      return await new Promise<string>((resolve, reject) => {
        const done = (): void => { clearTimeout(timer); waiters.delete(check); child.off('exit', onExit) }
        const check = (): void => { const b = base(); if (b !== null) { done(); resolve(b) } }
        const onExit = (code: number | null): void => { done(); reject(new Error(`the service exited (${code}) before listening: ${err}`)) }
        const timer = setTimeout(() => { done(); reject(new Error(`the service did not listen within ${timeoutMs} ms: ${err}`)) }, timeoutMs)
        waiters.add(check)
        child.on('exit', onExit)
        check()
      })
    },
    async stop () {
      if (child.exitCode !== null || child.signalCode !== null) return child.exitCode
      const exited = once(child, 'exit')
      child.kill('SIGTERM')
      const [code] = await exited as [number | null]
      return code
    }
  }
}

export interface HttpStartArgs {
  base: string
  apiKey: string
  foundryUrl: string
  username: string
  password: string
  world?: string
  connectionToken?: string
  /** Sent as encryptedAdminPassword. */
  adminPassword?: string
  body?: Record<string, unknown>
}

/** Handshake + encrypt + start-session over HTTP, as a client does. */
export async function startSessionHttp (a: HttpStartArgs): Promise<{ status: number, json: Record<string, any>, text: string }> {
  const hs = await fetch(`${a.base}/session-handshake`, {
    method: 'POST',
    headers: {
      'x-api-key': a.apiKey,
      'x-foundry-url': a.foundryUrl,
      'x-username': a.username,
      ...(a.world !== undefined ? { 'x-world-name': a.world } : {})
    }
  })
  if (hs.status !== 200) throw new Error(`handshake ${hs.status}: ${await hs.text()}`)
  const { token, publicKey, nonce } = await hs.json() as { token: string, publicKey: string, nonce: string }
  const res = await fetch(`${a.base}/start-session`, {
    method: 'POST',
    headers: { 'x-api-key': a.apiKey, 'content-type': 'application/json' },
    body: JSON.stringify({
      handshakeToken: token,
      encryptedPassword: encryptNode(publicKey, { password: a.password, nonce }),
      ...(a.connectionToken !== undefined ? { encryptedConnectionToken: encryptNode(publicKey, { connectionToken: a.connectionToken, nonce }, 'sha256') } : {}),
      ...(a.adminPassword !== undefined ? { encryptedAdminPassword: encryptNode(publicKey, { adminPassword: a.adminPassword, nonce }) } : {}),
      ...a.body
    })
  })
  const text = await res.text()
  let json: Record<string, any> = {}
  try { json = JSON.parse(text) } catch {}
  return { status: res.status, json, text }
}

// Service processes as users start them (`node dist/server.js`, the compiled
// service `npm start` runs), on loopback, each with its own machine id, for
// the fleet tests. tap's before script (test/before.ts → test/prepare.ts) builds dist/.
import { spawn, type ChildProcess } from 'node:child_process'
import { once } from 'node:events'
import { processTree } from '../../support/proc.ts'
import { asUsersRun } from '../child-env.ts'

export interface MachineProc {
  id: string
  child: ChildProcess
  /** http://127.0.0.1:port once listening. */
  url: string
  out: () => string
  err: () => string
  /** Resolves with the exit code (or null after a signal). */
  exited: Promise<number | null>
  kill: (signal: NodeJS.Signals) => void
}

const ROOT = new URL('../../', import.meta.url).pathname

/** Start one machine; rejects with its output if it exits before listening. */
export async function startMachine (id: string, env: Record<string, string>, t?: { teardown: (fn: () => unknown) => void }): Promise<MachineProc> {
  const child = spawn(...asUsersRun(process.execPath, ['dist/server.js']), {
    cwd: ROOT,
    env: {
      PATH: process.env.PATH ?? '',
      HOME: process.env.HOME ?? '/tmp',
      HOST: '127.0.0.1',
      PORT: '0',
      INSTANCE_ID: id,
      CHROMIUM_PATH: process.env.CHROMIUM_PATH ?? '',
      ...env
    },
    stdio: ['ignore', 'pipe', 'pipe']
  })
  let out = ''
  let err = ''
  child.stdout!.on('data', (d: Buffer) => { out += d.toString() })
  child.stderr!.on('data', (d: Buffer) => { err += d.toString() })
  const exited = once(child, 'exit').then(([code]) => code as number | null)
  // A machine still running at the end is killed with its whole process
  // tree: Chromium, started detached, would outlive a SIGKILLed parent.
  t?.teardown(async () => {
    if (child.exitCode !== null || child.signalCode !== null) return
    const tree = processTree(child.pid!)
    child.kill('SIGKILL')
    await exited
    for (const pid of tree) { try { process.kill(pid, 'SIGKILL') } catch {} }
  })
  const url = await new Promise<string>((resolve, reject) => {
    const check = (): void => {
      const m = /Server listening at (http:\/\/127\.0\.0\.1:\d+)/.exec(out)
      if (m !== null) { child.stdout!.off('data', check); resolve(m[1]!) }
    }
    child.stdout!.on('data', check)
    void exited.then((code) => { reject(new Error(`machine ${id} exited (${code}) before listening:\n${err}\n${out}`)) })
  })
  return { id, child, url, out: () => out, err: () => err, exited, kill: (s) => { child.kill(s) } }
}

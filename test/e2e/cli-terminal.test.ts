// The command line's own behaviour, as a separate process: usage errors;
// at a terminal (a pseudo-terminal from script(1)) the password prompt
// without echo and `serve` with readable logs; `serve` with stdout piped
// (JSON lines). Split from cli.test.ts to keep each file well within tap's
// per-file timeout on a loaded machine.
import t from 'tap'
import { spawn } from 'node:child_process'
import { once } from 'node:events'
import { readFileSync } from 'node:fs'
import { fileURLToPath } from 'node:url'
import { API_KEY, build } from '../helper.ts'
import { asUsersRun, asUsersRunLine } from '../child-env.ts'
import { GM, alive, descendants, eventually, foundry } from './fixtures.ts'

const CLI = fileURLToPath(new URL('../../dist/cli.js', import.meta.url))

interface Run { code: number | null, stdout: string, stderr: string }

/** Run the CLI with nothing on standard input; only PATH and HOME from this environment. */
async function cli (args: string[]): Promise<Run> {
  const child = spawn(...asUsersRun(process.execPath, [CLI, ...args]), {
    env: { PATH: process.env.PATH ?? '', HOME: process.env.HOME ?? '/tmp' },
    stdio: ['ignore', 'pipe', 'pipe']
  })
  let stdout = ''
  let stderr = ''
  child.stdout.on('data', (d: Buffer) => { stdout += d.toString() })
  child.stderr.on('data', (d: Buffer) => { stderr += d.toString() })
  const [code] = await once(child, 'exit') as [number | null]
  return { code, stdout, stderr }
}

t.test('usage errors: status 2 and the usage', async (t) => {
  const cases: Array<[string[], RegExp]> = [
    [[], /Usage: foundry-sessions <command>/],
    [['start', '--api-key', 'k', '--user', 'x'], /USAGE: start needs --foundry-url URL and --user NAME/],
    [['list'], /USAGE: an API key is needed/],
    [['end', '--api-key', 'k'], /USAGE: end needs a SESSION_ID/],
    [['start', '--password', 'secret'], /USAGE: Unknown option '--password'/],
    [['frobnicate', '--api-key', 'k'], /USAGE: unknown command "frobnicate"/]
  ]
  for (const [args, expected] of cases) {
    const r = await cli(args)
    t.equal(r.code, 2, args.join(' '))
    t.match(r.stderr, expected)
  }
  const help = await cli(['--help'])
  t.equal(help.code, 0)
  t.match(help.stdout, /--admin-password-stdin/)
})

t.test('start reads the password from a prompt without echo at a terminal', async (t) => {
  const { app } = await build(t)
  await app.listen({ host: '127.0.0.1', port: 0 })
  const server = `http://127.0.0.1:${(app.server.address() as { port: number }).port}`
  const { standin } = await foundry(t)
  // script(1) gives the CLI a pseudo-terminal, which echoes what is typed unless the program turns echo off.
  const cmd = asUsersRunLine([process.execPath, CLI, 'start', '--server', server, '--api-key', API_KEY, '--foundry-url', standin.url, '--user', `'${GM.name}'`, '--json'].join(' '))
  const child = spawn('script', ['-qec', cmd, '/dev/null'], { env: { PATH: process.env.PATH ?? '', HOME: '/tmp', TERM: 'dumb' }, stdio: ['pipe', 'pipe', 'pipe'] })
  let screen = ''
  child.stdout.on('data', (d: Buffer) => { screen += d.toString() })
  t.teardown(() => { if (child.exitCode === null) child.kill('SIGKILL') })
  t.ok(await eventually(() => screen.includes(`Password for ${GM.name}: `), 20_000), 'the prompt is shown')
  child.stdin.write(`${GM.password}\r`)
  const [code] = await once(child, 'exit')
  t.equal(code, 0, screen)
  t.match(screen, /"success":true/)
  t.notOk(screen.includes(GM.password), 'the password was not echoed')
})

t.test('serve runs the service, as npm start does', async (t) => {
  const child = spawn(...asUsersRun(process.execPath, [CLI, 'serve']), {
    env: { PATH: process.env.PATH ?? '', HOME: process.env.HOME ?? '/tmp', HOST: '127.0.0.1', PORT: '0', API_KEYS: 'serve-key', CHROMIUM_PATH: process.env.CHROMIUM_PATH ?? '' },
    stdio: ['ignore', 'pipe', 'pipe']
  })
  t.teardown(() => { if (child.exitCode === null) child.kill('SIGKILL') })
  let out = ''
  child.stdout.on('data', (d: Buffer) => { out += d.toString() })
  t.ok(await eventually(() => /Server listening at/.test(out), 30_000), 'listening')
  const base = /Server listening at (http:\/\/127\.0\.0\.1:\d+)/.exec(out)![1]!
  const res = await fetch(`${base}/session`, { headers: { 'x-api-key': 'serve-key' } })
  t.equal(res.status, 200)
  t.match(out.split('\n')[0], /^\{"level":30,/, 'JSON log lines when stdout is not a terminal')
  const tree = [child.pid!, ...descendants(child.pid!)]
  child.kill('SIGTERM')
  const [code] = await once(child, 'exit')
  t.equal(code, 0)
  t.ok(await eventually(() => tree.every((p) => !alive(p))), 'nothing it started outlives it')
})

t.test('at a terminal the logs are readable lines, and a generated key is shown once', async (t) => {
  // script(1) runs the service on a pseudo-terminal (stdout and stderr both).
  const cmd = asUsersRunLine(`${process.execPath} ${CLI} serve`)
  const child = spawn('script', ['-qec', cmd, '/dev/null'], {
    env: { PATH: process.env.PATH ?? '', HOME: '/tmp', TERM: 'xterm', HOST: '127.0.0.1', PORT: '0', CHROMIUM_PATH: process.env.CHROMIUM_PATH ?? '' },
    stdio: ['pipe', 'pipe', 'pipe']
  })
  t.teardown(() => { for (const p of [...descendants(child.pid!), child.pid!]) { try { process.kill(p, 'SIGKILL') } catch {} } })
  let screen = ''
  child.stdout.on('data', (d: Buffer) => { screen += d.toString() })
  t.ok(await eventually(() => /Server listening at/.test(screen), 30_000), 'listening')
  // eslint-disable-next-line no-control-regex
  const plain = screen.replace(/\x1b\[[0-9;]*m/g, '')
  t.match(plain, /^\[\d\d:\d\d:\d\d\.\d{3}\] INFO: Server listening at http:\/\/127\.0\.0\.1:\d+/m, 'a readable line: time, level, message')
  t.notMatch(plain, /\{"level":/, 'no JSON lines')
  t.match(screen, /\x1b\[3\dm/, 'in colour') // eslint-disable-line no-control-regex
  const key = /^\s+(fsk_[A-Za-z0-9_-]+)\s*$/m.exec(plain)?.[1]
  t.ok(key, 'the generated key is printed')
  t.equal(plain.split(key!).length - 1, 1, 'once, and never in a log line')
  const node = descendants(child.pid!).find((p) => readFileSync(`/proc/${p}/cmdline`, 'utf8').split('\0')[0] === process.execPath)
  process.kill(node!, 'SIGTERM')
  const [code] = await once(child, 'exit')
  t.equal(code, 0)
})

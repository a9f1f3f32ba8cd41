// The command line as a user runs it: the compiled bin (dist/cli.js, built
// by the tap before script) in its own process, over HTTP, against the
// service and the Foundry stand-in; the password on standard input.
import t from 'tap'
import { spawn } from 'node:child_process'
import { once } from 'node:events'
import { readFileSync } from 'node:fs'
import { fileURLToPath } from 'node:url'
import { API_KEY, OTHER_KEY, build } from '../helper.js'
import { GM, WORLD, alive, descendants, eventually, foundry, listSessions } from './fixtures.js'

const CLI = fileURLToPath(new URL('../../dist/cli.js', import.meta.url))

interface Run { code: number | null, stdout: string, stderr: string }

/** Run the CLI with `stdin` piped in; only PATH and HOME from this environment. */
async function cli (args: string[], opts: { stdin?: string, env?: Record<string, string>, live?: { stdout: string } } = {}): Promise<Run> {
  const child = spawn(process.execPath, [CLI, ...args], {
    env: { PATH: process.env.PATH ?? '', HOME: process.env.HOME ?? '/tmp', ...opts.env },
    stdio: ['pipe', 'pipe', 'pipe']
  })
  let stdout = ''
  let stderr = ''
  child.stdout.on('data', (d: Buffer) => { stdout += d.toString(); if (opts.live !== undefined) opts.live.stdout = stdout })
  child.stderr.on('data', (d: Buffer) => { stderr += d.toString() })
  child.stdin.end(opts.stdin ?? '')
  const [code] = await once(child, 'exit') as [number | null]
  return { code, stdout, stderr }
}

t.test('start, list and end a session from the shell', async (t) => {
  const { app, logs } = await build(t)
  await app.listen({ host: '127.0.0.1', port: 0 })
  const server = `http://127.0.0.1:${(app.server.address() as { port: number }).port}`
  const { standin, relay } = await foundry(t)
  const common = ['--server', server, '--api-key', API_KEY]

  const started = await cli(['start', ...common, '--foundry-url', standin.url, '--user', GM.name, '--world', WORLD.title], { stdin: `${GM.password}\n` })
  t.equal(started.code, 0, started.stderr)
  const sessionId = /Session ([0-9a-f-]{36})/.exec(started.stdout)?.[1]
  t.ok(sessionId, 'prints the session id')
  t.match(started.stdout, `${WORLD.title} as ${GM.name}, active; module connected (foundry-${GM.id})`)
  t.match(started.stderr, /Joining the world…[\s\S]*Waiting for the REST API module…/, 'the login\'s stages, in order, as they happened')
  t.ok(relay.open().some((c) => c.id === `foundry-${GM.id}`), 'the module is connected to its relay')

  t.test('list, as a table and as JSON', async (t) => {
    const table = await cli(['list', ...common])
    t.equal(table.code, 0, table.stderr)
    t.match(table.stdout, /^SESSION\s+STATUS\s+WORLD\s+USER\s+MODULE\s+SINCE/)
    t.match(table.stdout, new RegExp(`${sessionId}\\s+active\\s+${WORLD.title}\\s+${GM.name}\\s+connected`))
    const json = await cli(['list', '--json'], { env: { FOUNDRY_SESSIONS_SERVER: server, FOUNDRY_SESSIONS_API_KEY: API_KEY } })
    t.equal(json.code, 0, json.stderr)
    t.match(JSON.parse(json.stdout), { activeSessions: [{ id: sessionId, worldTitle: WORLD.title, username: GM.name, status: 'active' }] })
  })

  t.test('another key neither sees nor ends it', async (t) => {
    const other = ['--server', server, '--api-key', OTHER_KEY]
    t.match((await cli(['list', ...other])).stdout, 'No sessions for this API key.')
    const end = await cli(['end', sessionId!, ...other])
    t.equal(end.code, 1)
    t.match(end.stderr, /^SESSION_NOT_FOUND: Session not found/)
  })

  t.test('a second start of the same world and user returns the running session', async (t) => {
    const again = await cli(['start', ...common, '--foundry-url', standin.url, '--user', GM.name, '--json'], { stdin: `${GM.password}\n` })
    t.equal(again.code, 0, again.stderr)
    t.match(JSON.parse(again.stdout), { success: true, sessionId, clientId: `foundry-${GM.id}`, existingSession: true })
  })

  t.test('watch follows it until end ends it', async (t) => {
    const live = { stdout: '' }
    const watching = cli(['watch', sessionId!, ...common, '--json'], { live })
    t.ok(await eventually(() => live.stdout.includes('"status":"active"'), 20_000), 'it shows the current status first')
    const end = await cli(['end', sessionId!, ...common, '--json'])
    t.equal(end.code, 0, end.stderr)
    t.match(JSON.parse(end.stdout), { success: true, sessionId, message: 'Foundry session terminated' })
    const watched = await watching
    t.equal(watched.code, 0, watched.stderr)
    const events = watched.stdout.trim().split('\n').map((l) => JSON.parse(l) as { type: string, status?: string })
    t.match(events.at(-1), { type: 'status', status: 'ended', sessionId, reason: 'ended by the client' }, 'the last event: ended, then the stream is over')
  })

  t.test('ended', async (t) => {
    const l = await listSessions(app)
    t.same(l.activeSessions, [])
    t.match(l.endedSessions, [{ id: sessionId, status: 'ended' }])
    t.ok(await eventually(() => relay.open().length === 0), 'the module connection closed with the session')
  })

  t.test('the password never reached the log', async (t) => {
    t.notOk(logs().includes(GM.password))
  })
})

t.test('refusals: the code and sentence on stderr, a non-zero status', async (t) => {
  const { app, logs } = await build(t)
  await app.listen({ host: '127.0.0.1', port: 0 })
  const server = `http://127.0.0.1:${(app.server.address() as { port: number }).port}`
  const { standin } = await foundry(t)

  const wrong = await cli(['start', '--server', server, '--api-key', API_KEY, '--foundry-url', standin.url, '--user', GM.name], { stdin: 'not-the-password\n' })
  t.equal(wrong.code, 1)
  t.match(wrong.stderr, /^FOUNDRY_LOGIN_REJECTED: .+\n {2}stage: join/m)
  t.equal(wrong.stdout, '')
  t.notOk(logs().includes('not-the-password'), 'the wrong password is not logged either')

  const badKey = await cli(['list', '--server', server, '--api-key', 'nope'])
  t.equal(badKey.code, 1)
  t.match(badKey.stderr, /^API_KEY_INVALID: /)

  const noService = await cli(['list', '--server', 'http://127.0.0.1:9', '--api-key', API_KEY])
  t.equal(noService.code, 1)
  t.match(noService.stderr, /^NETWORK_ERROR: Cannot reach the service at http:\/\/127\.0\.0\.1:9/)
})

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
  const cmd = [process.execPath, CLI, 'start', '--server', server, '--api-key', API_KEY, '--foundry-url', standin.url, '--user', `'${GM.name}'`, '--json'].join(' ')
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
  const child = spawn(process.execPath, [CLI, 'serve'], {
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
  const cmd = `${process.execPath} ${CLI} serve`
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

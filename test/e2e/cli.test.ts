// The command line as a user runs it: the compiled bin (dist/cli.js, built
// by the tap before script) in its own process, over HTTP, against the
// service and the Foundry stand-in; the password on standard input.
import t from 'tap'
import { spawn } from 'node:child_process'
import { once } from 'node:events'
import { fileURLToPath } from 'node:url'
import { API_KEY, OTHER_KEY, build } from '../helper.ts'
import { asUsersRun } from '../child-env.ts'
import { GM, WORLD, eventually, foundry, listSessions } from './fixtures.ts'

const CLI = fileURLToPath(new URL('../../dist/cli.js', import.meta.url))

interface Run { code: number | null, stdout: string, stderr: string }

/** Run the CLI with `stdin` piped in; only PATH and HOME from this environment. */
async function cli (args: string[], opts: { stdin?: string, env?: Record<string, string>, live?: { stdout: string } } = {}): Promise<Run> {
  const child = spawn(...asUsersRun(process.execPath, [CLI, ...args]), {
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

t.test('a world behind Foundry v14\'s administrator user: --admin-password-stdin with --admin-user', async (t) => {
  const { app, logs } = await build(t)
  await app.listen({ host: '127.0.0.1', port: 0 })
  const server = `http://127.0.0.1:${(app.server.address() as { port: number }).port}`
  const { standin } = await foundry(t, { version: '14.367', activeWorld: null, adminPassword: 'admin-pw', adminUsername: 'root' })
  const common = ['--server', server, '--api-key', API_KEY, '--foundry-url', standin.url, '--user', GM.name, '--world', WORLD.title, '--admin-password-stdin', '--json']

  const without = await cli(['start', ...common], { stdin: `${GM.password}\nadmin-pw\n` })
  t.equal(without.code, 1)
  t.match(without.stderr, /^ADMIN_PASSWORD_REJECTED: .*send it as adminUsername/m)

  const started = await cli(['start', ...common, '--admin-user', 'root'], { stdin: `${GM.password}\nadmin-pw\n` })
  t.equal(started.code, 0, started.stderr)
  t.match(JSON.parse(started.stdout), { success: true, clientId: `foundry-${GM.id}` })
  t.equal(standin.state().activeWorld, WORLD.id, 'the world was launched')
  t.notOk(logs().includes('admin-pw'), 'the administrator password is not logged')
})

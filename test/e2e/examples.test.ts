// The three client examples in examples/, run as a user runs them: as their
// own processes, over HTTP, against the service and the Foundry stand-in.
import t from 'tap'
import { execFile } from 'node:child_process'
import { promisify } from 'node:util'
import { API_KEY, build } from '../helper.ts'
import { GM, WORLD, endSession, foundry } from './fixtures.ts'

const run = promisify(execFile)

t.test('client examples start a session and get the module\'s clientId', async (t) => {
  const { app, logs } = await build(t)
  await app.listen({ host: '127.0.0.1', port: 0 })
  const address = app.server.address() as { port: number }
  const { standin, relay } = await foundry(t)

  const env = {
    ...process.env,
    BASE_URL: `http://127.0.0.1:${address.port}`,
    API_KEY,
    FOUNDRY_URL: standin.url,
    FOUNDRY_USER: GM.name,
    FOUNDRY_WORLD: WORLD.title,
    FOUNDRY_PASSWORD: GM.password
  }
  const python = '/usr/bin/python3'
  const hasCryptography = await run(python, ['-c', 'import cryptography']).then(() => true, () => false)
  const examples: Array<[string, string, string[]]> = [
    ['JavaScript (WebCrypto, SHA-1)', process.execPath, ['examples/client.mjs']],
    ['TypeScript (node:crypto, SHA-1)', process.execPath, ['examples/client.ts']],
    ['TypeScript (the typed client: WebCrypto, SHA-256, live stages)', process.execPath, ['examples/typed-client.ts']],
    ['Python (cryptography, SHA-256)', python, ['examples/client.py']]
  ]
  for (const [name, cmd, args] of examples) {
    t.test(name, { skip: cmd === python && !hasCryptography ? 'python3-cryptography is not installed (.ci/run installs it)' : false }, async (t) => {
      const { stdout } = await run(cmd, args, { env, timeout: 60_000 })
      const body = JSON.parse(stdout.trim().split('\n').pop() ?? '{}')
      t.match(body, { success: true, sessionId: String, clientId: `foundry-${GM.id}` })
      t.ok(relay.connections.some((c) => c.id === body.clientId && c.closedAt === undefined), 'the relay holds the module connection')
      t.equal((await endSession(app, body.sessionId)).statusCode, 200)
    })
  }
  t.test('the password never reached the log', async (t) => {
    t.notOk(logs().includes(GM.password))
  })
})

// Start a headless Foundry session with this project's typed client
// (public/client.ts: handshake, WebCrypto encryption, start, list, end,
// events), printing the login's stages as they happen.
// Run: node examples/typed-client.ts (Node 22.18+; values from the environment).
import { ApiError, STAGE_TEXT, createClient } from '../public/client.ts'

const client = createClient({
  server: process.env.BASE_URL ?? 'http://localhost:3010',
  apiKey: process.env.API_KEY ?? 'your-api-key'
})

try {
  const reply = await client.start({
    foundryUrl: process.env.FOUNDRY_URL ?? 'http://localhost:30000',
    username: process.env.FOUNDRY_USER ?? 'Gamemaster',
    worldName: process.env.FOUNDRY_WORLD ?? '',
    password: process.env.FOUNDRY_PASSWORD ?? '',
    onEvent: (e) => { if (e.type === 'stage') console.error(`${STAGE_TEXT[e.stage] ?? e.stage}…`) }
  })
  const { activeSessions } = await client.list()
  const session = activeSessions.find((s) => s.id === reply.sessionId)
  console.error(`Logged into ${session?.worldTitle ?? '?'} as ${session?.username ?? '?'}`)
  console.log(JSON.stringify(reply))
} catch (err) {
  if (!(err instanceof ApiError)) throw err
  console.error(`${err.code}: ${err.message}`)
  process.exitCode = 1
}

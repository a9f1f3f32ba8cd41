// Start a headless Foundry session from TypeScript with Node's crypto.
// Run: node examples/client.ts (Node 22.18+ runs TypeScript as it is; values
// from the environment, or edit them).
import { constants, publicEncrypt } from 'node:crypto'

const BASE_URL = process.env.BASE_URL ?? 'http://localhost:3010'
const API_KEY = process.env.API_KEY ?? 'your-api-key'
const FOUNDRY_URL = process.env.FOUNDRY_URL ?? 'http://localhost:30000'
const USERNAME = process.env.FOUNDRY_USER ?? 'Gamemaster'
const WORLD = process.env.FOUNDRY_WORLD ?? ''
const PASSWORD = process.env.FOUNDRY_PASSWORD ?? ''

interface Handshake { token: string, publicKey: string, nonce: string, expires: number }

const hs = await fetch(`${BASE_URL}/session-handshake`, {
  method: 'POST',
  headers: {
    'x-api-key': API_KEY,
    'x-foundry-url': FOUNDRY_URL,
    'x-username': USERNAME,
    ...(WORLD !== '' ? { 'x-world-name': WORLD } : {})
  }
})
if (!hs.ok) throw new Error(`handshake: ${hs.status} ${await hs.text()}`)
const { token, publicKey, nonce } = await hs.json() as Handshake

// Node's default OAEP hash is SHA-1, as the relay's own clients use.
const encryptedPassword = publicEncrypt(
  { key: publicKey, padding: constants.RSA_PKCS1_OAEP_PADDING },
  Buffer.from(JSON.stringify({ password: PASSWORD, nonce }))
).toString('base64')

const res = await fetch(`${BASE_URL}/start-session`, {
  method: 'POST',
  headers: { 'x-api-key': API_KEY, 'content-type': 'application/json' },
  body: JSON.stringify({ handshakeToken: token, encryptedPassword })
})
const body = await res.json() as { sessionId?: string, clientId?: string, code?: string, error?: string }
if (!res.ok) throw new Error(`start-session: ${res.status} ${body.code}: ${body.error}`)
console.log(JSON.stringify(body))

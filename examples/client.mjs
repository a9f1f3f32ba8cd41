// Start a headless Foundry session from JavaScript, with WebCrypto (the same
// code runs in a browser). Change the six values below, or set them in the
// environment, and run: node examples/client.mjs
const BASE_URL = process.env.BASE_URL ?? 'http://localhost:3010'
const API_KEY = process.env.API_KEY ?? 'your-api-key'
const FOUNDRY_URL = process.env.FOUNDRY_URL ?? 'http://localhost:30000'
const USERNAME = process.env.FOUNDRY_USER ?? 'Gamemaster'
const WORLD = process.env.FOUNDRY_WORLD ?? ''
const PASSWORD = process.env.FOUNDRY_PASSWORD ?? ''

// 1. Handshake: a one-time public key and nonce.
const hs = await fetch(`${BASE_URL}/session-handshake`, {
  method: 'POST',
  headers: {
    'x-api-key': API_KEY,
    'x-foundry-url': FOUNDRY_URL,
    'x-username': USERNAME,
    ...(WORLD ? { 'x-world-name': WORLD } : {})
  }
})
if (!hs.ok) throw new Error(`handshake: ${hs.status} ${await hs.text()}`)
const { token, publicKey, nonce } = await hs.json()

// 2. Encrypt {password, nonce} with RSA-OAEP (SHA-1).
const der = Uint8Array.from(atob(publicKey.replace(/-----[^-]+-----|\s/g, '')), (c) => c.charCodeAt(0))
const key = await crypto.subtle.importKey('spki', der, { name: 'RSA-OAEP', hash: 'SHA-1' }, false, ['encrypt'])
const cipher = await crypto.subtle.encrypt({ name: 'RSA-OAEP' }, key,
  new TextEncoder().encode(JSON.stringify({ password: PASSWORD, nonce })))
const encryptedPassword = btoa(String.fromCharCode(...new Uint8Array(cipher)))

// 3. Start the session: returns once the world is loaded and the module connected.
const res = await fetch(`${BASE_URL}/start-session`, {
  method: 'POST',
  headers: { 'x-api-key': API_KEY, 'content-type': 'application/json' },
  body: JSON.stringify({ handshakeToken: token, encryptedPassword })
})
const body = await res.json()
if (!res.ok) throw new Error(`start-session: ${res.status} ${body.code}: ${body.error}`)
console.log(JSON.stringify(body))

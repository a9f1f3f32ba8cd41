// The service's API as a client uses it: handshake, encrypt, start, end.
import { constants, publicEncrypt } from 'node:crypto'
import { BENCH_KEY, PASSWORD, type Foundry } from './lib.ts'

export interface StartOutcome {
  status: number
  /** From sending POST /start-session to its whole response, ms. */
  ms: number
  sessionId?: string
  clientId?: string
  code?: string
}

export interface StartExtras {
  worldName?: string
  noCanvas?: boolean
  blockResources?: string[]
}

/** Everything before POST /start-session (handshake + encryption), not timed. */
export async function prepareStart (port: number, f: Foundry, extras: StartExtras = {}): Promise<() => Promise<StartOutcome>> {
  const base = `http://127.0.0.1:${port}`
  const hs = await fetch(`${base}/session-handshake`, {
    method: 'POST',
    headers: {
      'x-api-key': BENCH_KEY,
      'x-foundry-url': f.standin.url,
      'x-username': f.user.name,
      ...(extras.worldName !== undefined ? { 'x-world-name': extras.worldName } : {})
    }
  })
  if (hs.status !== 200) throw new Error(`handshake ${hs.status}: ${await hs.text()}`)
  const { token, publicKey, nonce } = await hs.json() as { token: string, publicKey: string, nonce: string }
  const encryptedPassword = publicEncrypt({ key: publicKey, padding: constants.RSA_PKCS1_OAEP_PADDING, oaepHash: 'sha1' },
    Buffer.from(JSON.stringify({ password: PASSWORD, nonce }))).toString('base64')
  const body = JSON.stringify({
    handshakeToken: token,
    encryptedPassword,
    ...(extras.noCanvas !== undefined ? { noCanvas: extras.noCanvas } : {}),
    ...(extras.blockResources !== undefined ? { blockResources: extras.blockResources } : {})
  })
  return async () => {
    const t = performance.now()
    const res = await fetch(`${base}/start-session`, {
      method: 'POST',
      headers: { 'x-api-key': BENCH_KEY, 'content-type': 'application/json' },
      body
    })
    const json = await res.json() as { sessionId?: string, clientId?: string, code?: string, error?: string }
    const ms = performance.now() - t
    return {
      status: res.status,
      ms,
      ...(json.sessionId !== undefined ? { sessionId: json.sessionId } : {}),
      ...(json.clientId !== undefined ? { clientId: json.clientId } : {}),
      ...(json.code !== undefined ? { code: `${json.code}: ${json.error ?? ''}` } : {})
    }
  }
}

export async function startSession (port: number, f: Foundry, extras: StartExtras = {}): Promise<StartOutcome> {
  return await (await prepareStart(port, f, extras))()
}

export async function endSession (port: number, sessionId: string): Promise<void> {
  const res = await fetch(`http://127.0.0.1:${port}/end-session?sessionId=${encodeURIComponent(sessionId)}`, {
    method: 'DELETE', headers: { 'x-api-key': BENCH_KEY }
  })
  await res.arrayBuffer()
}

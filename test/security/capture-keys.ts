// Import first (before the app): wraps node:crypto's generateKeyPair so a
// test can see the handshake private keys the keystore makes, and check
// that none of them leaks anywhere.
import { createRequire, syncBuiltinESMExports } from 'node:module'
import { promisify } from 'node:util'
import type { KeyObject } from 'node:crypto'

const require = createRequire(import.meta.url)
const crypto = require('node:crypto') as typeof import('node:crypto')

export const capturedPrivateKeys: KeyObject[] = []

const original = crypto.generateKeyPair
const originalAsync = promisify(original) as unknown as (...a: unknown[]) => Promise<{ publicKey: unknown, privateKey: unknown }>
function wrapped (this: unknown, ...args: unknown[]): void {
  const cb = args.pop() as (err: Error | null, pub: unknown, priv: unknown) => void
  ;(original as (...a: unknown[]) => void)(...args, (err: Error | null, pub: unknown, priv: unknown) => {
    if (priv !== undefined && typeof priv === 'object') capturedPrivateKeys.push(priv as KeyObject)
    cb(err, pub, priv)
  })
}
Object.defineProperty(wrapped, promisify.custom, {
  value: async (...args: unknown[]) => {
    const pair = await originalAsync(...args)
    if (typeof pair.privateKey === 'object') capturedPrivateKeys.push(pair.privateKey as KeyObject)
    return pair
  }
})
crypto.generateKeyPair = wrapped as unknown as typeof crypto.generateKeyPair
syncBuiltinESMExports()

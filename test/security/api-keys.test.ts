// API keys: digests only, constant-time comparison over every configured
// key, sha256:<hex> entries, API_KEYS_FILE, and rejected keys kept out of logs.
import t from 'tap'
import { mkdtempSync, writeFileSync } from 'node:fs'
import { createRequire, syncBuiltinESMExports } from 'node:module'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { createApiKeys, entryDigest, hashKey, parseApiKeys, parseApiKeysFile, readApiKeysFile } from '../../lib/access/api-keys.ts'
import { build, expectError, NO_LOGIN } from '../helper.ts'

t.test('lib', async (t) => {
  t.same(parseApiKeys(' a , b,,c '), ['a', 'b', 'c'])
  t.same(parseApiKeysFile('# comment\n\nplain-key\r\n  sha256:' + 'A'.repeat(64) + '  \n#x\n'), ['plain-key', 'sha256:' + 'A'.repeat(64)])
  t.equal(entryDigest('sha256:' + 'AB'.repeat(32)), 'ab'.repeat(32), 'a digest entry is taken as given')
  t.equal(entryDigest('sha256:short'), hashKey('sha256:short'), 'a malformed digest entry is a plain key')

  const keys = createApiKeys(['plain-one', `sha256:${hashKey('hashed-two')}`, 'plain-one'])
  t.equal(keys.size, 2, 'duplicates collapse')
  t.equal(keys.verify('plain-one'), hashKey('plain-one'), 'owner id: the key\'s digest')
  t.equal(keys.verify('hashed-two'), hashKey('hashed-two'), 'a key given by digest verifies')
  t.equal(keys.verify(`sha256:${hashKey('hashed-two')}`), null, 'the digest itself is not a key')
  t.equal(keys.verify('plain-on'), null)
  t.equal(keys.verify(''), null)
  t.equal(createApiKeys([]).verify('anything'), null)
  t.equal(createApiKeys(['clé-ünïcode-🔑']).verify('clé-ünïcode-🔑'), hashKey('clé-ünïcode-🔑'), 'a non-ASCII key: the digest of its UTF-8 bytes, as configured')
  t.equal(createApiKeys([`sha256:${hashKey('clé')}`]).verify('cle\u0301'), null, 'no normalisation: other bytes are another key')
  t.equal(createApiKeys([`sha256:${hashKey('k')}`]).verify('k'), createApiKeys(['k']).verify('k'), 'same owner whichever way the key is configured')

  t.throws(() => readApiKeysFile('/nonexistent/keys'), /API_KEYS_FILE \/nonexistent\/keys cannot be read \(ENOENT\)/)
})

t.test('API_KEYS_FILE with plain and hashed keys', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'fs-keys-'))
  const file = join(dir, 'keys')
  writeFileSync(file, `# service keys\nfile-plain-key\nsha256:${hashKey('file-hashed-key')}\n`)
  const { app, logs } = await build(t, { ...NO_LOGIN, API_KEYS: 'env-key', API_KEYS_FILE: file })
  const get = async (key: string) => await app.inject({ method: 'GET', url: '/session', headers: { 'x-api-key': key } })
  for (const key of ['env-key', 'file-plain-key', 'file-hashed-key']) t.equal((await get(key)).statusCode, 200, key)
  for (const key of [`sha256:${hashKey('file-hashed-key')}`, 'file-plain-key ', 'FILE-PLAIN-KEY', 'x'.repeat(5000), 'rejected-key-8f3a']) {
    expectError(t, await get(key), 401, 'API_KEY_INVALID')
  }
  const all = logs()
  for (const secret of ['rejected-key-8f3a', 'file-plain-key', 'file-hashed-key', 'env-key']) t.notOk(all.includes(secret), `${secret} not in the log`)
})

t.test('an unreadable API_KEYS_FILE stops start-up without its contents', async (t) => {
  await t.rejects(async () => { await build(t, { ...NO_LOGIN, API_KEYS_FILE: '/nonexistent/keys' }) }, /API_KEYS_FILE \/nonexistent\/keys cannot be read/)
})

t.test('every configured key is compared, whichever matches', async (t) => {
  // The comparison loop has no early exit: count timingSafeEqual calls.
  // node:crypto's function is wrapped where every importer sees it (its
  // ESM named exports synced), which works the same on every Node line;
  // tap's mockImport did not reach the built-in under Node 22's loaders.
  const require = createRequire(import.meta.url)
  const crypto = require('node:crypto') as typeof import('node:crypto')
  const original = crypto.timingSafeEqual
  let calls = 0
  crypto.timingSafeEqual = (a, b) => { calls++; return original(a, b) }
  syncBuiltinESMExports()
  t.teardown(() => { crypto.timingSafeEqual = original; syncBuiltinESMExports() })
  const keys = createApiKeys(['k1', 'k2', 'k3', 'k4'])
  for (const k of ['k1', 'k4', 'nope']) {
    calls = 0
    keys.verify(k)
    t.equal(calls, 4, `${k}: 4 comparisons`)
  }
})

// The Foundry URL policy on its own (injected resolver, no network) and on
// the handshake's x-foundry-url header.
import t from 'tap'
import { classifyAddress, createUrlPolicy, kindAllowed, parseAddressList, type Resolver } from '../../lib/access/url-policy.ts'
import { API_KEY, build, expectError, type TestContext, NO_LOGIN } from '../helper.ts'

const names: Record<string, string[]> = {
  'public.test': ['93.184.216.34', '2606:2800:220:1:248:1893:25c8:1946'],
  'private.test': ['10.1.2.3'],
  'loopback.test': ['127.0.0.1', '::1'],
  'mixed.test': ['93.184.216.34', '169.254.169.254'],
  'metadata.test': ['169.254.169.254'],
  'mapped.test': ['::ffff:169.254.169.254']
}
const resolve: Resolver = async (host) => {
  const a = names[host]
  if (a === undefined) throw Object.assign(new Error(`getaddrinfo ENOTFOUND ${host}`), { code: 'ENOTFOUND' })
  return a
}

t.test('classifyAddress', async (t) => {
  const cases: Array<[string, string]> = [
    ['127.0.0.1', 'loopback'], ['127.255.0.9', 'loopback'], ['::1', 'loopback'], ['[::1]', 'loopback'],
    ['10.0.0.1', 'private'], ['172.16.5.4', 'private'], ['172.31.255.255', 'private'], ['192.168.1.1', 'private'],
    ['100.64.0.1', 'private'], ['fd12:3456::1', 'private'], ['fdaa:0:1::3', 'private'],
    ['169.254.1.1', 'link-local'], ['fe80::1', 'link-local'], ['fe80::1%eth0', 'link-local'],
    ['169.254.169.254', 'metadata'], ['fd00:ec2::254', 'metadata'], ['100.100.100.200', 'metadata'],
    ['0.0.0.0', 'unspecified'], ['::', 'unspecified'],
    ['224.0.0.1', 'multicast'], ['ff02::1', 'multicast'],
    ['240.0.0.1', 'reserved'], ['255.255.255.255', 'reserved'], ['192.0.2.1', 'reserved'],
    ['8.8.8.8', 'public'], ['172.32.0.1', 'public'], ['2606:4700::1111', 'public'],
    // IPv4 inside IPv6: mapped (dotted and hex), NAT64
    ['::ffff:127.0.0.1', 'loopback'], ['::ffff:7f00:1', 'loopback'], ['::ffff:a9fe:a9fe', 'metadata'],
    ['64:ff9b::a9fe:a9fe', 'metadata'], ['::ffff:8.8.8.8', 'public'],
    ['not an ip', 'reserved']
  ]
  for (const [ip, kind] of cases) t.equal(classifyAddress(ip), kind, ip)
})

t.test('modes', async (t) => {
  const allowedIn = (mode: 'default' | 'public-only' | 'any') =>
    (['public', 'loopback', 'private', 'unspecified', 'link-local', 'metadata', 'multicast', 'reserved'] as const)
      .filter((k) => kindAllowed(k, mode))
  t.same(allowedIn('default'), ['public', 'loopback', 'private', 'unspecified'])
  t.same(allowedIn('public-only'), ['public'])
  t.same(allowedIn('any').length, 8)
})

t.test('check(): syntax, credentials and addresses', async (t) => {
  const def = createUrlPolicy({ mode: 'default', resolve })
  const pub = createUrlPolicy({ mode: 'public-only', resolve })
  const any = createUrlPolicy({ mode: 'any', resolve })

  for (const p of [def, pub, any]) {
    for (const bad of ['not a url', 'ftp://public.test/', 'file:///etc/passwd', 'javascript:alert(1)', 'ws://public.test/', 'data:text/html,x',
      'http://user:pw@public.test/', 'http://user@public.test/', 'http://:pw@public.test/']) {
      await t.rejects(p.check(bad), { code: 'INVALID_FOUNDRY_URL' }, `${p.mode}: ${bad}`)
    }
  }
  const err = await def.check('http://user:hunter2@public.test/').catch((e: Error) => e)
  t.notMatch(String((err as Error).message), /hunter2/, 'the refusal does not echo the credentials')

  // default: loopback and private pass; link-local and metadata do not.
  for (const ok of ['http://127.0.0.1:30000/', 'http://loopback.test/', 'https://private.test/game', 'http://[::1]:30000/', 'http://public.test/', 'HTTP://PUBLIC.TEST./']) {
    t.ok(await def.check(ok), `default allows ${ok}`)
  }
  for (const bad of ['http://169.254.169.254/latest/meta-data/', 'http://[fe80::1]/', 'http://metadata.google.internal/', 'http://metadata/',
    'http://metadata.test/', 'http://mixed.test/', 'http://mapped.test/', 'http://[::ffff:169.254.169.254]/', 'http://0xa9fea9fe/',
    'http://2852039166/', 'http://169.254.169.254.nip.io.invalid/', 'http://224.0.0.1/']) {
    await t.rejects(def.check(bad), { code: 'INVALID_FOUNDRY_URL' }, `default refuses ${bad}`)
  }

  // public-only: only public addresses, every one of them.
  t.ok(await pub.check('https://public.test/'))
  t.ok(await pub.check('http://8.8.8.8:30000/'))
  for (const bad of ['http://127.0.0.1:30000/', 'http://[::1]/', 'http://loopback.test/', 'http://private.test/', 'http://10.0.0.1/',
    'http://192.168.0.10/', 'http://0.0.0.0:30000/', 'http://2130706433/', 'http://0x7f.1/', 'http://mixed.test/', 'http://[fdaa::1]/']) {
    await t.rejects(pub.check(bad), { code: 'INVALID_FOUNDRY_URL', message: /public/ }, `public-only refuses ${bad}`)
  }

  // any: no address check at all (no resolution either).
  t.ok(await any.check('http://169.254.169.254/'))
  t.ok(await any.check('http://unresolvable.invalid/'))

  // A name that cannot be resolved is refused with the reason.
  await t.rejects(def.check('http://nowhere.test/'), { code: 'INVALID_FOUNDRY_URL', message: /cannot resolve/ })
  // A resolver that hangs is bounded.
  const slow = createUrlPolicy({ mode: 'default', resolve: async () => await new Promise<string[]>(() => {}), resolveTimeoutMs: 50 })
  const t0 = Date.now()
  await t.rejects(slow.check('http://slow.test/'), { code: 'INVALID_FOUNDRY_URL' })
  // The resolver never answers, so the refusal itself shows the bound; the
  // time shows it was the configured 50 ms, not the default 5 s.
  t.ok(Date.now() - t0 < 4000, 'resolution timed out at resolveTimeoutMs')
})

t.test('checkUrl and resolveChecked: one resolution, every address checked, reasons', async (t) => {
  let lookups = 0
  let time = 0
  const counting: Resolver = async (h) => { lookups++; return await resolve(h) }
  const policy = createUrlPolicy({ mode: 'public-only', resolve: counting, cacheMs: 1000, now: () => time })
  t.same(await policy.checkUrl('https://public.test/scripts/foundry.js'), { ok: true, addresses: names['public.test'] })
  t.match(await policy.checkUrl(new URL('wss://public.test/socket.io/')), { ok: true })
  t.match(await policy.checkUrl('http://127.0.0.1:30000/'), { ok: false, reason: 'policy-loopback' })
  t.match(await policy.checkUrl('http://mixed.test/'), { ok: false, reason: 'policy-metadata', address: '169.254.169.254' })
  t.match(await policy.checkUrl('http://metadata.google.internal/'), { ok: false, reason: 'metadata-host' })
  t.match(await policy.checkUrl('http://nowhere.test/'), { ok: false, reason: 'unresolvable' }, 'fail closed')
  for (const bad of ['file:///etc/passwd', 'chrome://version', 'ftp://public.test/', 'data:text/html,x', 'http://u:p@public.test/', 'not a url']) {
    t.match(await policy.checkUrl(bad), { ok: false, reason: 'bad-url' }, bad)
  }
  t.match(await policy.resolveChecked('[::1]'), { ok: false, reason: 'policy-loopback' })
  t.match(await policy.resolveChecked('public.test.'), { ok: true })
  const before = lookups
  await policy.checkUrl('https://public.test/a')
  t.equal(lookups, before, 'a resolution is reused within cacheMs')
  time += 2000
  await policy.checkUrl('https://public.test/b')
  t.equal(lookups, before + 1, 'and made again after it')

  t.equal(policy.allowAddress('93.184.216.34'), true)
  t.equal(policy.allowAddress('127.0.0.1'), false)
  t.equal(policy.allowAddress('[::1]'), false)
  t.equal(createUrlPolicy({ mode: 'default' }).allowAddress('127.0.0.1'), true)
  t.equal(createUrlPolicy({ mode: 'default' }).allowAddress('169.254.169.254'), false)
})

t.test('operator lists: FOUNDRY_URL_ALLOW and FOUNDRY_URL_DENY', async (t) => {
  t.test('parsing', async (t) => {
    const l = parseAddressList('FOUNDRY_URL_DENY', ' 10.0.0.0/8, 203.0.113.7  fd00::/8,[::1] ')
    t.same(l.entries, ['10.0.0.0/8', '203.0.113.7', 'fd00::/8', '[::1]'])
    t.ok(l.has('10.9.8.7'))
    t.ok(l.has('::ffff:10.1.1.1'), 'IPv4 inside IPv6 is matched as IPv4')
    t.ok(l.has('[fd12::1]'))
    t.ok(l.has('::1'))
    t.notOk(l.has('11.0.0.1'))
    t.notOk(l.has('not an ip'))
    t.same(parseAddressList('X', '').entries, [])
    for (const bad of ['10.0.0.0/33', '10.0.0.0/', 'fd00::/129', 'example.com', '10.0.0.0/8/9', '999.1.1.1', '10.0.0.0/-1']) {
      t.throws(() => parseAddressList('FOUNDRY_URL_DENY', bad), { message: /^FOUNDRY_URL_DENY: ".*"/ }, bad)
    }
  })

  t.test('allow: a private address allowed on a public-only instance; deny beats the mode and the allow list', async (t) => {
    const pub = createUrlPolicy({
      mode: 'public-only',
      resolve,
      allow: parseAddressList('A', '10.1.2.0/24, 127.0.0.1'),
      deny: parseAddressList('D', '127.0.0.1, 93.184.216.0/24')
    })
    await t.resolves(pub.check('http://private.test/'), 'private.test (10.1.2.3) is allowed')
    t.match(await pub.checkUrl('http://10.1.3.1/'), { ok: false, reason: 'policy-private' }, 'outside the allowed range')
    t.match(await pub.checkUrl('http://127.0.0.1/'), { ok: false, reason: 'deny-list' }, 'deny beats allow')
    t.match(await pub.checkUrl('http://public.test/'), { ok: false, reason: 'deny-list' }, 'deny beats the mode')
    await t.rejects(pub.check('http://public.test/'), { code: 'INVALID_FOUNDRY_URL', message: /FOUNDRY_URL_DENY/ })
    t.same(pub.addressVerdict('10.1.2.99'), { ok: true })

    const any = createUrlPolicy({ mode: 'any', resolve, deny: parseAddressList('D', '169.254.0.0/16') })
    t.match(await any.checkUrl('http://metadata.test/'), { ok: false, reason: 'deny-list' }, 'mode any still applies the deny list')
    t.match(await any.checkUrl('http://private.test/'), { ok: true })
  })

  t.test('a bad list stops start-up with the entry named', async (t) => {
    await t.rejects(async () => { await build(t, { ...NO_LOGIN, FOUNDRY_URL_DENY: '10.0.0.0/40' }) }, { message: /FOUNDRY_URL_DENY: "10\.0\.0\.0\/40" has a bad prefix length/ })
    await t.rejects(async () => { await build(t, { ...NO_LOGIN, FOUNDRY_URL_ALLOW: 'my-foundry.internal' }) }, { message: /FOUNDRY_URL_ALLOW: "my-foundry\.internal" is not an IP address or CIDR range/ })
  })

  t.test('x-foundry-url: deny beats the default policy; allow opens a private Foundry to public-only', async (t) => {
    const post = async (app: Awaited<ReturnType<typeof build>>['app'], url: string) => await app.inject({
      method: 'POST', url: '/session-handshake', headers: { 'x-api-key': API_KEY, 'x-foundry-url': url, 'x-username': 'GM' }
    })
    const denied = await build(t, { ...NO_LOGIN, FOUNDRY_URL_DENY: '127.0.0.0/8' })
    const res = await post(denied.app, 'http://127.0.0.1:30000/')
    expectError(t, res, 400, 'INVALID_FOUNDRY_URL')
    t.match(res.json().error, /FOUNDRY_URL_DENY/)
    const allowed = await build(t, { ...NO_LOGIN, FOUNDRY_URL_POLICY: 'public-only', FOUNDRY_URL_ALLOW: '127.0.0.1' })
    t.equal((await post(allowed.app, 'http://127.0.0.1:30000/')).statusCode, 200)
    expectError(t, await post(allowed.app, 'http://127.0.0.2:30000/'), 400, 'INVALID_FOUNDRY_URL')
  })
})

t.test('the handshake applies FOUNDRY_URL_POLICY to x-foundry-url', async (t) => {
  const post = async (app: Awaited<ReturnType<typeof build>>['app'], url: string) => await app.inject({
    method: 'POST', url: '/session-handshake', headers: { 'x-api-key': API_KEY, 'x-foundry-url': url, 'x-username': 'GM' }
  })

  t.test('default allows loopback (a local Foundry)', async (t) => {
    const { app } = await build(t, NO_LOGIN)
    t.equal((await post(app, 'http://127.0.0.1:30000/')).statusCode, 200)
    t.equal((await post(app, 'http://localhost:30000/')).statusCode, 200, 'localhost resolves to loopback')
    expectError(t, await post(app, 'http://169.254.169.254/'), 400, 'INVALID_FOUNDRY_URL')
  })

  t.test('public-only refuses loopback, private and link-local', async (t) => {
    const { app } = await build(t, { ...NO_LOGIN, FOUNDRY_URL_POLICY: 'public-only' })
    for (const url of ['http://127.0.0.1:30000/', 'http://localhost:30000/', 'http://[::1]/', 'http://10.0.0.5/', 'http://192.168.1.2:30000/', 'http://169.254.169.254/']) {
      const res = await post(app, url)
      expectError(t, res, 400, 'INVALID_FOUNDRY_URL')
      t.match(res.json().error, /public/, url)
    }
    t.equal(app.keystore.size(), 0, 'no handshake was stored')
  })

  t.test('public-only with an injected resolver', async (t) => {
    const app = await buildWithResolver(t, { FOUNDRY_URL_POLICY: 'public-only' }, resolve)
    t.equal((await post(app, 'https://public.test/')).statusCode, 200)
    expectError(t, await post(app, 'https://mixed.test/'), 400, 'INVALID_FOUNDRY_URL')
  })

  t.test('any lets everything through', async (t) => {
    const { app } = await build(t, { ...NO_LOGIN, FOUNDRY_URL_POLICY: 'any' })
    t.equal((await post(app, 'http://169.254.169.254/')).statusCode, 200)
    expectError(t, await post(app, 'http://u:p@127.0.0.1/'), 400, 'INVALID_FOUNDRY_URL')
  })

  t.test('an unknown policy stops start-up', async (t) => {
    await t.rejects(async () => { await build(t, { ...NO_LOGIN, FOUNDRY_URL_POLICY: 'open' }) }, /FOUNDRY_URL_POLICY/)
  })
})

async function buildWithResolver (t: TestContext, env: Record<string, string>, r: Resolver) {
  return (await build(t, { ...NO_LOGIN, ...env }, { resolve: r })).app
}

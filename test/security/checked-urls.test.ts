// The handshake's URL check remembered for a moment (lib/access/checked-urls.ts):
// a pass is reused for ttlMs and no longer, a refusal never, the map is
// bounded; through the service, a name that starts resolving to a refused
// address is refused once the moment has passed.
import t from 'tap'
import { rememberChecks } from '../../lib/access/checked-urls.ts'
import { InvalidFoundryUrl } from '../../lib/errors.ts'
import { API_KEY, build, expectError, NO_LOGIN } from '../helper.ts'

t.test('passes are reused for ttlMs, refusals never, at most max values', async (t) => {
  let clock = 0
  const calls: string[] = []
  let refuse = new Set<string>()
  const check = rememberChecks(async (raw) => {
    calls.push(raw)
    if (refuse.has(raw)) throw new InvalidFoundryUrl('refused')
    return new URL(raw.trim())
  }, { ttlMs: 1000, max: 2, now: () => clock })

  t.equal(await check(' http://a.test/x '), 'http://a.test/x', 'the href, as the check made it')
  t.equal(check(' http://a.test/x '), 'http://a.test/x', 'a hit answers at once')
  t.same(calls, [' http://a.test/x '], 'checked once')
  clock = 999
  t.equal(check(' http://a.test/x '), 'http://a.test/x')
  clock = 1000
  refuse = new Set([' http://a.test/x '])
  await t.rejects(async () => await check(' http://a.test/x '), { code: 'INVALID_FOUNDRY_URL' }, 'checked again once ttlMs passed')
  await t.rejects(async () => await check(' http://a.test/x '), { code: 'INVALID_FOUNDRY_URL' }, 'a refusal is not kept')
  t.equal(calls.length, 3)

  refuse = new Set()
  calls.length = 0
  await check('http://b.test/')
  await check('http://c.test/')
  await check('http://d.test/') // b goes
  await check('http://c.test/')
  await check('http://b.test/')
  t.same(calls, ['http://b.test/', 'http://c.test/', 'http://d.test/', 'http://b.test/'], 'bounded: the oldest is dropped first')
})

t.test('the handshake: its foundryUrl is the checked href, and a refused URL is refused every time', async (t) => {
  const { app } = await build(t, { ...NO_LOGIN, FOUNDRY_URL_POLICY: 'public-only' }, {
    resolve: async (host) => host === 'public.test' ? ['93.184.216.34'] : ['169.254.169.254']
  })
  const post = async (url: string) => await app.inject({
    method: 'POST', url: '/session-handshake', headers: { 'x-api-key': API_KEY, 'x-foundry-url': url, 'x-username': 'GM' }
  })
  for (let i = 0; i < 3; i++) {
    const ok = await post(' https://PUBLIC.test ')
    t.equal(ok.statusCode, 200)
    t.equal(ok.json().foundryUrl, 'https://public.test/', 'normalised by the check, first time and remembered')
    expectError(t, await post('https://metadata-ish.test/'), 400, 'INVALID_FOUNDRY_URL')
    expectError(t, await post('https://u:p@public.test/'), 400, 'INVALID_FOUNDRY_URL')
  }
  t.equal(app.keystore.size(), 3)
})

// Size limits on bodies and headers (in the error shape, over real HTTP for
// what the parser refuses before Fastify), and the OpenAPI console: public
// docs, no way around the API key through it.
import t from 'tap'
import net from 'node:net'
import { API_KEY, build, expectError } from '../helper.ts'

async function raw (port: number, request: string): Promise<{ status: number, body: string }> {
  return await new Promise((resolve, reject) => {
    const socket = net.connect(port, '127.0.0.1')
    let data = ''
    socket.on('data', (c) => { data += String(c) })
    socket.on('error', () => {}) // the server may reset after answering
    socket.on('close', () => {
      const m = /^HTTP\/1\.1 (\d+)/.exec(data)
      if (m === null) { reject(new Error(`no HTTP answer: ${data.slice(0, 200)}`)); return }
      resolve({ status: Number(m[1]), body: data.slice(data.indexOf('\r\n\r\n') + 4) })
    })
    socket.write(request)
  })
}

t.test('limits over real HTTP', async (t) => {
  const { app, logs } = await build(t)
  await app.listen({ host: '127.0.0.1', port: 0 })
  const port = (app.server.address() as net.AddressInfo).port

  const big = await raw(port, `GET /session HTTP/1.1\r\nHost: x\r\nx-api-key: ${API_KEY}\r\nx-filler: ${'a'.repeat(20_000)}\r\n\r\n`)
  t.equal(big.status, 431)
  t.same(JSON.parse(big.body), { statusCode: 431, code: 'HEADERS_TOO_LARGE', error: 'The request line and headers exceed 16384 bytes' })

  const longUrl = await raw(port, `GET /session?${'q'.repeat(20_000)} HTTP/1.1\r\nHost: x\r\n\r\n`)
  t.equal(longUrl.status, 431, 'a long URL counts against the same limit')

  const garbage = await raw(port, 'NOT HTTP AT ALL\r\n\r\n')
  t.equal(garbage.status, 400)
  t.match(JSON.parse(garbage.body), { statusCode: 400, code: 'INVALID_REQUEST' })

  const body = JSON.stringify({ handshakeToken: 'x'.repeat(70_000), encryptedPassword: 'y' })
  const tooBig = await raw(port, `POST /start-session HTTP/1.1\r\nHost: x\r\nx-api-key: ${API_KEY}\r\ncontent-type: application/json\r\ncontent-length: ${body.length}\r\nconnection: close\r\n\r\n${body}`)
  t.equal(tooBig.status, 413)
  t.match(JSON.parse(tooBig.body), { statusCode: 413, code: 'PAYLOAD_TOO_LARGE' })

  const ok = await raw(port, 'GET /health HTTP/1.1\r\nHost: x\r\nconnection: close\r\n\r\n')
  t.equal(ok.status, 200, 'the server still answers')
  t.notOk(logs().includes(API_KEY), 'the raw requests (API key included) were not logged')
})

t.test('headers are bounded by the schemas', async (t) => {
  const { app } = await build(t)
  const hs = async (headers: Record<string, string>) => await app.inject({ method: 'POST', url: '/session-handshake', headers: { 'x-api-key': API_KEY, 'x-foundry-url': 'http://127.0.0.1:9/', 'x-username': 'GM', ...headers } })
  expectError(t, await hs({ 'x-foundry-url': 'http://127.0.0.1:9/' + 'a'.repeat(3000) }), 400, 'INVALID_REQUEST')
  expectError(t, await hs({ 'x-username': 'u'.repeat(300) }), 400, 'INVALID_REQUEST')
  expectError(t, await hs({ 'x-world-name': 'w'.repeat(300) }), 400, 'INVALID_REQUEST')
  expectError(t, await app.inject({ method: 'GET', url: '/session', headers: { 'x-api-key': 'k'.repeat(2000) } }), 401, 'API_KEY_INVALID')
})

t.test('the OpenAPI console is no way around the API key', async (t) => {
  const { app } = await build(t)
  const doc = await app.inject({ method: 'GET', url: '/docs/json' })
  t.equal(doc.statusCode, 200, 'the document is public')
  t.notOk(doc.body.includes(API_KEY), 'and holds no key')
  const ui = await app.inject({ method: 'GET', url: '/docs/static/swagger-initializer.js' })
  t.equal(ui.statusCode, 200)
  t.match(ui.body, /persistAuthorization":false|persistAuthorization: false|"persistAuthorization":false/, 'the console does not keep keys in the browser')

  // Every way around /docs ends at a route's own key check (401) or at no
  // route (404), never at a session route without a key.
  const MISSING = [401, 'API_KEY_MISSING'] as const
  const NONE = [404, 'ROUTE_NOT_FOUND'] as const
  const expected: Record<string, Record<'GET' | 'POST' | 'DELETE', readonly [number, string]>> = {
    '/docs/../session': { GET: MISSING, POST: NONE, DELETE: NONE },
    '/docs/%2e%2e/session': { GET: MISSING, POST: NONE, DELETE: NONE },
    '/docs/static/..%2f..%2fsession': { GET: NONE, POST: NONE, DELETE: NONE },
    '/docs/static/%2e%2e%2f%2e%2e%2fsession': { GET: NONE, POST: NONE, DELETE: NONE },
    '/docs//session': { GET: NONE, POST: NONE, DELETE: NONE },
    '/docs/json/../../session': { GET: MISSING, POST: NONE, DELETE: NONE },
    '//session': { GET: NONE, POST: NONE, DELETE: NONE },
    '/session/': { GET: NONE, POST: NONE, DELETE: NONE },
    '/SESSION': { GET: NONE, POST: NONE, DELETE: NONE },
    '/docs/static/../../start-session': { GET: NONE, POST: MISSING, DELETE: NONE }
  }
  for (const [url, byMethod] of Object.entries(expected)) {
    for (const method of ['GET', 'POST', 'DELETE'] as const) {
      const res = await app.inject({ method, url })
      const [status, code] = byMethod[method]
      expectError(t, res, status, code)
      t.notOk(res.body.includes('activeSessions') || res.body.includes('"token"'), `${method} ${url} reached no session route`)
    }
  }
  const files = await app.inject({ method: 'GET', url: '/docs/static/../../../package.json' })
  expectError(t, files, 404, 'ROUTE_NOT_FOUND')
  t.notOk(files.body.includes('"dependencies"'), 'no file outside the console\'s own')
})

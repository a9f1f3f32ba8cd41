// One access-log line per request, at debug for successful handshakes and
// health checks, at info for the rest and every failure; a line below the
// logger's level is not built at all (plugins/access-log.ts).
import t from 'tap'
import { API_KEY, build, NO_LOGIN } from '../helper.ts'

const handshake = { method: 'POST' as const, url: '/session-handshake', headers: { 'x-api-key': API_KEY, 'x-foundry-url': 'http://127.0.0.1:30000/', 'x-username': 'Gamemaster' } }

const requestLines = (logs: string): Array<Record<string, unknown>> =>
  logs.split('\n').filter((l) => l !== '').map((l) => JSON.parse(l) as Record<string, unknown>).filter((l) => l.msg === 'request')

t.test('at info: a successful handshake and a health check log nothing, a failure one line', async (t) => {
  const { app, logs } = await build(t, { ...NO_LOGIN, LOG_LEVEL: 'info' })
  t.equal((await app.inject(handshake)).statusCode, 200)
  t.equal((await app.inject({ method: 'GET', url: '/health' })).statusCode, 200)
  t.equal((await app.inject({ ...handshake, headers: { ...handshake.headers, 'x-api-key': 'wrong-key' } })).statusCode, 401)
  t.match(requestLines(logs()), [{ level: 30, method: 'POST', path: '/session-handshake', status: 401, ms: Number }])
  t.equal(requestLines(logs()).length, 1, 'one line: the failure')
})

t.test('at debug: the successful handshake is logged, once, without its query string', async (t) => {
  const { app, logs } = await build(t, { ...NO_LOGIN, LOG_LEVEL: 'debug' })
  t.equal((await app.inject({ ...handshake, url: '/session-handshake?x=1' })).statusCode, 200)
  t.match(requestLines(logs()), [{ level: 20, method: 'POST', path: '/session-handshake', status: 200 }])
  t.equal(requestLines(logs()).length, 1)
})

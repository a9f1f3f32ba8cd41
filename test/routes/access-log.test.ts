// One access-log line per request, at debug for successful handshakes and
// health checks, at info for the rest and every failure; a line below the
// logger's level is not built at all (plugins/access-log.ts).
import t from 'tap'
import { Writable } from 'node:stream'
import Fastify from 'fastify'
import service, { REDACT, serverOptions } from '../../app.js'
import { API_KEY, testEnv } from '../helper.js'

async function app (level: string): Promise<{ inject: (o: { method: 'GET' | 'POST', url: string, headers?: Record<string, string> }) => Promise<number>, lines: () => Array<Record<string, unknown>> }> {
  const out: string[] = []
  const stream = new Writable({ write (chunk, _enc, cb) { out.push(String(chunk)); cb() } })
  const a = Fastify({ ...serverOptions, logger: { level, redact: REDACT, stream } })
  await a.register(service, { env: { ...testEnv }, processEnv: false })
  t.teardown(async () => { await a.close() })
  await a.ready()
  return {
    inject: async (o) => (await a.inject(o)).statusCode,
    lines: () => out.join('').split('\n').filter((l) => l !== '').map((l) => JSON.parse(l) as Record<string, unknown>).filter((l) => l.msg === 'request')
  }
}

const handshake = { method: 'POST' as const, url: '/session-handshake', headers: { 'x-api-key': API_KEY, 'x-foundry-url': 'http://127.0.0.1:30000/', 'x-username': 'Gamemaster' } }

t.test('at info: a successful handshake and a health check log nothing, a failure one line', async (t) => {
  const a = await app('info')
  t.equal(await a.inject(handshake), 200)
  t.equal(await a.inject({ method: 'GET', url: '/health' }), 200)
  t.equal(await a.inject({ ...handshake, headers: { ...handshake.headers, 'x-api-key': 'wrong-key' } }), 401)
  t.match(a.lines(), [{ level: 30, method: 'POST', path: '/session-handshake', status: 401, ms: Number }])
  t.equal(a.lines().length, 1, 'one line: the failure')
})

t.test('at debug: the successful handshake is logged, once, without its query string', async (t) => {
  const a = await app('debug')
  t.equal(await a.inject({ ...handshake, url: '/session-handshake?x=1' }), 200)
  t.match(a.lines(), [{ level: 20, method: 'POST', path: '/session-handshake', status: 200 }])
  t.equal(a.lines().length, 1)
})

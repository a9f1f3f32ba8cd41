// One error catalogue (lib/errors.ts): the README's error table, the OpenAPI
// document's error descriptions and the error classes all agree with it.
import t from 'tap'
import { readFileSync } from 'node:fs'
import * as errors from '../lib/errors.ts'
import { CATALOGUE, LOGIN_STAGES, isErrorCode, type ErrorCode } from '../lib/errors.ts'
import type { Stage } from '../lib/foundry/index.ts'
import { NO_LOGIN, build } from './helper.ts'

const readme = readFileSync(new URL('../README.md', import.meta.url), 'utf8')

/** The login stages the driver knows are exactly LOGIN_STAGES (fails the type check otherwise). */
type Same<A, B> = [A] extends [B] ? ([B] extends [A] ? true : false) : false
const stagesMatch: Same<Stage, typeof LOGIN_STAGES[number]> = true

/** The README row a catalogue entry should have. */
const row = (code: ErrorCode): string => {
  const { status, when, todo } = CATALOGUE[code]
  return `| ${status} | \`${code}\` | ${when} | ${todo} |`
}

t.test('the README error table is the catalogue, both ways', async (t) => {
  const section = readme.slice(readme.indexOf('### Errors'), readme.indexOf('\n### ', readme.indexOf('### Errors') + 1))
  const rows = section.split('\n').filter((l) => /^\| \d{3} \| `[A-Z_]+` \|/.test(l))
  const documented = rows.map((l) => /`([A-Z_]+)`/.exec(l)?.[1] ?? '')
  for (const code of Object.keys(CATALOGUE) as ErrorCode[]) {
    t.ok(rows.includes(row(code)), `README row for ${code}: ${row(code)}`)
  }
  t.same(documented.filter((c) => !isErrorCode(c)), [], 'no README row for a code outside the catalogue')
  t.equal(new Set(documented).size, documented.length, 'one row per code')
  t.same(documented, [...documented].sort((a, b) => CATALOGUE[a as ErrorCode].status - CATALOGUE[b as ErrorCode].status), 'rows in status order')
  t.ok(rows.length > 0, 'the table was found')
  t.notMatch(readme, /HANDSHAKE_OWNER_FULL/, 'no code that is never sent')
  for (const stage of LOGIN_STAGES) t.match(section, `\`${stage}\``, `the README names stage ${stage}`)
})

t.test('every error class throws a catalogued code with its status', async (t) => {
  let classes = 0
  for (const [name, value] of Object.entries(errors)) {
    if (typeof value !== 'function' || !/^[A-Z]/.test(name)) continue
    const err = new (value as new (m: string) => { code: string, statusCode: number })('x')
    classes++
    t.ok(isErrorCode(err.code), `${name}: ${err.code} is catalogued`)
    if (isErrorCode(err.code)) t.equal(err.statusCode, CATALOGUE[err.code].status, `${name}: status ${err.statusCode}`)
  }
  t.ok(classes > 30, `${classes} classes`)
  t.equal(stagesMatch, true)
})

t.test('the OpenAPI document describes errors from the catalogue', async (t) => {
  const { app } = await build(t, NO_LOGIN)
  const doc = (await app.inject({ method: 'GET', url: '/docs/json' })).json() as {
    info: { description: string }
    components: { schemas: Record<string, { properties: Record<string, { description?: string }> }> }
    paths: Record<string, Record<string, { responses: Record<string, { description: string }> }>>
  }
  const seen = new Set<string>([...doc.info.description.matchAll(/`([A-Z_]+)`/g)].map((m) => m[1]))
  for (const [path, methods] of Object.entries(doc.paths)) {
    for (const [method, op] of Object.entries(methods)) {
      for (const [status, response] of Object.entries(op.responses)) {
        const codes = [...response.description.matchAll(/`([A-Z_]+)`/g)].map((m) => m[1])
        if (Number(status) < 400 || (path === '/health' && status === '503')) {
          t.same(codes, [], `${method} ${path} ${status} names no code`)
          continue
        }
        t.ok(codes.length > 0, `${method} ${path} ${status} names its codes`)
        for (const code of codes) {
          t.ok(isErrorCode(code) && CATALOGUE[code].status === Number(status), `${method} ${path}: ${code} under ${status}`)
          t.ok(isErrorCode(code) && response.description.includes(CATALOGUE[code].when), `${method} ${path}: ${code} says when`)
          seen.add(code)
        }
        for (const common of ['REQUEST_TIMEOUT', 'HEADERS_TOO_LARGE', 'INTERNAL_ERROR'] as const) {
          t.ok(op.responses[CATALOGUE[common].status]?.description.includes(`\`${common}\``), `${method} ${path} documents ${common}`)
        }
      }
    }
  }
  t.same(Object.keys(CATALOGUE).filter((c) => !seen.has(c)), [], 'every catalogued code is in the document')
  t.match(doc.paths['/start-session'].post.responses['429'].description, /AT_CAPACITY/)
  t.notMatch(doc.paths['/start-session'].post.responses['429'].description, /HANDSHAKE_STORE_FULL|RATE_LIMITED/, 'start-session names no handshake-only 429')
  const stage = doc.components.schemas.ErrorReply?.properties.stage?.description ?? ''
  for (const s of LOGIN_STAGES) t.match(stage, s, `the stage description names ${s}`)
})

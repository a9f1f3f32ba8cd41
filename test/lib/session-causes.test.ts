// The table of causes (lib/session/causes.ts) is the README's: every code in
// both, the same words, and every code a catalogued error.
import t from 'tap'
import { readFileSync } from 'node:fs'
import { CAUSES } from '../../lib/session/causes.ts'
import { CATALOGUE } from '../../lib/errors.ts'

const readme = readFileSync(new URL('../../README.md', import.meta.url), 'utf8')

t.test('the README\'s table of causes is the code\'s', async (t) => {
  const rows = readme.split('\n').map((l) => /^\| (waits|stops): `([A-Z_]+)` \| (.*) \|$/.exec(l)).filter((m) => m !== null)
  t.same(rows.map((m) => m[2]), Object.keys(CAUSES), 'the same codes, in the same order')
  for (const m of rows) {
    const c = CAUSES[m[2] as keyof typeof CAUSES]
    t.equal(m[1], c.kind === 'permanent' ? 'stops' : 'waits', `${m[2]}: ${m[1]}`)
    t.equal(m[3], c.what, `${m[2]}: the same words`)
  }
  for (const code of Object.keys(CAUSES)) t.ok(code in CATALOGUE, `${code} is a catalogued error code`)
})

// The README is the user's door: keep its configuration table and quick
// start true to the code.
import t from 'tap'
import { readFileSync } from 'node:fs'
import { EnvSchema } from '../schemas/env.js'

const readme = readFileSync(new URL('../README.md', import.meta.url), 'utf8')
const pkg = JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8')) as { scripts: Record<string, string> }

t.test('every configuration variable is in the README table with its default', async (t) => {
  for (const [name, schema] of Object.entries(EnvSchema.properties) as Array<[string, { default?: unknown }]>) {
    const row = readme.split('\n').find((l) => l.startsWith(`| \`${name}\` |`))
    t.ok(row, `${name} has a row`)
    const def = schema.default === '' ? '*(empty)*' : `\`${String(schema.default)}\``
    t.ok(row?.includes(`| ${def} |`), `${name} default ${def}`)
  }
  const documented = readme.split('\n').filter((l) => /^\| `[A-Z_]+` \|/.test(l)).map((l) => /`([A-Z_]+)`/.exec(l)?.[1])
  t.same(documented.filter((n) => !(n! in EnvSchema.properties)), [], 'no row for a variable that does not exist')
})

t.test('the quick start commands exist', async (t) => {
  t.match(readme, /npm ci && npm start/)
  t.match(readme, /npm test/)
  t.ok(pkg.scripts.start, 'npm start')
  t.ok(pkg.scripts.test, 'npm test')
  t.ok(pkg.scripts.bench, 'npm run bench')
})

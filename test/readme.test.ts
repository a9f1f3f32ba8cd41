// The README is the user's door: keep its configuration table and quick
// start true to the code.
import t from 'tap'
import { readFileSync, readdirSync } from 'node:fs'
import { EnvSchema } from '../schemas/env.ts'

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
  t.match(readme, /npm run test:all/)
  t.ok(pkg.scripts.start, 'npm start')
  t.equal(pkg.scripts['test:all'], 'bash scripts/test.sh', 'npm run test:all is the script CI runs')
  t.match(readFileSync(new URL('../.ci/run', import.meta.url), 'utf8'), /scripts\/test\.sh/, '.ci/run runs the README\'s test command')
  t.ok(pkg.scripts.test, 'npm test')
  t.ok(pkg.scripts.bench, 'npm run bench')
})

t.test('every code in the error table is produced by a test', async (t) => {
  // test/errors.test.ts keeps the table equal to lib/errors.ts; here: some
  // test file asserts each code (test/e2e/error-codes.test.ts has the rare ones).
  const section = readme.slice(readme.indexOf('### Errors'), readme.indexOf('\n### ', readme.indexOf('### Errors') + 1))
  const listed = section.split('\n').map((l) => /^\| \d{3} \| `([A-Z_]+)` \|/.exec(l)?.[1]).filter((c): c is string => c !== undefined)
  t.ok(listed.length > 40, `${listed.length} codes listed`)
  const files: string[] = []
  const walk = (dir: URL): void => {
    for (const e of readdirSync(dir, { withFileTypes: true })) {
      if (e.isDirectory()) walk(new URL(`${e.name}/`, dir))
      else if (e.name.endsWith('.test.ts') && e.name !== 'readme.test.ts' && e.name !== 'errors.test.ts') files.push(readFileSync(new URL(e.name, dir), 'utf8'))
    }
  }
  walk(new URL('./', import.meta.url))
  for (const code of listed) t.ok(files.some((f) => f.includes(`'${code}'`)), `a test produces ${code}`)
})

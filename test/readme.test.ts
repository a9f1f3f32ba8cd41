// The README is the user's door: keep its configuration table and quick
// start true to the code.
import t from 'tap'
import { readFileSync, readdirSync } from 'node:fs'
import * as errors from '../lib/errors.js'
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

t.test('the error table: codes the service has, each produced by a test', async (t) => {
  const section = readme.slice(readme.indexOf('### Errors'), readme.indexOf('### Foundry versions'))
  const listed = [...new Set(section.split('\n').filter((l) => /^\| \d{3}/.test(l))
    .flatMap((l) => [...l.matchAll(/`([A-Z][A-Z_]+)`/g)].map((m) => m[1]!)))]
    .filter((c) => !(c in EnvSchema.properties)) // FOUNDRY_URL_POLICY is named in a reason
  t.ok(listed.length > 40, `${listed.length} codes listed`)

  // Codes the service answers with: lib/errors.ts, and the error handler's own.
  const own = new Set<string>()
  for (const E of Object.values(errors)) {
    if (typeof E !== 'function' || !/^[A-Z]/.test(E.name)) continue
    try {
      const code = (new (E as new (m: string) => { code?: unknown })('x')).code
      if (typeof code === 'string') own.add(code)
    } catch {}
  }
  const handler = readFileSync(new URL('../plugins/error-handler.ts', import.meta.url), 'utf8')
  for (const m of handler.matchAll(/'([A-Z][A-Z_]+)'/g)) own.add(m[1]!)
  const unknown: Record<string, string> = {
    HANDSHAKE_OWNER_FULL: 'lib/errors.ts gives HandshakeOwnerFull the code HANDSHAKE_STORE_FULL'
  }
  for (const code of listed) {
    t.ok(own.has(code), `${code} is a code the service has`, unknown[code] !== undefined ? { todo: unknown[code] } : {})
  }
  const undocumented = [...errors.OWN_CODES].filter((c) => !listed.includes(c))
  t.same(undocumented, [], 'every 5xx code the service explains is in the table')

  // A test file names it (test/e2e/error-codes.test.ts has the rare ones).
  const files: string[] = []
  const walk = (dir: URL): void => {
    for (const e of readdirSync(dir, { withFileTypes: true })) {
      if (e.isDirectory()) walk(new URL(`${e.name}/`, dir))
      else if (e.name.endsWith('.test.ts') && e.name !== 'readme.test.ts') files.push(readFileSync(new URL(e.name, dir), 'utf8'))
    }
  }
  walk(new URL('./', import.meta.url))
  const pending: Record<string, string> = {
    WORLD_LAUNCH_FAILED: 'the stand-in variant for a failed world launch comes with the driver\'s work'
  }
  for (const code of listed) {
    t.ok(files.some((f) => f.includes(`'${code}'`)), `a test produces ${code}`, pending[code] !== undefined ? { todo: pending[code] } : {})
  }
})

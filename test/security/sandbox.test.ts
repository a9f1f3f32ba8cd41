// Chromium runs sandboxed when the service is not root, and never with
// --disable-web-security. The real check launches Chromium as a user that is
// not root: `nobody` when the tests run as root, else the tests' own user.
import t from 'tap'
import { execFile } from 'node:child_process'
import { existsSync, mkdtempSync, chmodSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join, resolve } from 'node:path'
import { promisify } from 'node:util'
import { resolveChromium } from '../../lib/browser/chromium.ts'

const runuser = ['/usr/sbin/runuser', '/sbin/runuser'].find((p) => existsSync(p))
const uid = process.getuid?.()
const isRoot = uid === 0
const canProbe = uid !== undefined && (!isRoot || runuser !== undefined)

const asUid = async <T>(uid: number, fn: () => Promise<T>): Promise<T> => {
  const original = process.getuid
  process.getuid = () => uid
  try { return await fn() } finally { process.getuid = original }
}

t.test('launch flags', async (t) => {
  const user = await asUid(1000, async () => await resolveChromium())
  t.notOk(user.args.includes('--no-sandbox'), 'non-root: sandbox on')
  t.notOk(user.args.includes('--no-zygote'), 'non-root: zygote on (the sandbox needs it)')
  const root = await asUid(0, async () => await resolveChromium())
  t.ok(root.args.includes('--no-sandbox'), 'root: Chromium refuses the sandbox, so it is off')
  t.notOk(root.args.includes('--no-zygote'), 'root: renderers still fork from the zygote (no exec of the binary per session)')
  for (const r of [user, root]) {
    t.notOk(r.args.includes('--disable-web-security'), 'web security stays on')
    t.notOk(r.args.includes('--allow-running-insecure-content'))
    t.notOk(r.args.includes('--single-process'))
  }
  const custom = await asUid(1000, async () => await resolveChromium({ executablePath: '/usr/bin/true' }))
  t.notOk(custom.args.includes('--no-sandbox'), 'CHROMIUM_PATH, non-root: sandbox on')
  const customRoot = await asUid(0, async () => await resolveChromium({ executablePath: '/usr/bin/true' }))
  t.ok(customRoot.args.includes('--no-sandbox'))
  const escape = await asUid(1000, async () => await resolveChromium({ args: ['--no-sandbox'] }))
  t.ok(escape.args.includes('--no-sandbox'), 'CHROMIUM_ARGS=--no-sandbox still works where user namespaces are off')
})

t.test('not root, Chromium starts and its renderers are sandboxed', { skip: canProbe ? false : 'as root, needs runuser to switch to nobody' }, async (t) => {
  const home = mkdtempSync(join(tmpdir(), 'sandbox-probe-'))
  chmodSync(home, 0o777)
  t.teardown(() => { rmSync(home, { recursive: true, force: true }) })
  const probe = resolve('test/security/sandbox-probe.ts')
  const asUser = isRoot ? [runuser!, '-u', 'nobody', '--'] : []
  const [cmd, ...args] = [...asUser, 'env', `HOME=${home}`, `TMPDIR=${home}`, process.execPath, probe]
  const { stdout } = await promisify(execFile)(cmd, args, {
    timeout: 90_000,
    // A private copy of @sparticuz/chromium's binary lands in TMPDIR, owned by nobody.
    env: { PATH: process.env.PATH ?? '/usr/bin:/bin', CHROMIUM_PATH: '' }
  })
  const report = JSON.parse(stdout.trim().split('\n').pop()!) as { uid: number, args: string[], renderers: string[] }
  t.equal(report.uid, isRoot ? 65534 : uid, isRoot ? 'ran as nobody' : 'ran as the tests\' user')
  t.not(report.uid, 0, 'not as root')
  t.notOk(report.args.includes('--no-sandbox'))
  t.ok(report.renderers.length > 0, 'a renderer ran')
  t.ok(report.renderers.every((s) => s === '2'), `renderers under seccomp-bpf: ${report.renderers.join(',')}`)
})

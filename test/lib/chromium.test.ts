// Chromium's launch flags: V8 flags from the defaults and CHROMIUM_ARGS end
// up in one --js-flags switch (Chromium reads only the last one), and that
// switch reaches the renderers of a real launch. Each Chromium's profile is
// a directory of the service's own, gone when Chromium exits, and the
// profiles a killed service left behind go at the next launch.
import t from 'tap'
import { spawn, spawnSync } from 'node:child_process'
import { existsSync, mkdirSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { PROFILES_DIR, launchChromium, mergeJsFlags, removeStaleProfiles, resolveChromium } from '../../lib/browser/chromium.ts'
import { chromiumProfile, commandLine, processTree } from '../../support/proc.ts'

t.test('mergeJsFlags', async (t) => {
  t.same(mergeJsFlags(['--a', '--b']), ['--a', '--b'], 'nothing to merge')
  t.same(mergeJsFlags(['--a', '--js-flags=--x', '--b', '--js-flags=--y=1 --z']), ['--a', '--js-flags=--x --y=1 --z', '--b'],
    'every --js-flags in one, at the place of the first')
  t.same(mergeJsFlags(['--js-flags="--x"', "--js-flags='--y'"]), ['--js-flags=--x --y'], 'quotes from a shell line are dropped')
  t.same(mergeJsFlags(['--a', '--js-flags=', '--js-flags= ']), ['--a'], 'empty ones vanish')
  const input = ['--js-flags=--x', '--js-flags=--y']
  mergeJsFlags(input)
  t.same(input, ['--js-flags=--x', '--js-flags=--y'], 'the input is left as it was')
})

t.test('a V8 flag from CHROMIUM_ARGS reaches the renderer, beside the defaults', async (t) => {
  const resolved = await resolveChromium({ executablePath: process.env.CHROMIUM_PATH ?? '', args: ['--js-flags=--stack-size=900'] })
  const browser = await launchChromium(resolved)
  t.teardown(async () => { await browser.close().catch(() => {}) })
  const page = await (await browser.createBrowserContext()).newPage()
  await page.goto('about:blank')
  // Chromium rewrites its children's command lines (one string, spaces between).
  const renderers = processTree(browser.process()!.pid!).map(commandLine).filter((cmd) => cmd.includes('--type=renderer'))
  t.ok(renderers.length > 0, 'a renderer runs')
  for (const cmd of renderers) {
    t.equal(cmd.split('--js-flags=').length - 1, 1, 'one --js-flags switch')
    t.match(cmd, /--js-flags=[^]*--stack-size=900/, 'with the flag from CHROMIUM_ARGS')
  }
})

t.test('a Chromium\'s profile is a directory of the service\'s, removed when Chromium exits', async (t) => {
  const browser = await launchChromium(await resolveChromium({ executablePath: process.env.CHROMIUM_PATH ?? '' }))
  t.teardown(async () => { await browser.close().catch(() => {}) })
  const profile = chromiumProfile(browser.process()!.pid!)
  t.ok(profile?.startsWith(join(PROFILES_DIR, `${process.pid}-`)), `in ${PROFILES_DIR}, named for this process: ${profile}`)
  t.ok(existsSync(profile!) && readdirSync(profile!).length > 0, 'Chromium writes there')
  await browser.close()
  t.notOk(existsSync(profile!), 'gone once close() returns')

  // Chromium killed (a crash, the OOM killer): gone as well.
  const killed = await launchChromium(await resolveChromium({ executablePath: process.env.CHROMIUM_PATH ?? '' }))
  const other = chromiumProfile(killed.process()!.pid!)!
  const exited = new Promise((resolve) => killed.process()!.once('exit', resolve))
  killed.process()!.kill('SIGKILL')
  await exited
  t.notOk(existsSync(other), 'gone after SIGKILL too')
})

t.test('the profiles of processes that are gone are removed by the next launch; the others stay', async (t) => {
  // A pid that is gone: a process that has exited (and been reaped).
  const gone = spawnSync(process.execPath, ['-e', '0']).pid!
  const sleeper = spawn('sleep', ['60'], { stdio: 'ignore' })
  t.teardown(() => { sleeper.kill('SIGKILL') })
  // In a directory of this test's (other test files' services come and go in PROFILES_DIR).
  const dir = mkdtempSync(join(tmpdir(), 'fs-profiles-'))
  t.teardown(() => { rmSync(dir, { recursive: true, force: true }) })
  const stale = join(dir, `${gone}-killed`)
  const living = join(dir, `${sleeper.pid!}-running`)
  const ours = join(dir, `${process.pid}-other`)
  for (const d of [stale, living, ours]) {
    mkdirSync(join(d, 'Default'), { recursive: true })
    writeFileSync(join(d, 'Default', 'Preferences'), '{}')
  }
  t.same(removeStaleProfiles(dir), [`${gone}-killed`], 'only the one whose process is gone')
  t.notOk(existsSync(stale), 'removed')
  t.ok(existsSync(living) && existsSync(ours), 'a live process\'s profile and this process\'s stay')

  // A launch does it in PROFILES_DIR before it makes its own.
  mkdirSync(PROFILES_DIR, { recursive: true })
  const left = join(PROFILES_DIR, `${gone}-killed`)
  mkdirSync(left, { recursive: true })
  t.teardown(() => { rmSync(left, { recursive: true, force: true }) })
  const browser = await launchChromium(await resolveChromium({ executablePath: process.env.CHROMIUM_PATH ?? '' }))
  t.teardown(async () => { await browser.close().catch(() => {}) })
  t.notOk(existsSync(left), 'a launch removes them first')
})

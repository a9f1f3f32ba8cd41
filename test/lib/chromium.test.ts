// Chromium's launch flags: V8 flags from the defaults and CHROMIUM_ARGS end
// up in one --js-flags switch (Chromium reads only the last one), and that
// switch reaches the renderers of a real launch.
import t from 'tap'
import { readFileSync } from 'node:fs'
import { launchChromium, mergeJsFlags, resolveChromium } from '../../lib/browser/chromium.ts'
import { processTree } from '../../support/proc.ts'

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
  const renderers = processTree(browser.process()!.pid!)
    .map((p) => { try { return readFileSync(`/proc/${p}/cmdline`, 'utf8').replaceAll('\0', ' ') } catch { return '' } })
    .filter((cmd) => cmd.includes('--type=renderer'))
  t.ok(renderers.length > 0, 'a renderer runs')
  for (const cmd of renderers) {
    t.equal(cmd.split('--js-flags=').length - 1, 1, 'one --js-flags switch')
    t.match(cmd, /--js-flags=[^]*--stack-size=900/, 'with the flag from CHROMIUM_ARGS')
  }
})

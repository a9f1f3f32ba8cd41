// The density bench's second launch beside the defaults (bench/density.ts,
// densityVariants) and the bench-only way to launch without one of the
// service's default flags (bench/chromium-drop.ts).
import t from 'tap'
import { densityVariants } from '../bench/density.ts'
import { dropFlags } from '../bench/chromium-drop.ts'
import { EXTRA, launchChromium, resolveChromium } from '../lib/browser/chromium.ts'
import { killAllChildren, killedOnExit, tree } from '../bench/lib.ts'
import { alive } from '../support/proc.ts'

t.test('no variant unless asked', async (t) => {
  t.same(densityVariants({}), [])
  t.same(densityVariants({ BENCH_DENSITY_NO_ZYGOTE: '', BENCH_DENSITY_WITHOUT: ' ' }), [])
})

t.test('--no-zygote through CHROMIUM_ARGS, after or before the defaults', async (t) => {
  t.same(densityVariants({ BENCH_DENSITY_NO_ZYGOTE: '1', CHROMIUM_ARGS: '--foo' }),
    [{ name: 'service, `--no-zygote`', env: { CHROMIUM_ARGS: '--foo --no-zygote' }, first: false }])
  t.equal(densityVariants({ BENCH_DENSITY_NO_ZYGOTE: 'first' })[0]?.first, true)
})

t.test('without a default flag: through BENCH_CHROMIUM_DROP, added to any already dropped', async (t) => {
  t.same(densityVariants({ BENCH_DENSITY_WITHOUT: '--disable-gpu-compositing' }),
    [{ name: 'service without `--disable-gpu-compositing`', env: { BENCH_CHROMIUM_DROP: '--disable-gpu-compositing' }, first: false }])
  const [v] = densityVariants({ BENCH_DENSITY_WITHOUT: 'first --disable-gpu-compositing', BENCH_CHROMIUM_DROP: '--mute-audio' })
  t.equal(v?.first, true)
  t.same(v?.env, { BENCH_CHROMIUM_DROP: '--mute-audio --disable-gpu-compositing' })
})

t.test('dropFlags removes default flags in place and refuses one that is not a default', async (t) => {
  t.ok(EXTRA.includes('--disable-gpu-compositing'), 'the service launches without GPU compositing by default')
  const flags = [...EXTRA]
  dropFlags(flags, ['--disable-gpu-compositing'])
  t.notOk(flags.includes('--disable-gpu-compositing'))
  t.equal(flags.length, EXTRA.length - 1)
  t.throws(() => { dropFlags(flags, ['--disable-gpu-compositing']) }, /not one of the service's default flags/)
  t.throws(() => { dropFlags([...EXTRA], ['--no-such-flag']) }, /--no-such-flag/)
})

t.test('a Chromium the bench process launches itself is killed with its children on a signal (killAllChildren)', async (t) => {
  const browser = killedOnExit(await launchChromium(await resolveChromium({ executablePath: process.env.CHROMIUM_PATH ?? '' })))
  await browser.newPage()
  const pids = tree(browser.process()!.pid!)
  t.ok(pids.length > 1, 'Chromium and its helpers run')
  killAllChildren()
  const deadline = Date.now() + 10_000
  while (pids.some(alive) && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 100))
  t.same(pids.filter(alive), [], 'none of its processes is left')
})

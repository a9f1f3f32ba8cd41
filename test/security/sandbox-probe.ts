// Run as a non-root user by sandbox.test.ts: launch Chromium the service's
// way, open a page, and report the launch flags and each renderer's seccomp
// mode (2 = seccomp-bpf filter: the sandbox is on).
import { readFileSync, readdirSync } from 'node:fs'
import { launchChromium, resolveChromium } from '../../lib/browser/chromium.ts'

const resolved = await resolveChromium({ executablePath: process.env.CHROMIUM_PATH ?? '' })
const browser = await launchChromium(resolved)
try {
  const page = await (await browser.createBrowserContext()).newPage()
  await page.goto('data:text/html,<p>sandboxed?</p>')
  const renderers: string[] = []
  for (const pid of readdirSync('/proc').filter((n) => /^\d+$/.test(n))) {
    try {
      const cmd = readFileSync(`/proc/${pid}/cmdline`, 'utf8')
      if (!cmd.includes('--type=renderer')) continue
      const status = readFileSync(`/proc/${pid}/status`, 'utf8')
      // Only this user's: other Chromiums may run on the machine.
      if (/^Uid:\s+(\d+)/m.exec(status)?.[1] !== String(process.getuid?.())) continue
      renderers.push(/Seccomp:\s+(\d)/.exec(status)?.[1] ?? '?')
    } catch {}
  }
  process.stdout.write(JSON.stringify({ uid: process.getuid?.(), args: resolved.args, renderers }) + '\n')
} finally {
  await browser.close()
}

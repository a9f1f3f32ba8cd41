// Run once before the test files (test/before.ts, tap's `before`), as a
// program of its own, and by hand (`node test/prepare.ts`):
// - build the service as `npm start` does (`npm run build`), so the
//   end-to-end tests run `node dist/server.js`, the JavaScript users and the
//   Docker image run (issue 8);
// - unpack @sparticuz/chromium's binary to /tmp now, so that test files
//   starting in parallel on a fresh machine do not all unpack it at once.
import { execFileSync } from 'node:child_process'
import { fileURLToPath } from 'node:url'
import { resolveChromium } from '../lib/browser/chromium.ts'

const root = fileURLToPath(new URL('..', import.meta.url))
try {
  execFileSync('npm', ['run', '--silent', 'build'], { cwd: root, stdio: ['ignore', 'pipe', 'pipe'] })
} catch (err) {
  const e = err as { stdout?: Buffer, stderr?: Buffer }
  console.error(`# npm run build failed:\n${String(e.stdout ?? '')}${String(e.stderr ?? '')}`)
  process.exit(1)
}
console.log('# built dist/ (npm run build)')

const resolved = await resolveChromium({ executablePath: process.env.CHROMIUM_PATH ?? '' })
console.log(`# Chromium: ${resolved.executablePath}`)

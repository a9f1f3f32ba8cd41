// Run once before the test files (test/before.ts, tap's `before`), as a
// program of its own, and by hand (`node test/prepare.ts`):
// - build the service as `npm start` does (`npm run build`), so the
//   end-to-end tests run `node dist/server.js`, the JavaScript users and the
//   Docker image run (issue 8); skipped when dist/ is newer than every input
//   of the build (scripts/test.sh has just built it, or nothing changed
//   since the last run): an unchanged build still costs tsc ~4 s before
//   any test file starts;
// - unpack @sparticuz/chromium's binary to /tmp now, so that test files
//   starting in parallel on a fresh machine do not all unpack it at once.
import { execFileSync } from 'node:child_process'
import { readFileSync, readdirSync, statSync, utimesSync } from 'node:fs'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { resolveChromium } from '../lib/browser/chromium.ts'

const root = fileURLToPath(new URL('..', import.meta.url))

/**
 * Newest modification time (ms) among the build's inputs: every file under
 * the places tsconfig.build.json's `include` names (the page scripts the
 * build copies are under lib/), the configs, and the copy script.
 */
function newestInput (): number {
  let newest = 0
  const see = (path: string): void => { newest = Math.max(newest, statSync(path).mtimeMs) }
  const walk = (dir: string): void => {
    for (const e of readdirSync(dir, { withFileTypes: true })) {
      const path = join(dir, e.name)
      if (e.isDirectory()) walk(path)
      else see(path)
    }
  }
  const { include } = JSON.parse(readFileSync(join(root, 'tsconfig.build.json'), 'utf8')) as { include: string[] }
  for (const pattern of include) {
    // "lib/**/*.ts": the directory lib/; "*.ts": the root's own files of that kind.
    const [top, ...rest] = pattern.split('/')
    if (rest.length > 0) walk(join(root, top!))
    else for (const e of readdirSync(root, { withFileTypes: true })) if (e.isFile() && e.name.endsWith(pattern.replace(/^\*/, ''))) see(join(root, e.name))
  }
  for (const file of ['tsconfig.json', 'tsconfig.build.json', 'package.json', 'package-lock.json', 'scripts/copy-page-scripts.mjs']) see(join(root, file))
  return newest
}

/** When the last build finished (ms): its two steps' outputs, the older one; 0 without a build. */
function lastBuild (): number {
  try {
    return Math.min(statSync(join(root, 'dist/.tsbuildinfo')).mtimeMs, statSync(join(root, 'dist/lib/foundry/page')).mtimeMs)
  } catch { return 0 }
}

if (lastBuild() > newestInput()) {
  console.log('# dist/ is up to date')
} else {
  try {
    execFileSync('npm', ['run', '--silent', 'build'], { cwd: root, stdio: ['ignore', 'pipe', 'pipe'] })
  } catch (err) {
    const e = err as { stdout?: Buffer, stderr?: Buffer }
    console.error(`# npm run build failed:\n${String(e.stdout ?? '')}${String(e.stderr ?? '')}`)
    process.exit(1)
  }
  // tsc leaves its build info alone when no file's content changed (a file
  // only touched): dated now, the next run skips the build.
  const now = new Date()
  utimesSync(join(root, 'dist/.tsbuildinfo'), now, now)
  console.log('# built dist/ (npm run build)')
}

const resolved = await resolveChromium({ executablePath: process.env.CHROMIUM_PATH ?? '' })
console.log(`# Chromium: ${resolved.executablePath}`)

// Run by tap once before the test files (see .taprc): unpack
// @sparticuz/chromium's binary to /tmp now, so that test files starting in
// parallel on a fresh machine do not all unpack it at the same time; and
// compile the service (npm run build), so that tests run the console's
// scripts and the CLI as users get them.
import { execFileSync } from 'node:child_process'
import { createRequire } from 'node:module'
import { resolveChromium } from '../lib/chromium.js'

const resolved = await resolveChromium({ executablePath: process.env.CHROMIUM_PATH ?? '' })
console.log(`# Chromium: ${resolved.executablePath}`)

const tsc = createRequire(import.meta.url).resolve('typescript/bin/tsc')
execFileSync(process.execPath, [tsc, '-p', 'tsconfig.build.json'], { stdio: 'inherit' })
console.log('# built dist/')

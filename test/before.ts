// Run by tap once before the test files (see .taprc): unpack
// @sparticuz/chromium's binary to /tmp now, so that test files starting in
// parallel on a fresh machine do not all unpack it at the same time.
import { resolveChromium } from '../lib/chromium.js'

const resolved = await resolveChromium({ executablePath: process.env.CHROMIUM_PATH ?? '' })
console.log(`# Chromium: ${resolved.executablePath}`)

// Part of `npm run build`: tsc compiles lib/**/*.ts to dist/ but never copies
// .js files. The page scripts (lib/foundry/page/*.js) are plain JavaScript the
// service reads as text and sends into Chromium pages unchanged; copy them
// next to the compiled lib/foundry/page-scripts.js, which finds them there.
import { cpSync, rmSync } from 'node:fs'

const from = new URL('../lib/foundry/page/', import.meta.url)
const to = new URL('../dist/lib/foundry/page/', import.meta.url)
rmSync(to, { recursive: true, force: true })
cpSync(from, to, { recursive: true, filter: (src) => !src.endsWith('.md') })

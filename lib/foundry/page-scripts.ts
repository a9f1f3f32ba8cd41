// Page-side code, kept where no compiler can change it. Everything that runs
// inside a Foundry page lives in plain JavaScript files in ./page/ (one per
// Foundry page, plus common.js and document.js); this module reads them as
// text and turns a call into a JavaScript expression that puppeteer sends
// verbatim (page.evaluate / waitForFunction / evaluateOnNewDocument all take
// source strings). So `node server.ts` (Node's type stripping), tsc's dist/
// and the tests all send the same bytes (issue 8: tsx's esbuild keepNames,
// `npm run dev`'s loader then, put `__name(…)` into serialised functions,
// which threw in the page).
//
// A page file is one expression: `(common) => { …; return { fn, … } }`;
// common.js is `() => { …; return { … } }`. `pageFunction('join', 'probe')`
// is a function built here from that text with `new Function` (never called
// in Node): its source, which puppeteer serialises, is the files' text as
// written, and arguments travel as the protocol's call arguments.
// `npm run build` copies ./page/ next to the compiled module (dist/…/page/).
import { readFileSync } from 'node:fs'
import type { PageFn } from './page-api.ts'

export const PAGE_SCRIPTS = ['common', 'document', 'auth', 'setup', 'players', 'join', 'game'] as const
export type PageScript = typeof PAGE_SCRIPTS[number]

export type PageFunction = (...args: any[]) => unknown

const DIR = new URL('./page/', import.meta.url)
const sources = new Map<string, string>()
const functions = new Map<string, PageFunction>()

/** A page script's source as written (without a trailing semicolon). */
export function pageScriptSource (name: PageScript): string {
  let src = sources.get(name)
  if (src === undefined) {
    src = readFileSync(new URL(`${name}.js`, DIR), 'utf8').replace(/[\s;]+$/, '')
    sources.set(name, src)
  }
  return src
}

/** The body of a function that calls `fn` of page script `script` with its own arguments. */
export function pageCallSource (script: PageScript, fn: string): string {
  const common = `(\n${pageScriptSource('common')}\n)()`
  if (script === 'common') return `return (${common})[${JSON.stringify(fn)}](...arguments)`
  return `return ((\n${pageScriptSource(script)}\n)(${common}))[${JSON.stringify(fn)}](...arguments)`
}

/** A function for page.evaluate / waitForFunction / evaluateOnNewDocument that runs `fn` of `script` in the page. */
export function pageFunction<S extends PageScript> (script: S, fn: PageFn<S>): PageFunction {
  const key = `${script}.${fn}`
  let f = functions.get(key)
  if (f === undefined) {
    // eslint-disable-next-line no-new-func
    f = new Function(pageCallSource(script, fn)) as PageFunction
    functions.set(key, f)
  }
  return f
}

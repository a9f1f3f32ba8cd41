// The browser console at /console: static files, no API key needed to load
// them (the page asks for one and sends it itself). The HTML and CSS are
// served from public/, the scripts from the compiled public/*.ts in
// dist/public/ (`npm run build`), so the page runs under a strict CSP: no
// inline script or style.
import { existsSync } from 'node:fs'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'
import type { FastifyPluginAsync } from 'fastify'
import fastifyStatic from '@fastify/static'

export const CONSOLE_PATH = '/console'

/** The package root (the folder of package.json), from here or from dist/. */
export function packageRoot (from = dirname(fileURLToPath(import.meta.url))): string {
  for (let dir = from; ; dir = dirname(dir)) {
    if (existsSync(join(dir, 'package.json'))) return dir
    if (dirname(dir) === dir) throw new Error(`no package.json above ${from}`)
  }
}

const SERVED = /^\/(?:[\w-]+\.(?:html|css|js))?$/

const consoleRoutes: FastifyPluginAsync = async (fastify) => {
  const root = packageRoot()
  const scripts = join(root, 'dist', 'public')
  if (!existsSync(join(scripts, 'console.js'))) {
    fastify.log.warn({ missing: join(scripts, 'console.js') }, 'the console\'s scripts are not built: run npm run build')
  }
  // The page's scripts and style load relative to it: /console/ with its slash.
  fastify.get(CONSOLE_PATH, { schema: { hide: true } }, async function (_request, reply) {
    return reply.redirect(`${CONSOLE_PATH}/`)
  })
  await fastify.register(fastifyStatic, {
    root: [join(root, 'public'), scripts],
    prefix: `${CONSOLE_PATH}/`,
    redirect: true,
    decorateReply: false,
    index: 'index.html',
    dotfiles: 'ignore',
    // The page, its style and its compiled scripts; never the .ts sources or source maps.
    allowedPath: (path) => SERVED.test(path),
    cacheControl: false,
    setHeaders: (res) => { res.header('cache-control', 'no-cache') }
  })
}

export default consoleRoutes

// What every page of the stand-in shares: the HTML shell, the stylesheet,
// the /game interface skeleton, the browser-side scripts (client/*.js read
// once, wrapped with the page's CONFIG) and the reply helpers the route
// handlers answer with.
import { readFileSync } from 'node:fs'
import { createRequire } from 'node:module'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'
import type { Ctx } from './state.ts'

/** How a route handler answers (built per request by the router). */
export interface Reply {
  text: (status: number, body: string, type?: string) => void
  json: (status: number, body: unknown) => void
  html: (status: number, body: string) => void
  /** 302 to a path under the route prefix. */
  redirect: (p: string) => void
}

const clientDir = join(dirname(fileURLToPath(import.meta.url)), '..', 'client')
const require = createRequire(import.meta.url)
const socketIoClientPath = join(dirname(require.resolve('socket.io/package.json')), 'client-dist', 'socket.io.min.js')

export interface ClientFiles {
  common: string
  join: string
  setup: string
  game: string
  moduleV2: string
  moduleV3: string
  moduleRequests: string
  players: string
  ioClient: string
}

let clientCache: ClientFiles | null = null
export function clientFiles (): ClientFiles {
  if (clientCache === null) {
    const read = (f: string): string => readFileSync(join(clientDir, f), 'utf8')
    clientCache = {
      common: read('common.js'),
      join: read('join.js'),
      setup: read('setup.js'),
      game: read('game.js'),
      moduleV2: read('module-v2.js'),
      moduleV3: read('module-v3.js'),
      moduleRequests: read('module-requests.js'),
      players: read('players.js'),
      ioClient: readFileSync(socketIoClientPath, 'utf8')
    }
  }
  return clientCache
}

export function esc (s: string): string {
  return s.replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c] ?? c)
}

export const SKELETON = `<div id="interface" class="interface">
  <section id="ui-left"><aside id="players"></aside><menu id="scene-controls"></menu></section>
  <section id="ui-middle"><header id="ui-top"><nav id="navigation"></nav></header><footer id="ui-bottom"><div id="hotbar"></div></footer></section>
  <section id="ui-right"><div id="sidebar"></div></section>
</div>
<canvas id="board"></canvas>`

export const CSS = `body{font-family:sans-serif;margin:0;min-height:100vh;background:#222;color:#eee}
#notifications{position:fixed;top:0;left:30%;width:40%;list-style:none;margin:0;padding:0;z-index:2000}
#notifications .notification{padding:6px 10px;margin:4px;border-radius:4px;background:#335}
#notifications .notification.error{background:#733}#notifications .notification.warning{background:#763}
.app-overlay{position:fixed;inset:0;z-index:1000;background:rgba(0,0,0,.6);display:flex;align-items:center;justify-content:center}
.app-overlay dialog{position:static;display:block}
#worlds-list{list-style:none;padding:0}#worlds-list li.package{display:flex;gap:12px;align-items:center;padding:8px;border-bottom:1px solid #444}
#worlds-list .control.play{display:inline-block;padding:4px 10px;background:#363;cursor:pointer}
body.hover-controls #worlds-list li.package .control.play{display:none}
body.hover-controls #worlds-list li.package:hover .control.play{display:inline-block}
#join-game,#setup-authentication{max-width:480px;margin:40px auto}
.user-autocomplete li.disabled{color:#777}
#board{position:fixed;inset:0;z-index:-1}`

export const ioScript = '/scripts/socket.io.min.js'

export function page (ctx: Ctx, title: string, bodyClass: string, body: string, scripts: string[] = []): string {
  const tags = scripts.map((s) => `<script defer src="${ctx.route(s)}"></script>`).join('\n  ')
  return `<!DOCTYPE html>
<html lang="en">
<head>
  <meta charset="utf-8">
  <meta name="viewport" content="width=device-width, initial-scale=1">
  <meta name="description" content="Foundry Virtual Tabletop: a standalone virtual tabletop application for tabletop role-playing games.">
  <meta name="color-scheme" content="dark light">
  <meta name="robots" content="noindex, nofollow">
  <title>${esc(title)}</title>
  <link rel="stylesheet" href="${ctx.route('/css/style.css')}">
  ${tags}
</head>
<body class="${bodyClass}">
${body}
<ol id="notifications"></ol>
</body>
</html>
`
}

/** A page's script: common.js + client/<name>.js, run with the page's CONFIG. */
export function pageScript (ctx: Ctx, name: 'join' | 'setup' | 'game' | 'players', heavy: unknown = null): string {
  const f = clientFiles()
  const cfg = {
    prefix: ctx.prefix,
    variant: ctx.variant,
    generation: ctx.generation,
    version: ctx.version,
    release: ctx.release,
    joinRenderDelayMs: ctx.joinRenderDelayMs,
    setupRenderDelayMs: ctx.setupRenderDelayMs,
    gameReadyDelayMs: ctx.gameReadyDelayMs,
    canvasDelayMs: ctx.canvasDelayMs,
    skeletonStatic: ctx.generation >= 13,
    skeletonHtml: SKELETON,
    heavy,
    joinForm: ctx.opts.joinForm ?? null
  }
  return `(function (CONFIG) {\n${f.common}\n${f[name]}\n})(${JSON.stringify(cfg)});\n`
}

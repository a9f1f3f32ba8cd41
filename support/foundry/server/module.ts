// The fake REST API module (foundry-rest-api, v2 or v3): its script served
// under /modules/, its world settings and its entry in /game's world data.
// The browser side (relay connection, pings, requests) is client/module-*.js.
import { createHash } from 'node:crypto'
import type { StandinWorld } from '../standin.ts'
import { clientFiles } from './html.ts'
import type { Ctx } from './state.ts'

export const MODULE_ID = 'foundry-rest-api'
export const modulePath = `/modules/${MODULE_ID}/scripts/module.js`

export function defaultClientId (worldId: string): string {
  return 'fvtt_' + createHash('sha256').update(worldId).digest('hex').slice(0, 16)
}

export function moduleScript (ctx: Ctx): string {
  const f = clientFiles()
  const body = ctx.moduleVersion === 3 ? f.moduleV3 : f.moduleV2
  return `(function (CONFIG) {\n${f.moduleRequests}\n${body}\n})(${JSON.stringify({ pingIntervalMs: ctx.pingIntervalMs, reconnectMaxAttempts: ctx.opts.moduleReconnectMaxAttempts, reconnectBaseMs: ctx.opts.moduleReconnectBaseMs })});\n`
}

/** The module's world settings (relay URL, v2 apiKey or v3 clientId) and Foundry's tips flag. */
export function moduleSettings (ctx: Ctx, w: StandinWorld): Array<{ key: string, value: string }> {
  const { opts } = ctx
  const settings = [
    { key: `${MODULE_ID}.wsRelayUrl`, value: JSON.stringify(opts.relayUrl ?? '') },
    { key: `${MODULE_ID}.customName`, value: JSON.stringify('') },
    { key: 'core.nue.shownTips', value: JSON.stringify(true) }
  ]
  if (ctx.moduleVersion === 2) settings.push({ key: `${MODULE_ID}.apiKey`, value: JSON.stringify(opts.moduleApiKey ?? w.id) })
  else settings.push({ key: `${MODULE_ID}.clientId`, value: JSON.stringify(w.moduleClientId ?? defaultClientId(w.id)) })
  return settings
}

/** The module's entry in the world data's module list. */
export function moduleEntry (ctx: Ctx, w: StandinWorld): unknown {
  return {
    id: MODULE_ID,
    title: 'Foundry REST API',
    version: ctx.moduleVersion === 3 ? '3.4.1' : '2.1.3',
    active: w.moduleActive !== false,
    scripts: [ctx.route(modulePath)]
  }
}

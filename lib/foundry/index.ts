// The Foundry login driver, one module per page the browser meets: reach.ts
// (/license, /auth), setup.ts, players.ts, join.ts, game.ts and
// module-connection.ts, driven by login.ts; page-side code in ./page/*.js.
export { loginToFoundry } from './login.js'
export { foundryBase, matchUser, matchWorld } from './names.js'
export { CONNECTION_TOKEN_KEY } from './types.js'
export type { LoginOptions, LoginParams, LoginResult, LoginTimeouts, ModuleInfo, Stage, WorldInfo } from './types.js'

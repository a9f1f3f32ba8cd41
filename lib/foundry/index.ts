// The Foundry login driver, one module per page the browser meets: reach.ts
// (/license, /auth), setup.ts, players.ts, join.ts, game.ts and
// module-connection.ts, driven by login.ts; page-side code in ./page/*.js.
export { loginToFoundry } from './login.ts'
export { foundryBase, matchUser, matchWorld } from './names.ts'
export { CONNECTION_TOKEN_KEY } from './types.ts'
export type { LoginOptions, LoginParams, LoginResult, LoginTimeouts, ModuleInfo, Stage, WorldInfo } from './types.ts'

import { Type, type Static } from '@sinclair/typebox'

const ms = (def: number, description: string, minimum = 1) =>
  Type.Integer({ minimum, default: def, description })

/**
 * The environment, validated once at start-up. Names are a contract with
 * users and the README's configuration table; add, never rename.
 */
export const EnvSchema = Type.Object({
  PORT: Type.Integer({ minimum: 0, maximum: 65535, default: 3010, description: 'TCP port to listen on' }),
  HOST: Type.String({ minLength: 1, default: '0.0.0.0', description: 'Address to listen on' }),
  LOG_LEVEL: Type.Union(
    ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'].map((l) => Type.Literal(l)),
    { default: 'info', description: 'pino log level' }
  ),
  API_KEYS: Type.String({
    default: '',
    description: 'Comma-separated API keys accepted in x-api-key. Empty: one is generated at start and printed once.'
  }),
  CHROMIUM_PATH: Type.String({
    default: '',
    description: 'Chromium binary to use instead of the one @sparticuz/chromium ships'
  }),
  CHROMIUM_ARGS: Type.String({ default: '', description: 'Extra Chromium flags, space-separated' }),
  INSTANCE_ID: Type.String({ default: '', description: 'Instance id in replies (default FLY_ALLOC_ID, else "local")' }),

  HANDSHAKE_TTL_MS: ms(300_000, 'How long a handshake token stays valid'),
  HANDSHAKE_MAX: Type.Integer({ minimum: 1, default: 10_000, description: 'Most unexpired handshakes kept at once' }),
  KEY_ROTATE_MS: ms(60_000, 'How long one RSA key pair serves new handshakes before the next one takes over'),

  MAX_SESSIONS: Type.Integer({ minimum: 1, default: 50, description: 'Sessions (starting or active) in total' }),
  MAX_SESSIONS_PER_KEY: Type.Integer({ minimum: 1, default: 10, description: 'Sessions (starting or active) per API key' }),
  MAX_CONCURRENT_LOGINS: Type.Integer({ minimum: 1, default: 4, description: 'Logins running at once; more get 429' }),

  NAVIGATION_TIMEOUT_MS: ms(60_000, 'Each page load of a login (Foundry pages, /game included)'),
  JOIN_FORM_TIMEOUT_MS: ms(30_000, 'Wait for the client-rendered join form'),
  WORLD_LAUNCH_TIMEOUT_MS: ms(180_000, 'Wait for a launched world to become active'),
  GAME_READY_TIMEOUT_MS: ms(120_000, 'Wait for game.ready on /game'),
  MODULE_CONNECT_TIMEOUT_MS: ms(60_000, 'Wait for the REST API module to connect to its relay')
})

export type Env = Static<typeof EnvSchema>

import { Type, type Static } from '@sinclair/typebox'
import { TRUST_PROXY_PATTERN } from '../lib/access/client-address.ts'
import { BLOCKABLE } from '../lib/browser/page-setup.ts'
import { URL_POLICY_MODES } from '../lib/access/url-policy.ts'

/** One PAGE_BLOCK_RESOURCES word: a blockable resource type, or none. */
const RESOURCE_WORD = [...BLOCKABLE, 'none'].join('|')

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
  API_KEYS_FILE: Type.String({
    default: '',
    description: 'File of API keys, one per line: a plain key or sha256:<64 hex> (its SHA-256); # starts a comment. Adds to API_KEYS.'
  }),
  FOUNDRY_URL_POLICY: Type.Union(
    URL_POLICY_MODES.map((m) => Type.Literal(m)),
    {
      default: 'default',
      description: 'Addresses x-foundry-url and the session browser may reach: default refuses link-local, cloud metadata, multicast and reserved; public-only (hosted instances) also refuses private and loopback; any checks none'
    }
  ),
  FOUNDRY_URL_DENY: Type.String({
    default: '',
    description: 'Addresses and CIDR ranges (comma- or space-separated, IPv4 or IPv6) that x-foundry-url, redirects and every connection of the session browser may never reach, whatever FOUNDRY_URL_POLICY and FOUNDRY_URL_ALLOW say'
  }),
  FOUNDRY_URL_ALLOW: Type.String({
    default: '',
    description: 'Addresses and CIDR ranges allowed although FOUNDRY_URL_POLICY refuses them (a private Foundry next to a public-only instance); FOUNDRY_URL_DENY still wins'
  }),
  TRUST_PROXY: Type.String({
    default: 'false',
    pattern: TRUST_PROXY_PATTERN,
    description: 'Where the client address (for API_KEY_FAIL_MAX) comes from: false, the TCP peer; fly, the Fly-Client-IP header Fly.io\'s proxy sets; a number N, the Nth address from the right of X-Forwarded-For (N proxies in front). Set it only behind that proxy: clients can send these headers too'
  }),
  API_KEY_FAIL_MAX: Type.Integer({ minimum: 0, default: 20, description: 'Wrong API keys one client address may send per API_KEY_FAIL_WINDOW_MS; past it every request with an API key from that address gets 429 until the window ends (0: no limit)' }),
  API_KEY_FAIL_WINDOW_MS: ms(900_000, 'Window of API_KEY_FAIL_MAX'),
  CHROMIUM_PATH: Type.String({
    default: '',
    description: 'Chromium binary to use instead of the one @sparticuz/chromium ships'
  }),
  CHROMIUM_ARGS: Type.String({ default: '', description: 'Extra Chromium flags, space-separated' }),
  CHROMIUM_LAUNCH: Type.Union([Type.Literal('start'), Type.Literal('first-session')], {
    default: 'start',
    description: 'When Chromium starts: start, with the service (the first session does not wait for it; /health reports a Chromium that cannot start); first-session, when a session first needs it (an idle machine holds no browser; the first login waits ~1 s longer, /health says chromium "down" until then)'
  }),
  INSTANCE_ID: Type.String({ default: '', pattern: '^[A-Za-z0-9_.-]*$', maxLength: 64, description: 'Instance id in replies and in the fleet registry (default FLY_MACHINE_ID, which fly-replay: instance= takes, else FLY_ALLOC_ID, else "local")' }),
  REDIS_URL: Type.String({ default: '', description: 'redis:// or rediss:// URL of the fleet registry (handshakes, sessions, caps and rate limits shared by every machine). Empty: one machine, everything in memory' }),
  SESSION_SEAL_KEY: Type.String({ default: '', description: 'Base64 of 32 random bytes, the same on every machine: with REDIS_URL, keeps each session\'s credentials in Redis sealed with AES-256-GCM so another machine can take the session over (deploys, crashes), and signs the fleet\'s messages; without REDIS_URL, in the state file under STATE_DIR, so the sessions survive the service\'s own restart. A keyring `id:key,id:key` rotates keys: the first seals, every one opens. Empty: nothing secret is stored' }),
  STATE_DIR: Type.String({ default: '', description: 'Without REDIS_URL, with SESSION_SEAL_KEY: directory of the state file (sessions.json: running sessions\' records and sealed credentials), read at start to log them back in (the image sets /data, a volume). Required then; unused otherwise' }),
  METRICS_PORT: Type.Integer({ minimum: 0, maximum: 65535, default: 0, description: 'Port serving Prometheus metrics at GET /metrics, without API key (keep it off the public services; fly.toml\'s [metrics] scrapes it); 0 = off' }),
  FLEET_HEARTBEAT_MS: ms(2000, 'With REDIS_URL: the heartbeat period. A machine renews its heartbeat, its lease on its sessions (3 periods long), three times a period. A machine that could not renew it for half its life stops acting for the fleet (closes its pages, answers 503 FLEET_UNAVAILABLE, reports unhealthy); one silent for 3 heartbeats is taken as gone'),
  FLEET_REDIS_TIMEOUT_MS: ms(1000, 'With REDIS_URL: how long any Redis command may take before it fails (503 FLEET_UNAVAILABLE; a heartbeat that fails is a lease not renewed)'),
  EVENT_STREAMS_PER_KEY: Type.Integer({ minimum: 1, default: 10, description: 'Open GET /session/{id}/events streams one API key may hold on one machine; more get 429 TOO_MANY_STREAMS with Retry-After' }),
  EVENT_STREAMS_MAX: Type.Integer({ minimum: 1, default: 200, description: 'Open GET /session/{id}/events streams one machine holds in all; more get 429 TOO_MANY_STREAMS with Retry-After' }),

  HANDSHAKE_TTL_MS: ms(300_000, 'How long a handshake token stays valid'),
  HANDSHAKE_MAX: Type.Integer({ minimum: 1, default: 10_000, description: 'Most unexpired handshakes kept at once' }),
  HANDSHAKE_MAX_PER_KEY: Type.Integer({ minimum: 1, default: 1000, description: 'Most unexpired handshakes kept at once for one API key' }),
  HANDSHAKE_RATE_MAX: Type.Integer({ minimum: 0, default: 120, description: 'Handshakes one API key may request per HANDSHAKE_RATE_WINDOW_MS; more get 429 (0: no limit)' }),
  HANDSHAKE_RATE_WINDOW_MS: ms(60_000, 'Window of HANDSHAKE_RATE_MAX'),
  KEY_ROTATE_MS: ms(60_000, 'How long one RSA key pair serves new handshakes before the next one takes over'),

  MAX_SESSIONS: Type.Integer({ minimum: 1, default: 50, description: 'Sessions (starting or active) in total' }),
  MAX_SESSIONS_PER_KEY: Type.Integer({ minimum: 1, default: 10, description: 'Sessions (starting or active) per API key' }),
  SESSION_IDLE_TIMEOUT_MS: Type.Integer({ minimum: 0, default: 0, description: 'End a session after this long without an API call naming or listing it; 0 = never' }),
  SESSION_MAX_LIFETIME_MS: Type.Integer({ minimum: 0, default: 0, description: 'End a session this long after it started; 0 = never' }),
  RELOGIN_ATTEMPTS: Type.Integer({ minimum: 0, default: 0, description: 'Failed attempts in a row (transient causes) before a session that lost its login is marked failed; 0 = no limit (SESSION_RECONNECT_MAX_MS bounds the time instead)' }),
  RELOGIN_BASE_MS: ms(1000, 'First delay before logging a session back in; doubles per failed attempt, up to RELOGIN_MAX_DELAY_MS'),
  RELOGIN_MAX_DELAY_MS: ms(60_000, 'Longest delay between two attempts of a session logging back in'),
  FOUNDRY_PROBE_MAX_MS: ms(5000, 'Longest delay between two HTTP probes of a Foundry that does not answer, while a session waits for it (a probe is one request, no browser): the session logs back in within this long of Foundry\'s return, however long it was away. Logins that fail in the browser still back off to RELOGIN_MAX_DELAY_MS'),
  SESSION_RECONNECT_MAX_MS: Type.Integer({ minimum: 0, default: 0, description: 'Longest a session keeps trying to log back in (transient causes: Foundry down, world not running, relay down…) before it is marked failed; 0 = never give up' }),
  SESSION_RETAIN_ENDED_MS: Type.Integer({ minimum: 0, default: 600_000, description: 'How long ended and failed sessions stay listed in GET /session' }),
  SCREENSHOT_TTL_MS: ms(600_000, 'How long failure screenshots are kept (in memory)'),
  WEBHOOK_URL: Type.String({ default: '', description: 'The operator\'s webhook: every session\'s notifications (failed, reconnecting, recovered, module offline, ended) are POSTed there too, signed with WEBHOOK_SECRET; a Discord webhook URL gets Discord messages. A secret: never logged. Empty: none' }),
  WEBHOOK_SECRET: Type.String({ default: '', description: 'Standard Webhooks signing secret of WEBHOOK_URL: whsec_ followed by the base64 of 24 to 64 random bytes (required with WEBHOOK_URL, unless it is a Discord webhook)' }),
  WEBHOOK_RECONNECTING_AFTER_MS: Type.Integer({ minimum: 0, default: 60_000, description: 'A session logging back in for this long sends session.reconnecting (and session.recovered once it is back)' }),
  WEBHOOK_MODULE_OFFLINE_AFTER_MS: Type.Integer({ minimum: 0, default: 120_000, description: 'A logged-in session whose REST API module has been disconnected from its relay for this long sends module.offline (and session.recovered once it is back)' }),
  WEBHOOK_ATTEMPTS: Type.Integer({ minimum: 1, maximum: 20, default: 6, description: 'Attempts per webhook message, the first included (retried on network errors, timeouts, 408, 429 and 5xx)' }),
  WEBHOOK_RETRY_BASE_MS: ms(1000, 'Delay before a webhook message\'s second attempt; doubles per attempt, up to 60 s'),
  WEBHOOK_TIMEOUT_MS: ms(10_000, 'One webhook attempt, from connecting to the end of the answer'),
  MAX_CONCURRENT_LOGINS: Type.Integer({ minimum: 1, default: 4, description: 'Logins running at once; more get 429' }),

  NAVIGATION_TIMEOUT_MS: ms(60_000, 'Each page load of a login (Foundry pages, /game included)'),
  JOIN_FORM_TIMEOUT_MS: ms(30_000, 'Wait for the client-rendered join form'),
  WORLD_LAUNCH_TIMEOUT_MS: ms(180_000, 'Wait for a launched world to become active'),
  GAME_READY_TIMEOUT_MS: ms(120_000, 'Wait for game.ready on /game'),
  MODULE_CONNECT_TIMEOUT_MS: ms(60_000, 'Wait for the REST API module to connect to its relay'),
  MODULE_STABLE_MS: ms(250, 'Module 2.x: how long its accepted relay connection must stay open to count (a 2.x relay accepts, then closes a refused id with 4004)'),
  MODULE_REVIVE_AFTER_MS: ms(60_000, 'A session whose REST API module lost its relay (unreachable) and has shown no sign of its connection for this long reloads the game page once the relay answers again (the module stops retrying after about 8 minutes)'),

  PAGE_BLOCK_RESOURCES: Type.String({
    default: BLOCKABLE.join(','),
    pattern: `^\\s*((${RESOURCE_WORD})\\s*([,\\s]\\s*(${RESOURCE_WORD})\\s*)*)?$`,
    description: `Resource types a session page never loads (comma-separated: ${BLOCKABLE.join(', ')}; empty or none: load everything). A start-session body may override it with blockResources`
  }),
  PAGE_NO_CANVAS: Type.Boolean({
    default: true,
    description: "Set Foundry's core.noCanvas client setting in session pages (no WebGL, no scene rendering; module requests that select or control tokens on the canvas then fail). A start-session body may override it with noCanvas"
  })
})

export type Env = Static<typeof EnvSchema>

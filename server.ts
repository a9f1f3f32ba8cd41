// Start the service: `npm start`. Configuration comes from the environment
// (see the README's table); nothing is needed for a local start.
import Fastify from 'fastify'
import closeWithGrace from 'close-with-grace'
import pretty from 'pino-pretty'
import service, { REDACT, serverOptions } from './app.ts'
import { ConfigError, loadConfig } from './plugins/config.ts'

let logLevel: string
try {
  logLevel = loadConfig().LOG_LEVEL
} catch (err) {
  process.stderr.write(`${(err as ConfigError).message}\n`)
  process.exit(1)
}

// Readable, coloured lines for a person at a terminal; JSON lines for
// everything else (log collectors, Fly's log shipper, pipes).
const app = Fastify({
  ...serverOptions,
  logger: {
    level: logLevel,
    redact: REDACT,
    ...(process.stdout.isTTY === true
      ? { stream: pretty({ colorize: true, translateTime: 'SYS:HH:MM:ss.l', ignore: 'pid,hostname', sync: true }) }
      : {})
  }
})

try {
  await app.register(service, {
    onGeneratedKey (key) {
      // Printed once, to the terminal, never through the logger.
      process.stderr.write([
        '',
        '  No API_KEYS configured: generated an API key for this run:',
        '',
        `      ${key}`,
        '',
        '  Send it as x-api-key. Set your own with API_KEYS=key1,key2 (comma-separated).',
        ''
      ].join('\n') + '\n')
    }
  })
  await app.ready()
} catch (err) {
  // A plugin that cannot start (Redis unreachable, Chromium missing, …) says why.
  app.log.error({ err }, 'start-up failed')
  process.stderr.write(`Start-up failed: ${(err as Error).message}\n`)
  await app.close().catch(() => {})
  process.exit(1)
}

closeWithGrace({ delay: 25_000 }, async ({ signal, err }) => {
  if (err !== undefined) app.log.error({ err }, 'closing after an error')
  else app.log.info({ signal }, 'closing: ending sessions and Chromium')
  await app.close()
})

try {
  await app.listen({ host: app.config.HOST, port: app.config.PORT })
  app.log.info({ docs: '/docs', console: '/console' }, 'API documentation at /docs; a browser console that starts sessions at /console')
} catch (err) {
  app.log.error({ err }, 'start-up failed')
  await app.close().catch(() => {})
  process.exit(1)
}

// The one logger type lib/ takes: the part of pino's logger (Fastify's
// `fastify.log` and its children) that the modules use. No Fastify here.
export interface Logger {
  info: (obj: object, msg?: string) => void
  warn: (obj: object, msg?: string) => void
  error: (obj: object, msg?: string) => void
  debug: (obj: object, msg?: string) => void
}

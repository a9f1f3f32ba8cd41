import fp from 'fastify-plugin'
import type { FastifyPluginAsync } from 'fastify'
import swagger from '@fastify/swagger'
import swaggerUi from '@fastify/swagger-ui'
import { ErrorReply } from '../schemas/common.ts'
import { CATALOGUE } from '../lib/errors.ts'

export const DOCS_PATH = '/docs'

const docs: FastifyPluginAsync = async (fastify) => {
  fastify.addSchema(ErrorReply)
  await fastify.register(swagger, {
    openapi: {
      openapi: '3.0.3',
      info: {
        title: 'foundry-sessions',
        description: 'Headless Foundry VTT Gamemaster sessions for the Foundry REST API module. ' +
          'Flow: POST /session-handshake → encrypt {"password","nonce"} with RSA-OAEP → POST /start-session → GET /session → DELETE /end-session.\n\n' +
          'Every error is {statusCode, code, error}; each route lists its codes by status. ' +
          `A path no route serves is ${CATALOGUE.ROUTE_NOT_FOUND.status} \`ROUTE_NOT_FOUND\`: ${CATALOGUE.ROUTE_NOT_FOUND.when}.\n\n` +
          'To start and watch sessions from a browser without writing code, use the [console](/console).',
        version: '0.1.0'
      },
      components: {
        securitySchemes: {
          apiKey: { type: 'apiKey', name: 'x-api-key', in: 'header', description: 'An API key from API_KEYS' }
        }
      },
      tags: [
        { name: 'sessions', description: 'Headless Foundry sessions' },
        { name: 'service', description: 'Health' }
      ]
    },
    refResolver: {
      buildLocalReference: (json, _baseUri, _fragment, i) => typeof json.$id === 'string' ? json.$id : `def-${i}`
    }
  })
  await fastify.register(swaggerUi, {
    routePrefix: DOCS_PATH,
    // No validator badge: it would load an image from validator.swagger.io.
    uiConfig: { persistAuthorization: false, tryItOutEnabled: true, validatorUrl: null }
  })
}

export default fp(docs, { name: 'swagger', fastify: '5.x' })

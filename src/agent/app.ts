import Fastify, { type FastifyError, type FastifyInstance, type FastifyServerOptions } from 'fastify'
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox'
import { Ajv } from 'ajv'
import { createHash, timingSafeEqual } from 'node:crypto'
import type { AgentErrorBody } from '../schemas/agent.ts'
import type { AgentConfig } from './config.ts'
import { AGENT_ERROR_STATUS, isAgentFailure } from './errors.ts'
import { MountManager } from './manager.ts'
import agentRoutes from './routes.ts'

// Builds the in-VM agent (never listens; see start.ts). Every request needs the bearer token;
// request bodies are never logged (they hold rclone configs) and pino redacts the usual
// secret-bearing paths in case a body or header ever reaches a log object.

export interface AgentAppOptions {
  /** Where log lines go (tests capture them); defaults to stdout. */
  logStream?: NodeJS.WritableStream
  /** On close: remove every mount (forced) — for tests and local mode. Default false: mounts outlive the agent. */
  unmountOnClose?: boolean
  /** On close: stop the rclone daemon. Default false: a restarted agent adopts it. */
  stopDaemonOnClose?: boolean
}

export const AGENT_REDACT_PATHS = [
  'req.headers.authorization', 'headers.authorization', 'authorization',
  'body', 'req.body', 'request.body', '*.config', '*.redact', 'config', 'redact',
  '*.pass', '*.password', '*.secret', '*.token', '*.key', '*.key_pem', '*.secret_access_key', '*.sas_url'
]

function digest (value: string): Buffer {
  return createHash('sha256').update(value).digest()
}

function sendError (reply: { code: (n: number) => { send: (b: AgentErrorBody) => unknown } }, status: number, body: AgentErrorBody['error']): unknown {
  return reply.code(status).send({ error: body })
}

export async function buildAgentApp (config: AgentConfig, opts: AgentAppOptions = {}): Promise<FastifyInstance> {
  return (await buildAgent(config, opts)).app
}

/** The app and its mount manager (tests and local mode drive the manager's close directly). */
export async function buildAgent (config: AgentConfig, opts: AgentAppOptions = {}): Promise<{ app: FastifyInstance, manager: MountManager }> {
  const logger: FastifyServerOptions['logger'] = {
    level: config.logLevel,
    redact: { paths: AGENT_REDACT_PATHS, censor: '[redacted]' },
    ...(opts.logStream === undefined ? {} : { stream: opts.logStream })
  }
  const app = Fastify({ logger, bodyLimit: 1024 * 1024 }).withTypeProvider<TypeBoxTypeProvider>()

  // bodies strictly (no coercion, unknown fields refused); the query string is text, so coerced
  const bodyAjv = new Ajv({ removeAdditional: false, useDefaults: true, coerceTypes: false, strict: false })
  const otherAjv = new Ajv({ removeAdditional: false, useDefaults: true, coerceTypes: 'array', strict: false })
  app.setValidatorCompiler(({ schema, httpPart }) => (httpPart === 'body' ? bodyAjv : otherAjv).compile(schema))

  const manager = new MountManager({ config, log: app.log })
  await manager.init()

  const expected = digest(`Bearer ${config.token}`)
  app.addHook('onRequest', async (request, reply) => {
    const given = request.headers.authorization
    if (typeof given !== 'string' || !timingSafeEqual(digest(given), expected)) {
      return await reply.code(401).send({ error: { code: 'UNAUTHORIZED', message: 'missing or wrong bearer token' } })
    }
  })

  app.setErrorHandler((err: FastifyError, request, reply) => {
    if (isAgentFailure(err)) {
      const level = err.statusCode >= 500 ? 'error' : 'info'
      const mountId = (request.params as { mountId?: string } | undefined)?.mountId
      request.log[level]({ mountId, code: err.code, message: err.message }, 'request failed')
      return sendError(reply, err.statusCode, { code: err.code, message: err.message, ...(err.logTail === undefined ? {} : { logTail: err.logTail }) })
    }
    if (err.validation !== undefined || (typeof err.statusCode === 'number' && err.statusCode >= 400 && err.statusCode < 500)) {
      return sendError(reply, err.statusCode ?? 400, { code: 'BAD_REQUEST', message: err.message })
    }
    request.log.error({ err: { message: err.message, code: err.code } }, 'internal error')
    return sendError(reply, AGENT_ERROR_STATUS.INTERNAL, { code: 'INTERNAL', message: 'internal error' })
  })

  app.setNotFoundHandler((request, reply) => sendError(reply, 404, { code: 'NOT_FOUND', message: `no route ${request.method} ${request.url.split('?')[0]}` }))

  await app.register(agentRoutes, { manager })

  app.addHook('onClose', async () => {
    await manager.close({ unmountAll: opts.unmountOnClose === true, stopDaemon: opts.stopDaemonOnClose === true })
  })
  return { app, manager }
}

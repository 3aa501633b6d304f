import Fastify, { type FastifyInstance, type FastifyServerOptions } from 'fastify'
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox'
import swagger from '@fastify/swagger'
import swaggerUi from '@fastify/swagger-ui'
import { Ajv } from 'ajv'
import addFormats from 'ajv-formats'
import type { Config } from './config.ts'
import type { RegistryStore } from './mounts/registry.ts'
import type { AgentClient } from './agent/client.ts'
import type { SecretBox } from './secrets.ts'
import type { BackendTemplate } from './schemas/template.ts'
import { MountService } from './mounts/service.ts'
import { CredentialService } from './mounts/credentials.ts'
import { Reconciler } from './mounts/reconciler.ts'
import { Lifecycle } from './mounts/lifecycle.ts'
import idempotencyPlugin from './plugins/idempotency.ts'
import metricsPlugin, { metricsObserver, type Metrics } from './plugins/metrics.ts'
import limitsPlugin from './plugins/limits.ts'
import credentialRoutes from '../routes/credentials.ts'
import lifecycleRoutes from '../routes/lifecycle.ts'
import { logEvents, type EventSink } from './mounts/events.ts'
import errorsPlugin, { frameworkErrors } from './plugins/errors.ts'
import authPlugin from './plugins/auth.ts'
import { requestLogging } from './plugins/request-log.ts'
import { REDACT_PATHS } from './redact.ts'
import healthRoutes from '../routes/health.ts'
import mountRoutes from '../routes/mounts.ts'
import internalRoutes from '../routes/internal.ts'
import backendRoutes from '../routes/backends.ts'

export interface AppDeps {
  store: RegistryStore
  agents: AgentClient
  box: SecretBox
  templates: ReadonlyMap<string, BackendTemplate>
  /** Where log lines go (tests capture them); defaults to stdout. */
  logStream?: NodeJS.WritableStream
  events?: EventSink
  metrics?: Metrics
}

export type AppConfig = Pick<Config, 'apiKeys' | 'internalToken' | 'logLevel' | 'bodyLimit' | 'reconcileIntervalMs' | 'reconcileLeaseMs' | 'reconcileConcurrency' | 'rateLimitPerMinute' | 'maxInFlight'>

const PUBLIC_PREFIXES = ['/healthz', '/readyz', '/openapi.json', '/docs']

// Bodies are validated strictly (no type coercion, unknown fields refused); query strings and
// params are coerced, since everything there arrives as text.
function validators (): { body: Ajv, other: Ajv } {
  const common = { removeAdditional: false as const, useDefaults: true, allErrors: false, strict: false }
  const body = new Ajv({ ...common, coerceTypes: false })
  const other = new Ajv({ ...common, coerceTypes: 'array' })
  addFormats.default(body)
  addFormats.default(other)
  return { body, other }
}

export async function buildApp (config: AppConfig, deps: AppDeps): Promise<FastifyInstance> {
  const logger: FastifyServerOptions['logger'] = {
    level: config.logLevel,
    redact: { paths: REDACT_PATHS, censor: '[redacted]' },
    ...(deps.logStream === undefined ? {} : { stream: deps.logStream })
  }
  const app = Fastify({
    logger,
    bodyLimit: config.bodyLimit,
    requestIdHeader: 'x-request-id',
    genReqId: () => `req_${crypto.randomUUID().replaceAll('-', '').slice(0, 20)}`,
    routerOptions: { maxParamLength: 256 },
    frameworkErrors
  }).withTypeProvider<TypeBoxTypeProvider>()

  const ajv = validators()
  app.setValidatorCompiler(({ schema, httpPart }) => (httpPart === 'body' ? ajv.body : ajv.other).compile(schema))

  const logging = requestLogging(app.log)
  logging.install(app)
  const metrics = deps.metrics ?? metricsObserver()
  const events = deps.events ?? logEvents(logging.log)
  const common = { store: deps.store, agents: deps.agents, box: deps.box, templates: deps.templates, log: logging.log, events }
  // The two services refer to each other: mounts load named credentials, rotation drives mounts.
  // (the closure runs only on requests, after both exist).
  const service: MountService = new MountService({ ...common, loadCredential: async (tenant, name) => await credentials.load(tenant, name) })
  const credentials = new CredentialService({ ...common, service })
  const reconciler = new Reconciler({ ...common, service, intervalMs: config.reconcileIntervalMs, leaseMs: config.reconcileLeaseMs, concurrency: config.reconcileConcurrency, onRun: metrics.reconcileRun })
  const lifecycle = new Lifecycle({ store: deps.store, service, reconciler, events })
  app.decorate('mounts', service)
  app.decorate('reconciler', reconciler)
  app.addHook('onClose', async () => { await reconciler.close() })

  await app.register(swagger, {
    openapi: {
      openapi: '3.0.3',
      info: {
        title: 'sandbox-mounts',
        version: '0.1.0',
        description: 'Mount users\' storage (S3, GCS, Azure Blob, SFTP, WebDAV, Dropbox, any rclone remote) into sandbox VMs.'
      },
      components: { securitySchemes: { bearer: { type: 'http', scheme: 'bearer' } } },
      security: [{ bearer: [] }]
    }
  })
  await app.register(swaggerUi, { routePrefix: '/docs', uiConfig: { docExpansion: 'list', deepLinking: false } })
  app.get('/openapi.json', { schema: { hide: true } }, async () => app.swagger())

  await app.register(errorsPlugin)
  await app.register(authPlugin, { apiKeys: config.apiKeys, internalToken: config.internalToken, publicPrefixes: PUBLIC_PREFIXES })
  await app.register(limitsPlugin, { perMinute: config.rateLimitPerMinute, maxInFlight: config.maxInFlight, onRefused: metrics.refused })
  await app.register(metricsPlugin, { metrics, store: deps.store })
  await app.register(idempotencyPlugin, { store: deps.store })
  await app.register(healthRoutes, { store: deps.store, replica: reconciler.holder })
  await app.register(backendRoutes, { templates: deps.templates })
  await app.register(mountRoutes, { service })
  await app.register(internalRoutes, { service })
  await app.register(credentialRoutes, { credentials })
  await app.register(lifecycleRoutes, { lifecycle })
  return app
}

declare module 'fastify' {
  interface FastifyInstance {
    mounts: MountService
    reconciler: Reconciler
  }
}

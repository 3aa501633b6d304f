import type { FastifyError, FastifyInstance, FastifyReply, FastifyRequest } from 'fastify'
import fp from 'fastify-plugin'

// One error shape for every answer: { error: { code, message, detail? } }. Validation errors
// name the field; 5xx messages from unexpected errors are replaced by a generic text (the
// details go to the log, which is redacted).

const FASTIFY_CODES: Record<string, { code: string, status: number }> = {
  FST_ERR_CTP_INVALID_JSON_BODY: { code: 'INVALID_JSON', status: 400 },
  FST_ERR_CTP_EMPTY_JSON_BODY: { code: 'INVALID_JSON', status: 400 },
  FST_ERR_CTP_BODY_TOO_LARGE: { code: 'BODY_TOO_LARGE', status: 413 },
  FST_ERR_CTP_INVALID_MEDIA_TYPE: { code: 'UNSUPPORTED_MEDIA_TYPE', status: 415 },
  FST_ERR_CTP_INVALID_CONTENT_LENGTH: { code: 'INVALID_CONTENT_LENGTH', status: 400 },
  FST_ERR_CTP_INVALID_TYPE: { code: 'UNSUPPORTED_MEDIA_TYPE', status: 415 }
}

interface AjvError { instancePath?: string, keyword?: string, message?: string, params?: Record<string, unknown> }

function fieldOf (context: string | undefined, e: AjvError): string {
  const parts = (e.instancePath ?? '').split('/').filter(Boolean).map(s => s.replace(/~1/g, '/').replace(/~0/g, '~'))
  let path = parts.reduce((acc, p) => /^\d+$/.test(p) ? `${acc}[${p}]` : acc === '' ? p : `${acc}.${p}`, '')
  if (e.keyword === 'additionalProperties' && typeof e.params?.additionalProperty === 'string') {
    path = path === '' ? e.params.additionalProperty : `${path}.${e.params.additionalProperty}`
  }
  if (e.keyword === 'required' && typeof e.params?.missingProperty === 'string') {
    path = path === '' ? e.params.missingProperty : `${path}.${e.params.missingProperty}`
  }
  const prefix = context === 'body' || context === undefined ? '' : `${context}.`
  return `${prefix}${path === '' ? context ?? 'body' : path}`
}

export function describeValidation (err: FastifyError): { code: string, message: string } {
  const errors = (err.validation ?? []) as AjvError[]
  // Prefer the most telling error: unknown fields first, then anything but union noise.
  const first = errors.find(e => e.keyword === 'additionalProperties') ??
    errors.find(e => e.keyword !== 'anyOf' && e.keyword !== 'const' && e.keyword !== 'type') ??
    errors[0]
  if (first === undefined) return { code: 'VALIDATION_FAILED', message: 'the request is not valid' }
  const field = fieldOf(err.validationContext, first)
  if (first.keyword === 'additionalProperties') return { code: 'UNKNOWN_FIELD', message: `${field}: unknown field` }
  if (first.keyword === 'required') return { code: 'VALIDATION_FAILED', message: `${field}: required` }
  if (first.keyword === 'const' || first.keyword === 'anyOf') {
    return { code: 'VALIDATION_FAILED', message: `${field}: not one of the allowed values` }
  }
  return { code: 'VALIDATION_FAILED', message: `${field}: ${first.message ?? 'is not valid'}` }
}

// The router answers malformed URLs (bad percent-encoding, over-long params) before any hook or
// error handler runs; this gives those answers the same shape as every other error.
const ROUTER_CODES: Record<string, { code: string, status: number, message: string }> = {
  FST_ERR_BAD_URL: { code: 'INVALID_URL', status: 400, message: 'the URL is not valid (bad percent-encoding)' },
  FST_ERR_MAX_PARAM_LENGTH: { code: 'URL_TOO_LONG', status: 414, message: 'a URL segment is too long' }
}

export function frameworkErrors (err: FastifyError, _request: FastifyRequest, reply: FastifyReply): void {
  const mapped = ROUTER_CODES[err.code] ?? { code: 'INVALID_REQUEST', status: 400, message: 'the request is not valid' }
  reply.code(mapped.status).send({ error: { code: mapped.code, message: mapped.message } })
}

async function errorsPlugin (app: FastifyInstance): Promise<void> {
  app.setErrorHandler((err: FastifyError & { detail?: unknown }, request: FastifyRequest, reply: FastifyReply) => {
    if (err.validation !== undefined) {
      const { code, message } = describeValidation(err)
      return reply.code(400).send({ error: { code, message } })
    }
    const mapped = typeof err.code === 'string' ? FASTIFY_CODES[err.code] : undefined
    if (mapped !== undefined) {
      return reply.code(mapped.status).send({ error: { code: mapped.code, message: err.message } })
    }
    const status = typeof err.statusCode === 'number' && err.statusCode >= 400 && err.statusCode < 600 ? err.statusCode : 500
    const known = typeof err.code === 'string' && !err.code.startsWith('FST_') && status !== 500
    if (!known) {
      request.log.error({ err: { type: err.name, code: err.code, stack: err.stack } }, 'unexpected error')
      if (status < 500 && typeof err.code === 'string') {
        return reply.code(status).send({ error: { code: err.code.replace(/^FST_ERR_/, ''), message: err.message } })
      }
      return reply.code(500).send({ error: { code: 'INTERNAL', message: 'internal error; see the service log with this request id', detail: { requestId: request.id } } })
    }
    if (status >= 500) request.log.warn({ code: err.code, statusCode: status }, err.message)
    if (status === 429 || status === 503) {
      const retry = (err as { retryAfter?: number }).retryAfter
      if (retry !== undefined) reply.header('retry-after', String(retry))
    }
    const body: { code: string, message: string, detail?: unknown } = { code: err.code, message: err.message }
    if (err.detail !== undefined) body.detail = err.detail
    return reply.code(status).send({ error: body })
  })

  app.setNotFoundHandler((request, reply) => {
    return reply.code(404).send({ error: { code: 'ROUTE_NOT_FOUND', message: `no route ${request.method} ${request.url.split('?')[0]}` } })
  })
}

export default fp(errorsPlugin, { name: 'errors' })

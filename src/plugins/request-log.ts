import { AsyncLocalStorage } from 'node:async_hooks'
import type { FastifyBaseLogger, FastifyInstance } from 'fastify'

// Log lines that services write while serving a request carry its request id: the request's
// logger is kept in async-local storage, and the services get a logger that forwards to it
// (or to the app's logger outside of requests, e.g. periodic reconciliation).

export interface RequestLogging {
  /** Hand this to services in place of app.log. */
  log: FastifyBaseLogger
  /** Installs the hooks; call before any other hook is added. */
  install: (app: FastifyInstance) => void
}

export function requestLogging (base: FastifyBaseLogger): RequestLogging {
  const current = new AsyncLocalStorage<FastifyBaseLogger>()
  const log = new Proxy(base, {
    get (target, prop) {
      const active = current.getStore() ?? target
      const value: unknown = Reflect.get(active, prop, active)
      return typeof value === 'function' ? value.bind(active) : value
    }
  })
  return {
    log,
    install: (app) => {
      app.addHook('onRequest', (request, _reply, done) => { current.run(request.log, done) })
      // Reading the body continues in the socket's context; enter the request's again after it.
      app.addHook('preValidation', (request, _reply, done) => { current.run(request.log, done) })
    }
  }
}

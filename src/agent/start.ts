import type { FastifyInstance } from 'fastify'
import { buildAgentApp, type AgentAppOptions } from './app.ts'
import type { AgentConfig } from './config.ts'

// Builds the agent and listens; used by main.ts and by the control plane's local mode, which
// runs an agent inside its own process for the host it runs on.

export interface RunningAgent {
  url: string
  app: FastifyInstance
  close (): Promise<void>
}

export async function startAgent (config: AgentConfig, opts: AgentAppOptions = {}): Promise<RunningAgent> {
  const app = await buildAgentApp(config, opts)
  try {
    const address = await app.listen({ host: config.host, port: config.port })
    return { url: address, app, close: async () => { await app.close() } }
  } catch (err) {
    await app.close()
    throw err
  }
}

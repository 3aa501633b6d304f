import closeWithGrace from 'close-with-grace'
import { realpathSync } from 'node:fs'
import { fileURLToPath } from 'node:url'
import { AgentConfigError, loadAgentConfig } from './config.ts'
import { startAgent } from './start.ts'

// `npm run agent`: the in-VM agent as a process. Mounts and the rclone daemon outlive it on
// purpose; the next agent adopts them.

export { startAgent } from './start.ts'

export async function main (env: Record<string, string | undefined> = process.env): Promise<void> {
  let config
  try {
    config = loadAgentConfig(env)
  } catch (err) {
    if (err instanceof AgentConfigError) {
      process.stderr.write(`agent configuration: ${err.message}\n`)
      process.exit(1)
    }
    throw err
  }
  const agent = await startAgent(config)
  closeWithGrace({ delay: 10_000 }, async ({ err }) => {
    if (err !== undefined) agent.app.log.error({ err: { message: err.message } }, 'shutting down after an error')
    await agent.close()
  })
}

function executedDirectly (): boolean {
  const entry = process.argv[1]
  if (entry === undefined) return false
  try {
    return realpathSync(entry) === realpathSync(fileURLToPath(import.meta.url))
  } catch {
    return false
  }
}

if (executedDirectly()) {
  main().catch(err => {
    process.stderr.write(`agent failed to start: ${(err as Error).message}\n`)
    process.exit(1)
  })
}

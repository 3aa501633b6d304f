import t from 'tap'
import { loadAgentConfig } from '../../src/agent/config.ts'

t.test('defaults, conversion and required token', async t => {
  const cfg = loadAgentConfig({ AGENT_TOKEN: 'x'.repeat(16), PATH: '/usr/bin' })
  t.match(cfg, {
    host: '127.0.0.1',
    port: 7070,
    configDir: '/run/sandbox-mounts',
    stateDir: '/var/lib/sandbox-mounts-agent',
    sandboxUser: 'sandbox',
    rcloneBin: 'rclone',
    fusermountBin: 'fusermount3',
    preflightTimeoutMs: 10_000,
    mountTimeoutMs: 20_000,
    flushTimeoutMs: 60_000,
    path: '/usr/bin'
  })
  t.equal(loadAgentConfig({ AGENT_TOKEN: 'x'.repeat(16), AGENT_PORT: '0', AGENT_FLUSH_TIMEOUT_MS: '500' }).flushTimeoutMs, 500)
  t.throws(() => loadAgentConfig({}), { name: 'AgentConfigError' })
  t.throws(() => loadAgentConfig({}), /AGENT_TOKEN/)
  t.throws(() => loadAgentConfig({ AGENT_TOKEN: 'short' }), /AGENT_TOKEN/)
  t.throws(() => loadAgentConfig({ AGENT_TOKEN: 'x'.repeat(16), AGENT_PORT: 'seventy' }), /AGENT_PORT/)
  t.throws(() => loadAgentConfig({ AGENT_TOKEN: 'x'.repeat(16), SANDBOX_USER: 'bad user;' }), /SANDBOX_USER/)
  const err = t.throws(() => loadAgentConfig({ AGENT_TOKEN: 'secret-token-value-1234', AGENT_PORT: 'x' })) as Error
  t.notOk(err.message.includes('secret-token-value-1234'), 'values never appear in errors')
})

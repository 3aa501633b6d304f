// pino redact paths: every place a secret could sit in a logged object. Request bodies are not
// logged at all; these catch headers and any object that carries creds by mistake.
export const REDACT_PATHS = [
  'req.headers.authorization',
  'req.headers.cookie',
  'headers.authorization',
  'authorization',
  'agentToken',
  'token',
  'creds',
  'rcloneConfig',
  'config',
  'redact',
  '*.creds',
  '*.rcloneConfig',
  '*.config',
  '*.agentToken',
  '*.authorization',
  '*.redact',
  '*.password',
  '*.pass',
  '*.secret',
  '*.secret_access_key',
  '*.key'
]

// The same suite against the PostgreSQL registry.
process.env.TEST_STORE = 'postgres'
await import('./lifecycle.test.ts')

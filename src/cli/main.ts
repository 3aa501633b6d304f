#!/usr/bin/env node
import { run } from './run.ts'

// The `sandbox-mounts` bin. exitCode rather than exit() so buffered output is flushed.
process.exitCode = await run(process.argv.slice(2), { stdout: process.stdout, stderr: process.stderr, stdin: process.stdin, env: process.env })

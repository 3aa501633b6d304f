import { rmSync } from 'node:fs'
import { destroyClusterSync, pgStatePath, readPgState } from '../helpers/postgres.ts'

// tap's `after` script: stops the run's PostgreSQL cluster and deletes its directory.

const state = readPgState()
if (state !== undefined) destroyClusterSync(state.dir)
rmSync(pgStatePath(), { force: true })

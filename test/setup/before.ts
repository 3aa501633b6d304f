import { destroyClusterSync, readPgState, startCluster, writePgState } from '../helpers/postgres.ts'

// tap's `before` script: one PostgreSQL cluster for the whole run, recorded in the state
// file that test/helpers/postgres.ts reads (one per tap process). A cluster left over under the
// same file by an interrupted run is removed first.

const stale = readPgState()
if (stale !== undefined) destroyClusterSync(stale.dir)

const started = Date.now()
const cluster = await startCluster()
writePgState({ url: cluster.url, dir: cluster.dir, port: cluster.port })
console.log(`# PostgreSQL test cluster on 127.0.0.1:${cluster.port} (${Date.now() - started} ms)`)

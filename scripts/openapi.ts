import { writeFile } from 'node:fs/promises'
import { generateOpenApiYaml } from '../src/openapi.ts'

await writeFile(new URL('../openapi.yaml', import.meta.url), await generateOpenApiYaml())
process.stdout.write('openapi.yaml written\n')

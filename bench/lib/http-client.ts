import http from 'node:http'

// A plain keep-alive HTTP/1.1 client for sequential latency samples. fetch (undici) adds a
// millisecond-scale tail of its own on a busy 2-core machine; node:http keeps the client's
// share of each sample small, so the percentiles describe the server.

export interface HttpAnswer {
  status: number
  body: string
}

export function keepAliveClient (base: string): { get: (path: string, headers?: Record<string, string>) => Promise<HttpAnswer>, close: () => void } {
  const agent = new http.Agent({ keepAlive: true, maxSockets: 1 })
  return {
    get: async (path, headers = {}) => await new Promise<HttpAnswer>((resolve, reject) => {
      const req = http.get(base + path, { headers, agent }, res => {
        const chunks: Buffer[] = []
        res.on('data', (c: Buffer) => chunks.push(c))
        res.on('end', () => { resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks).toString('utf8') }) })
        res.on('error', reject)
      })
      req.on('error', reject)
    }),
    close: () => { agent.destroy() }
  }
}

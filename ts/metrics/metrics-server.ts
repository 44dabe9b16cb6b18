// An HTTP endpoint for Prometheus to scrape: GET /metrics answers a node's metrics in the text format;
// anything else is 404. Only what a scraper needs, on node:http.

import { createServer, type Server } from 'node:http'
import type { AddressInfo } from 'node:net'
import { InvalidConfigError } from '../shared/errors.js'
import type { NodeMetrics } from './node-metrics.js'

/** A running metrics endpoint. */
export interface MetricsServer {
  /** "http://host:port/metrics" */
  readonly url: string
  close(): Promise<void>
}

function hostForUrl(host: string): string {
  return host.includes(':') ? `[${host}]` : host
}

/**
 * Serves `metrics` on `host:port` (0 picks a free port).
 * @throws InvalidConfigError naming metricsPort when the port cannot be listened on
 */
export async function serveMetrics(metrics: NodeMetrics, host: string, port: number): Promise<MetricsServer> {
  const server: Server = createServer((request, response) => {
    if (request.method !== 'GET' || request.url?.split('?')[0] !== '/metrics') {
      response.writeHead(404).end('not found: GET /metrics\n')
      return
    }
    metrics.text().then(
      (text) => response.writeHead(200, { 'content-type': metrics.contentType }).end(text),
      (err: unknown) => response.writeHead(500).end(`${(err as Error).message}\n`),
    )
  })
  await new Promise<void>((resolve, reject) => {
    server.once('error', (err) =>
      reject(new InvalidConfigError('metricsPort', `cannot listen on ${host}:${port}: ${err.message}`)),
    )
    server.listen(port, host, () => {
      server.removeAllListeners('error')
      resolve()
    })
  })
  const address = server.address() as AddressInfo
  return {
    url: `http://${hostForUrl(address.address)}:${address.port}/metrics`,
    close: () =>
      new Promise((resolve) => {
        server.close(() => resolve())
        server.closeAllConnections()
      }),
  }
}

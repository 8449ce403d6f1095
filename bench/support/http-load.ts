/**
 * An HTTP load generator on its own thread, so the clients' work (undici, JSON) does not run on the
 * controller's event loop it is measuring. Keeps `concurrency` requests in flight until all are sent.
 */
import { Worker } from 'node:worker_threads';

export interface LoadRequest {
  readonly path: string;
  readonly body: unknown;
}

export interface LoadResult {
  readonly elapsedMs: number;
  /** per request, in the order given */
  readonly latenciesMs: number[];
  readonly statuses: number[];
}

const WORKER_SOURCE = `
const { parentPort, workerData } = require('node:worker_threads');
const { baseUrl, headers, requests, concurrency } = workerData;
const latenciesMs = new Array(requests.length);
const statuses = new Array(requests.length);
let next = 0;
async function client() {
  while (next < requests.length) {
    const i = next++;
    const start = performance.now();
    try {
      const res = await fetch(baseUrl + requests[i].path, { method: 'POST', headers, body: JSON.stringify(requests[i].body) });
      await res.arrayBuffer();
      statuses[i] = res.status;
    } catch {
      statuses[i] = 0;
    }
    latenciesMs[i] = performance.now() - start;
  }
}
const t0 = performance.now();
Promise.all(Array.from({ length: concurrency }, client)).then(() => {
  parentPort.postMessage({ elapsedMs: performance.now() - t0, latenciesMs, statuses });
});
`;

export function postFromWorker(baseUrl: string, headers: Record<string, string>, requests: readonly LoadRequest[], concurrency: number): Promise<LoadResult> {
  return new Promise((resolve, reject) => {
    const worker = new Worker(WORKER_SOURCE, { eval: true, workerData: { baseUrl, headers, requests, concurrency } });
    worker.once('message', (result: LoadResult) => {
      resolve(result);
      void worker.terminate();
    });
    worker.once('error', reject);
  });
}

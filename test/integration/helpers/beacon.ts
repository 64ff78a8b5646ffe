import { request, type Agent } from 'node:http';

/**
 * POST `body` to `<url>/v1/collect` as text/plain (a sendBeacon), through `agent` — one without
 * keep-alive opens a fresh connection per beacon, so a cluster hands them to its workers in turn.
 * Resolves with the status code.
 */
export function beacon(url: string, agent: Agent, body: unknown): Promise<number> {
  return new Promise((resolve, reject) => {
    const req = request(`${url}/v1/collect`, { method: 'POST', agent, headers: { 'content-type': 'text/plain' } }, (res) => {
      res.resume();
      res.on('end', () => resolve(res.statusCode ?? 0));
    });
    req.on('error', reject);
    req.end(JSON.stringify(body));
  });
}

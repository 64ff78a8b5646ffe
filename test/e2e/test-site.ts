import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';

/**
 * A tiny static site for the browser tests: `scriptPath` serves the library bundle, `/next` a page
 * without it, and every other path a page that loads the bundle and runs `init(query)` (the page's
 * query string chooses the write key and mode).
 */
export async function serveTestSite(o: { scriptPath: string; bundle: string; init: (query: URLSearchParams) => string }): Promise<{ server: Server; url: string }> {
  const server = createServer((req, res) => {
    const url = new URL(req.url ?? '/', 'http://localhost');
    if (url.pathname === o.scriptPath) {
      res.writeHead(200, { 'content-type': 'text/javascript; charset=utf-8' }).end(o.bundle);
    } else if (url.pathname === '/next') {
      res.writeHead(200, { 'content-type': 'text/html; charset=utf-8' }).end('<!doctype html><title>Next</title><p>next page');
    } else if (url.pathname === '/favicon.ico') {
      res.writeHead(404).end();
    } else {
      res
        .writeHead(200, { 'content-type': 'text/html; charset=utf-8' })
        .end(`<!doctype html><title>Pricing</title><script src="${o.scriptPath}"></script><script>${o.init(url.searchParams)}</script><p>test page`);
    }
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return { server, url: `http://127.0.0.1:${(server.address() as AddressInfo).port}` };
}

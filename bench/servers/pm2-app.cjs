// The bench app as PM2 runs it in cluster mode (PM2 forks this file through
// Node's cluster module, so `listen(PORT)` goes through the cluster primary
// inside PM2's daemon).
import('./serve.mjs').then(({ createServer, port }) => createServer().listen(port()));

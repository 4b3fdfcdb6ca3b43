// The throughput ceiling: one of N independent processes, each with its own
// SO_REUSEPORT socket on the same port and no supervisor. Node 20 has no
// `reusePort` listen option (22.12+), so the socket is made by this
// project's own libc bindings (dist/net: socket, SO_REUSEPORT, bind) and
// handed to `server.listen({ fd })`, which calls listen(2): the same kernel
// data path as a handover worker, on the same Node binary as every other
// contender. Prints one line, "listening", when it accepts.
import { listenerSpec, openListener, socketAddress } from '../../dist/net/index.js';
import { createServer, port } from './serve.mjs';

const BACKLOG = 511;
const listener = openListener(listenerSpec({ address: socketAddress('127.0.0.1', port(), 4), backlog: BACKLOG }));
const server = createServer();
// Positional backlog: Node 20 ignores `backlog` inside the options when listening on an fd.
server.listen({ fd: listener.fd }, BACKLOG, () => process.stdout.write('listening\n'));
process.once('SIGTERM', () => server.close(() => process.exit(0)));

// examples/hello as an app that listens itself: what `node hello-listen.js`
// runs unchanged, and what handover routes to its inherited socket.
import { createServer } from 'node:http';
import hello from '../../examples/hello/app.js';

createServer(hello).listen(Number(process.env.PORT ?? 8080), '127.0.0.1');

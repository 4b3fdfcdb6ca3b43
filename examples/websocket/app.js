// WebSockets with ws on handover's own server. setup(server, ctx) runs once
// per listen address, before it listens; ctx.signal aborts when this worker
// starts draining (a reload or a stop): close every socket with 1001 "going
// away", and clients reconnect, to the new generation.
import { WebSocketServer } from 'ws';

export default {
  handler(req, res) {
    res.setHeader('x-handover-worker', String(process.pid));
    res.end(`hello from worker ${process.pid}; connect with a WebSocket for echo\n`);
  },

  setup(server, ctx) {
    const wss = new WebSocketServer({ server });
    wss.on('connection', (ws) => {
      ws.send(JSON.stringify({ worker: process.pid, generation: ctx.generation }));
      ws.on('message', (data, isBinary) => ws.send(data, { binary: isBinary }));
    });
    ctx.signal.addEventListener('abort', () => {
      for (const ws of wss.clients) ws.close(1001, 'server reloading');
    });
  },
};

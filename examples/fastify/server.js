// An ordinary Fastify app. `listen({ port })` defaults to host "localhost":
// Fastify listens on 127.0.0.1 and then, where localhost also resolves to
// ::1, opens a second server there. Under handover each gets the configured
// address of its own; one that is not configured is refused (Fastify goes
// on with the first) and the worker says which address is missing.
import Fastify from 'fastify';

const app = Fastify();

app.get('/', async (request, reply) => {
  reply.header('x-handover-worker', String(process.pid));
  return `hello from fastify, worker ${process.pid}\n`;
});

await app.listen({ port: 3000 });

// A Koa app in CommonJS, exactly as `node server.cjs` runs it.
const Koa = require('koa');

const app = new Koa();

app.use((ctx) => {
  ctx.set('x-handover-worker', String(process.pid));
  ctx.body = `hello from koa, worker ${process.pid}\n`;
});

app.listen(3000);

// An ordinary Express app, exactly as `node server.js` runs it. Under
// handover its app.listen(3000) is given the socket of the configured
// address with port 3000 instead of binding one.
import express from 'express';

const app = express();

app.get('/', (req, res) => {
  res.set('x-handover-worker', String(process.pid));
  res.send(`hello from express, worker ${process.pid}\n`);
});

app.listen(3000, () => console.log('express listening on port 3000'));

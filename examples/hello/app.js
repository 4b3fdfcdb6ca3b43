// The example app handover serves out of the box: a plain request listener.
// `GET /slow?ms=500` answers after a delay (useful to watch a graceful stop
// or a reload let in-flight requests finish).
export default function hello(req, res) {
  const url = new URL(req.url ?? '/', 'http://localhost');
  const reply = () => {
    res.setHeader('content-type', 'text/plain; charset=utf-8');
    res.setHeader('x-handover-worker', String(process.pid));
    res.end(`hello from worker ${process.pid}\n`);
  };
  if (url.pathname === '/slow') {
    const ms = Math.min(Number(url.searchParams.get('ms') ?? 1000) || 0, 60_000);
    setTimeout(reply, ms);
    return;
  }
  reply();
}

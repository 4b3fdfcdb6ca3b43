// One HTTP (or, with BENCH_TLS_CERT/BENCH_TLS_KEY, HTTPS) server around the
// bench app, for the contenders that are not handover. Certificates are read
// once at start: a new certificate takes a new process, which is how these
// contenders rotate them (a reload).
import { readFileSync } from 'node:fs';
import http from 'node:http';
import https from 'node:https';
import ok from './ok.mjs';

export function createServer() {
  const cert = process.env.BENCH_TLS_CERT;
  const key = process.env.BENCH_TLS_KEY;
  if (cert && key) return https.createServer({ cert: readFileSync(cert), key: readFileSync(key) }, ok);
  return http.createServer(ok);
}

export function port() {
  const value = Number(process.env.PORT);
  if (!Number.isInteger(value) || value <= 0) throw new Error(`PORT must be a port number (got ${process.env.PORT})`);
  return value;
}

// Generated documentation must match the schema it is generated from.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { it } from 'node:test';
import { renderReadme, renderSchema } from '../scripts/docs.js';

it('README configuration reference and config/handover.schema.json are up to date (npm run docs)', () => {
  const readme = readFileSync(new URL('../README.md', import.meta.url), 'utf8');
  assert.equal(readme, renderReadme(readme));
  assert.equal(readFileSync(new URL('../config/handover.schema.json', import.meta.url), 'utf8'), renderSchema());
});

it('README starts with the install-and-run command and the test command', () => {
  const readme = readFileSync(new URL('../README.md', import.meta.url), 'utf8');
  const head = readme.split('\n').slice(0, 6).join('\n');
  assert.match(head, /npm install && npm start/);
  assert.match(head, /npm test/);
});

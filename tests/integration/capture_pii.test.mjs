// PII never reaches the disk: prompts, streamed answers, the OpenAI `user`
// field and feedback carrying emails, phones, cards, SSNs, IPs, IBANs and
// secrets go through the gateway; then the LMDB files are read as bytes and
// none of the raw strings may be there, while the placeholders are.

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import {
  startMock, startGateway, stopAll, mockRequestsWith, marker, SLOW, UPSTREAM_KEY,
} from './lib/harness.mjs';
import { client } from './lib/sdk.mjs';
import {
  dataDirOf, ctl, showCapture, waitForCaptures, postFeedback, exportStore,
} from './lib/capture.mjs';

let mock;
before(async () => { mock = await startMock(); });
after(stopAll);

const T = { timeout: 60000 * SLOW };
const alnum = (n) => {
  const abc = 'abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789';
  return Array.from(randomBytes(n), (b) => abc[b % abc.length]).join('');
};

test('PII in prompts, answers, user ids and feedback never appears in the LMDB files', T, async () => {
  // Random parts where the format allows, so a hit can only come from us.
  const pii = {
    email: `bob.${alnum(8).toLowerCase()}+tag@example.com`,
    phoneIntl: '+1 415 555 0132',
    phoneUs: '(415) 555-0187',
    cardSpaced: '4111 1111 1111 1111',
    cardPlain: '5555555555554444',
    ssn: '123-45-6789',
    skKey: `sk-${alnum(40)}`,
    skProj: `sk-proj-${alnum(48)}`,
    aws: 'AKIAIOSFODNN7EXAMPLE',
    ipv4: '203.0.113.77',
    ipv6: '2001:db8:85a3::8a2e:370:7334',
    iban: 'DE89 3704 0044 0532 0130 00',
    bearer: `Bearer ${alnum(32)}`,
    ticket: `TCK-${String(100000 + (randomBytes(2).readUInt16BE() % 899999))}`,
  };
  const raw = Object.values(pii).map((v) => (v.startsWith('Bearer ') ? v.slice(7) : v));
  const placeholders = ['[EMAIL]', '[PHONE]', '[CARD]', '[SSN]', '[SECRET]', '[IP]', '[IBAN]',
    '[TICKET]'];

  const gw = await startGateway(mock.url + '/v1', { config: {
    capture: { pii_patterns: [{ name: 'TICKET', pattern: 'TCK-[0-9]{6}' }] } } });
  const dir = dataDirOf(gw);
  const sdk = client(gw.base, gw.key);

  const m = marker('pii');
  const prompts = [
    `${m} please email ${pii.email} or call ${pii.phoneIntl}; card ${pii.cardSpaced}`,
    `${m} ssn ${pii.ssn}, other card ${pii.cardPlain}, US phone ${pii.phoneUs}`,
    `${m} my key is ${pii.skKey} and ${pii.skProj}, aws ${pii.aws}`,
    `${m} server ${pii.ipv4} and ${pii.ipv6}, pay to ${pii.iban}`,
    `${m} header was Authorization: ${pii.bearer} about ticket ${pii.ticket}`,
  ];
  const ids = [];
  for (const [i, p] of prompts.entries()) {
    const body = {
      model: 'gpt-4o-mini',
      user: pii.email,
      messages: [{ role: 'system', content: `support agent for ${pii.email}` },
        { role: 'user', content: p }],
    };
    if (i % 2 === 1) {
      // Small chunks split the PII across SSE events; the assembled answer is scrubbed.
      const s = client(gw.base, gw.key, { headers: { 'x-mock-chunks': '40' } });
      const { data, response } = await s.chat.completions.create({ ...body, stream: true })
        .withResponse();
      let content = '';
      for await (const ch of data) content += ch.choices?.[0]?.delta?.content ?? '';
      assert.ok(content.includes(p), 'the client sees its own text, unscrubbed');
      ids.push(response.headers.get('x-switchyard-capture-id'));
    } else {
      const { data, response } = await sdk.chat.completions.create(body).withResponse();
      assert.ok(data.choices[0].message.content.includes(p), 'the answer is not scrubbed');
      ids.push(response.headers.get('x-switchyard-capture-id'));
    }
  }
  assert.ok(ids.every(Boolean));
  // Upstream traffic is not scrubbed (only what is stored).
  assert.equal((await mockRequestsWith(mock, pii.ssn)).length, 1);

  await waitForCaptures(dir, (rs) => rs.length >= prompts.length);
  const fb = await postFeedback(gw, { capture_id: ids[0], rating: 'down',
    comment: `reach me at ${pii.email} or ${pii.phoneIntl}`,
    correction: `Sure, card ${pii.cardSpaced} and ssn ${pii.ssn} are noted.`,
    user: pii.email, tags: ['pii'] });
  assert.equal(fb.status, 200, fb.text);

  // What the store holds equals switchyardctl scrub's output for the same text.
  const scrub = await ctl(['scrub', '--pattern', 'TICKET=TCK-[0-9]{6}'],
    { input: prompts.join('\n') + '\n' });
  const scrubbed = scrub.stdout.split('\n').slice(0, prompts.length);
  for (const [i, id] of ids.entries()) {
    const rec = await showCapture(dir, id);
    assert.equal(rec.request.messages[1].content, scrubbed[i], `prompt ${i} stored scrubbed`);
    assert.equal(rec.request.messages[0].content, 'support agent for [EMAIL]');
    assert.equal(rec.response.choices[0].message.content,
      `This is a mock reply to: ${scrubbed[i]}`, `answer ${i} stored scrubbed`);
    assert.notEqual(rec.request.user, pii.email, 'the user field is not stored raw');
  }
  const rec0 = await showCapture(dir, ids[0]);
  assert.equal(rec0.feedback[0].comment, 'reach me at [EMAIL] or [PHONE]');
  assert.equal(rec0.feedback[0].correction, 'Sure, card [CARD] and ssn [SSN] are noted.');
  const exp = await exportStore(dir);
  assert.equal(exp.train.length, prompts.length);

  assert.equal(await gw.stop(), 0);

  // The bytes on disk: every file in the data dir.
  const files = readdirSync(dir);
  assert.ok(files.includes('data.mdb'), `data dir holds ${files.join(', ')}`);
  const blobs = files.map((f) => [f, readFileSync(join(dir, f))]);
  const data = blobs.find(([f]) => f === 'data.mdb')[1];
  assert.ok(data.includes(m), 'the prompts are in data.mdb (the grep can see text)');
  for (const p of placeholders) assert.ok(data.includes(p), `${p} occurs in data.mdb`);
  const secrets = [...raw, gw.key, UPSTREAM_KEY,
    // Partial forms a sloppy scrubber could leave behind.
    pii.email.split('@')[0] + '@', '4111111111111111', '555-0132', '0532 0130'];
  for (const [f, bytes] of blobs) {
    for (const s of secrets) {
      assert.ok(!bytes.includes(s), `${JSON.stringify(s)} occurs in ${f}`);
      // JSON escaping could hide it as UTF-16 escapes; check the UTF-16LE form too.
      assert.ok(!bytes.includes(Buffer.from(s, 'utf16le')), `${s} (UTF-16) in ${f}`);
    }
  }
  assert.equal(await mock.stop(), 0);
});

import { describe, expect, it } from 'vitest';
import { signRequest, SIGNATURE_HEADERS, verifySignature } from './signing.ts';

const secret = 'test-secret-0123456789';
const parts = { method: 'POST', path: '/v1/chat/completions', body: '{"model":"m"}' };
const now = 1_800_000_000_000;

describe('signRequest / verifySignature', () => {
  it('accepts what it signed, with string or byte bodies', async () => {
    const headers = await signRequest(secret, parts, { now });
    expect(headers[SIGNATURE_HEADERS.signature]).toMatch(/^v1=[0-9a-f]{64}$/);
    expect(await verifySignature(secret, headers, parts, now)).toEqual({
      ok: true,
      timestamp: now / 1000,
      nonce: headers[SIGNATURE_HEADERS.nonce],
    });
    const bytes = { ...parts, body: new TextEncoder().encode(parts.body) };
    expect((await verifySignature(secret, new Headers(headers), bytes, now)).ok).toBe(true);
  });

  it('uses a fresh nonce each time', async () => {
    const a = await signRequest(secret, parts, { now });
    const b = await signRequest(secret, parts, { now });
    expect(a[SIGNATURE_HEADERS.nonce]).not.toBe(b[SIGNATURE_HEADERS.nonce]);
  });

  it.each([
    ['a changed body', { ...parts, body: '{"model":"n"}' }],
    ['a changed path', { ...parts, path: '/v1/completions' }],
    ['a changed method', { ...parts, method: 'PUT' }],
  ])('refuses %s', async (_name, changed) => {
    const headers = await signRequest(secret, parts, { now });
    expect(await verifySignature(secret, headers, changed, now)).toMatchObject({ ok: false, code: 'bad_signature' });
  });

  it('refuses another secret, a changed nonce and an empty secret', async () => {
    const headers = await signRequest(secret, parts, { now });
    expect(await verifySignature('other-secret', headers, parts, now)).toMatchObject({ ok: false, code: 'bad_signature' });
    expect(
      await verifySignature(secret, { ...headers, [SIGNATURE_HEADERS.nonce]: 'aaaaaaaaaaaaaaaa' }, parts, now),
    ).toMatchObject({ ok: false, code: 'bad_signature' });
    expect(await verifySignature('', headers, parts, now)).toMatchObject({ ok: false, code: 'bad_signature' });
  });

  it('refuses a timestamp outside the allowed skew, in both directions', async () => {
    const headers = await signRequest(secret, parts, { now });
    expect(await verifySignature(secret, headers, parts, now + 61_000)).toMatchObject({ ok: false, code: 'stale_timestamp' });
    expect(await verifySignature(secret, headers, parts, now - 61_000)).toMatchObject({ ok: false, code: 'stale_timestamp' });
    expect((await verifySignature(secret, headers, parts, now + 59_000)).ok).toBe(true);
    expect(await verifySignature(secret, headers, parts, now + 11_000, 10)).toMatchObject({ ok: false, code: 'stale_timestamp' });
  });

  it('says what is missing or malformed', async () => {
    const headers = await signRequest(secret, parts, { now });
    expect(await verifySignature(secret, {}, parts, now)).toMatchObject({ ok: false, code: 'missing_signature' });
    expect(await verifySignature(secret, { ...headers, [SIGNATURE_HEADERS.signature]: 'v2=abc' }, parts, now)).toMatchObject({
      ok: false,
      code: 'malformed_signature',
    });
    expect(await verifySignature(secret, { ...headers, [SIGNATURE_HEADERS.timestamp]: 'soon' }, parts, now)).toMatchObject({
      ok: false,
      code: 'malformed_signature',
    });
    expect(await verifySignature(secret, { ...headers, [SIGNATURE_HEADERS.nonce]: 'x' }, parts, now)).toMatchObject({
      ok: false,
      code: 'malformed_signature',
    });
  });

  it('reads headers case-insensitively from a plain record (as node:http gives them)', async () => {
    const headers = await signRequest(secret, parts, { now });
    const upper = Object.fromEntries(Object.entries(headers).map(([k, v]) => [k.toUpperCase(), v]));
    expect((await verifySignature(secret, upper, parts, now)).ok).toBe(true);
  });
});

/**
 * vitest globalSetup of the "workers" project (runs in Node, before workerd starts): starts the stub backend
 * (see stub-server.ts for why a stub) and provides its address to the pool options and to the tests.
 */
import type { TestProject } from 'vitest/node';
import { refusedUrl, startStubBackend } from './stub-server.ts';

/** The HMAC secret the tests' worker signs with and the stub verifies. */
export const STUB_HMAC_SECRET = 'test-hmac-secret-for-the-stub-backend';

/** What the tests learn about the stub. */
export interface StubBackendInfo {
  /** Base of the stub; a backend URL is `${url}/<behaviour>/<tag>`. */
  url: string;
  /** A loopback address that refuses connections. */
  refusedUrl: string;
}

declare module 'vitest' {
  interface ProvidedContext {
    stubBackend: StubBackendInfo;
  }
}

/** Starts the stub; the returned function stops it. */
export default async function setup(project: TestProject): Promise<() => Promise<void>> {
  const stub = await startStubBackend(STUB_HMAC_SECRET);
  project.provide('stubBackend', { url: stub.url, refusedUrl: await refusedUrl() });
  return () => stub.close();
}

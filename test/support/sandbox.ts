/**
 * Test helpers: an in-process sandbox cloud on a free port, with the product-facing
 * environment it implies. Each suite starts its own (cheap) and stops it in afterAll.
 */
import { startSandboxCloud, type SandboxCloud, type SandboxCloudOptions } from '../../sandbox/cloud/cloud';

export async function startTestCloud(options: SandboxCloudOptions = {}): Promise<SandboxCloud> {
  return startSandboxCloud({ port: 0, ...options });
}

/** Azurite connection string started by the jest global setup. */
export function testStorageConnectionString(): string {
  const value = process.env.TEST_STORAGE_CONNECTION_STRING;
  if (!value) throw new Error('TEST_STORAGE_CONNECTION_STRING is not set: run tests through `npm test`.');
  return value;
}

/** A name unique to this test run, for queues/tables/containers (lowercase, 3-63 chars). */
export function uniqueName(prefix: string): string {
  return `${prefix}${Date.now().toString(36)}${Math.random().toString(36).slice(2, 8)}`
    .toLowerCase()
    .replace(/[^a-z0-9]/g, '')
    .slice(0, 60);
}

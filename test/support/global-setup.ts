/**
 * One Azurite for the whole test run (in memory, free ports). Suites isolate themselves by
 * using their own queue/table/container names. Workers inherit the connection string through
 * the environment.
 */
import { startAzurite } from '../../sandbox/azurite';

export default async function globalSetup(): Promise<void> {
  if (process.env.TEST_STORAGE_CONNECTION_STRING) return;
  const azurite = await startAzurite();
  process.env.TEST_STORAGE_CONNECTION_STRING = azurite.connectionString;
  (globalThis as { __AZURITE__?: { stop(): Promise<void> } }).__AZURITE__ = azurite;
}

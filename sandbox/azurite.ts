/**
 * Starts Azurite (the storage emulator, installed from npm) as a child process for `npm start`,
 * the test suite, the bench and the chaos run.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdirSync } from 'node:fs';
import { createServer, connect } from 'node:net';

/** The well-known Azurite development account (public, documented emulator credentials). */
export const AZURITE_ACCOUNT = 'devstoreaccount1';
export const AZURITE_KEY = 'Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw==';

export interface AzuriteOptions {
  /** Folder for Azurite's data; omitted → in-memory (data is gone when it stops). */
  location?: string;
  /** Ports; 0 or omitted → a free port is chosen. */
  blobPort?: number;
  queuePort?: number;
  tablePort?: number;
  /**
   * Serve HTTPS with this certificate and accept Entra ID bearer tokens (`--oauth basic`: Azurite
   * checks issuer, audience and lifetime like Azure Storage, not the signature). `host` is the
   * name clients use, covered by the certificate (e.g. `127.0.0.1`).
   */
  oauth?: { certPath: string; keyPath: string; host: string };
}

export interface RunningAzurite {
  connectionString: string;
  ports: { blob: number; queue: number; table: number };
  /** Service URIs of the account (https with `oauth`), for identity-based connections. */
  serviceUris: { blob: string; queue: string; table: string };
  /** Process id of the Azurite child (the bench reads its peak memory). */
  pid: number | undefined;
  stop(): Promise<void>;
}

/** Asks the OS for a free TCP port on loopback. */
export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      const port = typeof address === 'object' && address ? address.port : 0;
      server.close(() => resolve(port));
    });
  });
}

async function waitForPort(port: number, child: ChildProcess, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (child.exitCode !== null)
      throw new Error(`Azurite exited with code ${child.exitCode} before listening on ${port}`);
    const open = await new Promise<boolean>((resolve) => {
      const socket = connect(port, '127.0.0.1');
      socket.once('connect', () => {
        socket.destroy();
        resolve(true);
      });
      socket.once('error', () => resolve(false));
    });
    if (open) return;
    if (Date.now() > deadline) throw new Error(`Azurite did not listen on port ${port} within ${timeoutMs} ms`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

export function azuriteConnectionString(ports: { blob: number; queue: number; table: number }): string {
  const base = 'http://127.0.0.1';
  return (
    [
      'DefaultEndpointsProtocol=http',
      `AccountName=${AZURITE_ACCOUNT}`,
      `AccountKey=${AZURITE_KEY}`,
      `BlobEndpoint=${base}:${ports.blob}/${AZURITE_ACCOUNT}`,
      `QueueEndpoint=${base}:${ports.queue}/${AZURITE_ACCOUNT}`,
      `TableEndpoint=${base}:${ports.table}/${AZURITE_ACCOUNT}`,
    ].join(';') + ';'
  );
}

export async function startAzurite(options: AzuriteOptions = {}): Promise<RunningAzurite> {
  const ports = {
    blob: options.blobPort || (await freePort()),
    queue: options.queuePort || (await freePort()),
    table: options.tablePort || (await freePort()),
  };
  const args = [
    require.resolve('azurite/dist/src/azurite.js'),
    '--silent',
    '--skipApiVersionCheck',
    '--loose',
    '--disableTelemetry',
    '--blobPort',
    String(ports.blob),
    '--queuePort',
    String(ports.queue),
    '--tablePort',
    String(ports.table),
  ];
  if (options.oauth)
    args.push(
      '--oauth',
      'basic',
      '--cert',
      options.oauth.certPath,
      '--key',
      options.oauth.keyPath,
      '--disableProductStyleUrl',
    );
  if (process.env.AZURITE_DEBUG_LOG) args.push('--debug', process.env.AZURITE_DEBUG_LOG);
  if (options.location) {
    mkdirSync(options.location, { recursive: true });
    args.push('--location', options.location);
  } else {
    args.push('--inMemoryPersistence');
  }
  // Azurite needs neither our CA nor our resolver; give it a plain environment.
  const env = { ...process.env };
  delete env.NODE_OPTIONS;
  const child = spawn(process.execPath, args, { stdio: ['ignore', 'ignore', 'pipe'], env });
  // Never leave Azurite behind when this process ends, however it ends (short of SIGKILL).
  const killOnExit = () => child.kill('SIGKILL');
  process.once('exit', killOnExit);
  child.once('exit', () => process.removeListener('exit', killOnExit));
  let stderr = '';
  child.stderr?.on('data', (chunk: Buffer) => {
    stderr = (stderr + chunk.toString()).slice(-4000);
  });
  try {
    await Promise.all([
      waitForPort(ports.blob, child, 20_000),
      waitForPort(ports.queue, child, 20_000),
      waitForPort(ports.table, child, 20_000),
    ]);
  } catch (error) {
    child.kill('SIGKILL');
    throw new Error(`${(error as Error).message}${stderr ? `\n${stderr}` : ''}`);
  }
  const base = options.oauth ? `https://${options.oauth.host}` : 'http://127.0.0.1';
  return {
    connectionString: options.oauth
      ? azuriteConnectionString(ports)
          .replace(/http:\/\/127\.0\.0\.1/g, base)
          .replace('DefaultEndpointsProtocol=http;', 'DefaultEndpointsProtocol=https;')
      : azuriteConnectionString(ports),
    ports,
    pid: child.pid,
    serviceUris: {
      blob: `${base}:${ports.blob}/${AZURITE_ACCOUNT}`,
      queue: `${base}:${ports.queue}/${AZURITE_ACCOUNT}`,
      table: `${base}:${ports.table}/${AZURITE_ACCOUNT}`,
    },
    stop: () =>
      new Promise<void>((resolve) => {
        if (child.exitCode !== null) return resolve();
        child.once('exit', () => resolve());
        child.kill('SIGTERM');
        setTimeout(() => child.kill('SIGKILL'), 3000).unref();
      }),
  };
}

/**
 * The policy as data (POLICY_BLOB = `<container>/<name>`): the document in force is that blob,
 * its metadata say which version it is, who wrote it and when; every version that was ever in
 * force is kept beside it as `<name>.versions/<version>.yaml`. A write is conditional on the
 * ETag its writer read, so of two concurrent edits one wins and the other is told it is stale.
 * (Azure blob versioning would keep versions too, but is off by default and not in Azurite;
 * numbered copies also let the API list them without it.)
 */
import { RestError, type ContainerClient } from '@azure/storage-blob';
import type { StampedText, TextSource } from '../config/watched-yaml-source';

export interface PolicyVersionInfo {
  /** 1, 2, 3 … (0: a blob written outside the API, without the gateway's metadata). */
  version: number;
  updatedAt?: string;
  /** Caller key of whoever wrote it through the API. */
  updatedBy?: string;
}

export interface StoredPolicy extends StampedText, PolicyVersionInfo {}

/** The conditional write lost: the blob changed (or appeared) since the ETag its writer read. */
export class StalePolicyError extends Error {
  constructor() {
    super('The policy was changed by someone else.');
    this.name = 'StalePolicyError';
  }
}

const isStatus = (error: unknown, ...codes: number[]) =>
  error instanceof RestError && codes.includes(error.statusCode ?? 0);

/** `config/policy.yaml` → container `config`, blob `policy.yaml`. */
export function parsePolicyBlobSetting(setting: string): { container: string; name: string } {
  const at = setting.indexOf('/');
  return { container: setting.slice(0, at), name: setting.slice(at + 1) };
}

function infoOf(metadata: Record<string, string> | undefined): PolicyVersionInfo {
  const version = Number(metadata?.version ?? 0);
  return {
    version: Number.isSafeInteger(version) && version > 0 ? version : 0,
    ...(metadata?.updatedat ? { updatedAt: metadata.updatedat } : {}),
    ...(metadata?.updatedby ? { updatedBy: decodeURIComponent(metadata.updatedby) } : {}),
  };
}

export class PolicyBlobStore implements TextSource {
  readonly label: string;

  constructor(
    private readonly container: ContainerClient,
    private readonly name: string,
  ) {
    this.label = `POLICY_BLOB=${container.containerName}/${name}`;
  }

  private get blob() {
    return this.container.getBlockBlobClient(this.name);
  }

  private versionBlob(version: number) {
    return this.container.getBlockBlobClient(`${this.name}.versions/${String(version).padStart(10, '0')}.yaml`);
  }

  async init(): Promise<void> {
    await this.container.createIfNotExists();
  }

  async stamp(): Promise<string | undefined> {
    try {
      return (await this.blob.getProperties()).etag;
    } catch (error) {
      if (isStatus(error, 404)) return undefined;
      throw error;
    }
  }

  async read(): Promise<StoredPolicy | undefined> {
    try {
      const response = await this.blob.download();
      const text = (await streamText(response.readableStreamBody)).toString('utf8');
      return { text, stamp: response.etag!, ...infoOf(response.metadata) };
    } catch (error) {
      if (isStatus(error, 404)) return undefined;
      throw error;
    }
  }

  /**
   * Writes a new version: over the blob whose ETag is `ifMatch`, or as the first one when
   * `ifMatch` is undefined. StalePolicyError when that is no longer so. The version it replaces
   * is kept (if it was not already), and so is the new one.
   */
  async write(text: string, options: { ifMatch?: string; by: string; at?: Date }): Promise<StoredPolicy> {
    const current = options.ifMatch === undefined ? undefined : await this.read();
    if (options.ifMatch !== undefined && (!current || current.stamp !== options.ifMatch)) throw new StalePolicyError();
    // Keep the version about to be replaced: normally kept when it was written, but a blob
    // uploaded outside the API, or a writer that died before keeping its own, would be lost.
    if (current) await this.keep(current, { overwrite: false });
    const info: PolicyVersionInfo = {
      version: (current?.version ?? 0) + 1,
      updatedAt: (options.at ?? new Date()).toISOString(),
      updatedBy: options.by,
    };
    let etag: string;
    try {
      const response = await this.blob.upload(text, Buffer.byteLength(text), {
        blobHTTPHeaders: { blobContentType: 'application/yaml; charset=utf-8' },
        metadata: metadataOf(info),
        conditions: options.ifMatch === undefined ? { ifNoneMatch: '*' } : { ifMatch: options.ifMatch },
      });
      etag = response.etag!;
    } catch (error) {
      if (isStatus(error, 409, 412)) throw new StalePolicyError();
      throw error;
    }
    const stored: StoredPolicy = { text, stamp: etag, ...info };
    // This writer won version N: its copy is the true one, whatever an earlier loser left there.
    await this.keep(stored, { overwrite: true });
    return stored;
  }

  private async keep(policy: StoredPolicy, options: { overwrite: boolean }): Promise<void> {
    try {
      await this.versionBlob(policy.version).upload(policy.text, Buffer.byteLength(policy.text), {
        blobHTTPHeaders: { blobContentType: 'application/yaml; charset=utf-8' },
        metadata: metadataOf(policy),
        conditions: options.overwrite ? {} : { ifNoneMatch: '*' },
      });
    } catch (error) {
      if (!options.overwrite && isStatus(error, 409)) return;
      throw error;
    }
  }

  /** The kept versions, newest first (at most `limit`). */
  async versions(limit = 100): Promise<PolicyVersionInfo[]> {
    const out: PolicyVersionInfo[] = [];
    for await (const item of this.container.listBlobsFlat({ prefix: `${this.name}.versions/`, includeMetadata: true }))
      out.push(infoOf(item.metadata));
    return out.sort((a, b) => b.version - a.version).slice(0, limit);
  }

  /** One kept version's text, undefined when there is no such version. */
  async version(version: number): Promise<StoredPolicy | undefined> {
    try {
      const response = await this.versionBlob(version).download();
      const text = (await streamText(response.readableStreamBody)).toString('utf8');
      return { text, stamp: response.etag!, ...infoOf(response.metadata), version };
    } catch (error) {
      if (isStatus(error, 404)) return undefined;
      throw error;
    }
  }
}

function metadataOf(info: PolicyVersionInfo): Record<string, string> {
  return {
    version: String(info.version),
    ...(info.updatedAt ? { updatedat: info.updatedAt } : {}),
    // Metadata is ASCII: caller keys may hold any character.
    ...(info.updatedBy ? { updatedby: encodeURIComponent(info.updatedBy) } : {}),
  };
}

async function streamText(stream: NodeJS.ReadableStream | undefined): Promise<Buffer> {
  const chunks: Buffer[] = [];
  if (!stream) return Buffer.alloc(0);
  for await (const chunk of stream) chunks.push(Buffer.isBuffer(chunk) ? chunk : Buffer.from(chunk as string));
  return Buffer.concat(chunks);
}

// Placeholder until the real emulator lands (answers 501 so nothing pretends to work).
import type { ServerResponse } from 'node:http';
import type { SandboxContext } from '../cloud/context';
import type { AppCertificate } from '../pki/certificates';
import { sendJson, type Emulator, type EmulatorRequest } from '../cloud/types';

export interface StoredVersion {
  version: string;
}

export class KeyVaultEmulator implements Emulator {
  constructor(readonly ctx: SandboxContext) {}
  /** Adds a new version of a secret (what `az keyvault secret set` does). */
  setSecret(_vault: string, _name: string, _value: string, _options: { contentType?: string; enabled?: boolean; notBefore?: Date; expires?: Date } = {}): StoredVersion {
    throw new Error('not implemented');
  }
  /** Imports a certificate as a new version: certificate + key + managed secret (PFX or PEM). */
  importCertificate(_vault: string, _name: string, _certificate: AppCertificate, _contentType: 'application/x-pkcs12' | 'application/x-pem-file', _options: { pfxPassword?: string } = {}): StoredVersion {
    throw new Error('not implemented');
  }
  async handle(_req: EmulatorRequest, res: ServerResponse): Promise<void> {
    sendJson(res, 501, { error: 'not implemented' });
  }
}

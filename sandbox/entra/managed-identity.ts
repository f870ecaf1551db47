// Placeholder until the real emulator lands (answers 501 so nothing pretends to work).
import type { ServerResponse } from 'node:http';
import type { SandboxContext } from '../cloud/context';
import { sendJson, type Emulator, type EmulatorRequest } from '../cloud/types';

export class ManagedIdentityEmulator implements Emulator {
  constructor(readonly ctx: SandboxContext) {}
  async handle(_req: EmulatorRequest, res: ServerResponse): Promise<void> {
    sendJson(res, 501, { error: 'not implemented' });
  }
}

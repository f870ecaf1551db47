import type { SandboxDirectory } from '../directory/directory';
import type { TokenService } from '../entra/tokens';
import type { SandboxStats } from './stats';
import type { SandboxEndpoints } from './types';

/** What every emulator is constructed with. */
export interface SandboxContext {
  directory: SandboxDirectory;
  tokens: TokenService;
  stats: SandboxStats;
  endpoints: SandboxEndpoints;
}
